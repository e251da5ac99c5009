import { describe, expect, test } from "vitest";
import { createLogger, textLine } from "./logger.js";

function capture(format: "json" | "text") {
  const lines: string[] = [];
  const log = createLogger({ level: "info", format, destination: { write: (l: string) => lines.push(l) } });
  return { log, lines };
}

describe("the root logger", () => {
  test("writes JSON with the level as a word and an ISO time, and child fields on every line", () => {
    const { log, lines } = capture("json");
    log
      .child({ client: 7, remote: "10.0.0.5:5555" })
      .info({ reason: "client closed the connection" }, "client disconnected");
    const o = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(o).toMatchObject({
      level: "info",
      client: 7,
      remote: "10.0.0.5:5555",
      reason: "client closed the connection",
    });
    expect(String(o.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test("never writes a password, secret or token, at any of the usual depths", () => {
    const { log, lines } = capture("json");
    log.info(
      { password: "pw1-leak", db: { password: "pw2-leak" }, token: "tk-leak", admin_api_token: "tk2-leak" },
      "x",
    );
    log.info({ req: { headers: { authorization: "Bearer tk3-leak" } } }, "y");
    expect(lines.join("")).not.toMatch(/leak/);
    expect(lines.join("")).toContain("********");
  });

  test("the level can change while it runs", () => {
    const { log, lines } = capture("json");
    log.debug("hidden");
    log.level = "debug";
    log.debug("shown");
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(["shown"]);
  });
});

describe("the text format", () => {
  test("reads like PgBouncer's log: time [pid] LEVEL C-id db/user@address: message key=value", () => {
    const line = textLine(
      JSON.stringify({
        level: "info",
        time: "2026-01-02T03:04:05.678Z",
        pid: 42,
        client: 3,
        remote: "10.0.0.5:5555",
        user: "alice",
        database: "app",
        reason: "client closed the connection",
        msg: "client disconnected",
      }),
    );
    expect(line).toBe(
      '2026-01-02T03:04:05.678Z [42] LOG C-3 app/alice@10.0.0.5:5555: client disconnected reason="client closed the connection"\n',
    );
  });

  test("names servers by S- and pools by db/user, and warnings as WARNING", () => {
    const line = textLine(
      JSON.stringify({ level: "warn", time: "t", pid: 1, pool: "app/bob", server: 9, msg: "server login failed" }),
    );
    expect(line).toBe("t [1] WARNING S-9 app/bob: server login failed\n");
  });
});
