import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { formatPoolerMessage, PoolerErrors } from "./pooler-errors.js";

const doc = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
const rows = new Map(
  [...doc.matchAll(/^\| `(\w+)` \| (\w{5}) \| (\w+) \|/gm)].map((m) => [m[1]!, { sqlState: m[2], severity: m[3] }]),
);

describe("the pooler error registry", () => {
  test("docs/errors.md lists every code with its SQLSTATE and severity, and nothing else", () => {
    for (const [code, spec] of Object.entries(PoolerErrors)) {
      expect(rows.get(code), `docs/errors.md row for ${code}`).toEqual({
        sqlState: spec.sqlState,
        severity: spec.severity,
      });
    }
    expect([...rows.keys()].sort()).toEqual(Object.keys(PoolerErrors).sort());
  });

  test("every SQLSTATE is five characters of the SQLSTATE alphabet", () => {
    for (const spec of Object.values(PoolerErrors)) expect(spec.sqlState).toMatch(/^[0-9A-Z]{5}$/);
  });

  test("fills placeholders from the details and leaves a missing one visible", () => {
    expect(formatPoolerMessage('pool "{pool}" waited {seconds} s', { pool: "app/u", seconds: 2 })).toBe(
      'pool "app/u" waited 2 s',
    );
    expect(formatPoolerMessage("user {user}", {})).toBe("user {user}");
  });
});
