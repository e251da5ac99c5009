import { describe, expect, test } from "vitest";
import { DEFAULT_SETTINGS } from "./pooler-settings.js";
import { settingsForWorker, workerShare } from "./worker-settings.js";

describe("limits shared by workers", () => {
  test("add up to the configured figure, the first workers taking the remainder", () => {
    expect([0, 1, 2].map((i) => workerShare(20, i, 3))).toEqual([7, 7, 6]);
    expect([0, 1].map((i) => workerShare(5, i, 2))).toEqual([3, 2]);
  });

  test("0 (no limit) stays 0; a positive limit never becomes 0 unless it may (min and reserve sizes)", () => {
    expect(workerShare(0, 1, 4)).toBe(0);
    expect([0, 1, 2, 3].map((i) => workerShare(2, i, 4))).toEqual([1, 1, 1, 1]);
    expect([0, 1, 2, 3].map((i) => workerShare(2, i, 4, false))).toEqual([1, 1, 0, 0]);
  });

  test("pool sizes and connection limits are divided; only worker 0 keeps the Unix socket", () => {
    const s = {
      ...DEFAULT_SETTINGS,
      unixSocketDir: "/tmp",
      defaultPoolSize: 20,
      maxClientConn: 1000,
      databases: new Map([
        ["app", { name: "app", host: "h", port: 5432, dbname: "app", poolSize: 9, serverStartupParameters: new Map() }],
      ]),
    };
    const w1 = settingsForWorker(s, 1, 2);
    expect(w1).toMatchObject({ unixSocketDir: "", defaultPoolSize: 10, maxClientConn: 500, maxDbConnections: 0 });
    expect(w1.databases.get("app")!.poolSize).toBe(4);
    expect(settingsForWorker(s, 0, 2).unixSocketDir).toBe("/tmp");
    expect(settingsForWorker(s, 0, 2).databases.get("app")!.poolSize).toBe(5);
  });
});
