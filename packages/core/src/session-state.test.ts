import { describe, expect, test } from "vitest";
import { analyzeSessionEffects } from "./session-effects.js";
import { refusalSql, SessionState, sessionSyncQuery } from "./session-state.js";

const I = 0x49;
const T = 0x54;
const E = 0x45;

function effects(sql: string) {
  const b = Buffer.from(sql);
  return analyzeSessionEffects(b, 0, b.length) ?? [];
}

/** Sends `sql` as the next simple query and returns the effects that held once it ended with `status`. */
function run(state: SessionState, sql: string, status: number, failed = false) {
  const request = ++state.requestsSent;
  const e = effects(sql);
  if (e.length > 0) state.expect(request, e);
  if (failed) state.error();
  const done = state.ready(status);
  if (done !== null) state.apply(done);
  return done;
}

describe("SessionState", () => {
  test("a SET outside a transaction holds at its ReadyForQuery", () => {
    const s = new SessionState();
    run(s, "set statement_timeout = 5", I);
    expect([...s.sets]).toEqual([["statement_timeout", "set statement_timeout = 5"]]);
  });

  test("SETs inside a transaction hold only if it commits", () => {
    const s = new SessionState();
    run(s, "begin", T);
    run(s, "set work_mem = '8MB'", T);
    expect(s.sets.size).toBe(0);
    run(s, "commit", I);
    expect(s.sets.get("work_mem")).toBe("set work_mem = '8MB'");

    run(s, "begin", T);
    run(s, "set lock_timeout = 1", T);
    run(s, "rollback", I);
    expect(s.sets.has("lock_timeout")).toBe(false);

    run(s, "begin", T);
    run(s, "set lock_timeout = 2", T);
    run(s, "select 1/0", E, true);
    run(s, "commit", I);
    expect(s.sets.has("lock_timeout")).toBe(false);
  });

  test("a failed implicit transaction undoes every statement of its Query", () => {
    const s = new SessionState();
    run(s, "set lock_timeout = 3; select 1/0", I, true);
    expect(s.sets.size).toBe(0);
  });

  test("pipelined requests settle one by one: a failed first leaves the second's effects", () => {
    const s = new SessionState();
    const first = ++s.requestsSent;
    s.expect(first, effects("set a.b = 1"));
    const second = ++s.requestsSent;
    s.expect(second, effects("set a.c = 2"));
    // The first request fails (its ErrorResponse comes before its ReadyForQuery); the second succeeds.
    s.error();
    const done = s.ready(I);
    expect(done).toBeNull();
    const next = s.ready(I);
    if (next !== null) s.apply(next);
    expect([...s.sets.keys()]).toEqual(["a.c"]);
  });

  test("pins count by reason and name; undoing them unpins", () => {
    const s = new SessionState();
    run(s, "listen a; listen b; listen a", I);
    run(s, "select pg_advisory_lock(1), pg_advisory_lock(2)", I);
    expect(s.pinned).toBe(true);
    expect(Object.fromEntries(s.pins)).toEqual({ listen: 2, advisory_lock: 2 });
    run(s, "unlisten a", I);
    run(s, "select pg_advisory_unlock(1)", I);
    expect(Object.fromEntries(s.pins)).toEqual({ listen: 1, advisory_lock: 1 });
    run(s, "unlisten *", I);
    run(s, "select pg_advisory_unlock_all()", I);
    expect(s.pinned).toBe(false);
  });

  test("DISCARD ALL clears SETs, pins (not LOAD) and says statements are gone", () => {
    const s = new SessionState();
    run(s, "set work_mem = '1MB'", I);
    run(s, "create temp table t (x int)", I);
    run(s, "load 'auto_explain'", I);
    const request = ++s.requestsSent;
    s.expect(request, effects("discard all"));
    const done = s.ready(I)!;
    expect(s.apply(done)).toEqual({ resetAll: true, statementsGone: true });
    expect(s.sets.size).toBe(0);
    expect([...s.pins.keys()]).toEqual(["load"]);
  });

  test("parameters the server reports (TimeZone, application_name, ...) are left to ParameterStatus", () => {
    const s = new SessionState();
    run(s, "set timezone = 'UTC'; set application_name = 'x'; set search_path = a", I);
    expect([...s.sets.keys()]).toEqual(["search_path"]);
  });
});

describe("sessionSyncQuery", () => {
  test("resets what the server has that the client lacks, then replays what differs", () => {
    const client = new Map([
      ["work_mem", "set work_mem = '2MB'"],
      ["search_path", "set search_path = a"],
    ]);
    const server = new Map([
      ["work_mem", "set work_mem = '2MB'"],
      ["lock_timeout", "set lock_timeout = 5"],
      ["myapp.tenant", "select set_config('myapp.tenant', 'x', false)"],
    ]);
    expect(sessionSyncQuery(client, server)).toBe('RESET "lock_timeout";RESET "myapp"."tenant";set search_path = a;');
    expect(sessionSyncQuery(client, client)).toBe("");
  });
});

describe("refusalSql", () => {
  test("raises 0A000 naming what was refused, whatever the reason", () => {
    for (const reason of ["listen", "advisory_lock", "temp_table", "load"] as const) {
      const sql = refusalSql(reason);
      expect(sql).toMatch(/^DO \$pgmux\$ BEGIN RAISE EXCEPTION USING ERRCODE = '0A000'/);
      expect(sql).toMatch(/END \$pgmux\$$/);
    }
    expect(refusalSql("listen")).toMatch(/MESSAGE = 'LISTEN is not supported/);
  });
});
