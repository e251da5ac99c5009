import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { analyzeSessionEffects, type SessionEffect } from "./session-effects.js";

function effects(sql: string): readonly SessionEffect[] | null {
  const buf = Buffer.from(sql);
  return analyzeSessionEffects(buf, 0, buf.length);
}

function expectNone(...texts: string[]): void {
  for (const sql of texts) expect(effects(sql), sql).toBeNull();
}

const set = (name: string, sql: string): SessionEffect => ({ kind: "set", name, sql });
const reset = (name: string): SessionEffect => ({ kind: "reset", name });
const pin = (reason: string, key?: string): SessionEffect =>
  (key === undefined ? { kind: "pin", reason } : { kind: "pin", reason, key }) as SessionEffect;
const unpin = (reason: string, key?: string): SessionEffect =>
  (key === undefined ? { kind: "unpin", reason } : { kind: "unpin", reason, key }) as SessionEffect;
const unpinAll = (reason: string): SessionEffect => ({ kind: "unpin_all", reason }) as SessionEffect;
const unrecognized = pin("unrecognized_set");

const COMMON = [
  "SELECT 1",
  "select * from accounts where id = $1",
  "INSERT INTO temp (a) VALUES (1) RETURNING id",
  "UPDATE t SET a = 1, b = 'x' WHERE id = $1",
  "DELETE FROM t WHERE id IN (SELECT id FROM u)",
  "BEGIN",
  "BEGIN ISOLATION LEVEL SERIALIZABLE",
  "START TRANSACTION READ ONLY",
  "COMMIT",
  "END",
  "SAVEPOINT s",
  "RELEASE SAVEPOINT s",
  "WITH x AS (SELECT 1) SELECT * FROM x",
  "EXPLAIN ANALYZE SELECT 1",
  "COPY t FROM STDIN",
  "VALUES (1), (2)",
  "TRUNCATE t",
  "CREATE TABLE t (a int)",
  "CREATE INDEX ON t (a)",
  "ALTER TABLE t ADD COLUMN b text",
  "DROP INDEX i",
  "NOTIFY ch, 'payload'",
  "SELECT * FROM listen",
  "EXECUTE p(1)",
  "FETCH 10 FROM c",
  "ALTER ROLE app SET search_path = a, b",
  "ALTER DATABASE d SET work_mem = '64MB'",
  "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ SET x = 1; LISTEN y $$",
  "DO $$ BEGIN PERFORM pg_advisory_lock(1); END $$",
  "SELECT pg_advisory_xact_lock(1), pg_try_advisory_xact_lock_shared(2)",
  "SELECT set_config('a', 'b', true)",
  "SELECT my_set_config('a', 'b', false), pg_advisory_locks()",
  "SELECT pg_advisory_lock FROM t",
  "SELECT 1 INTO permanent_table",
  "LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
];

describe("the fast path", () => {
  test("returns null, not an empty list, for common DML, DDL and transaction control", () => {
    expectNone(...COMMON);
    expect(effects(COMMON.join(";\n"))).toBeNull();
  });

  test("returns null for empty text, whitespace, comments and lone semicolons", () => {
    expectNone("", "   \n\t", "-- nothing", "/* nothing */", ";;;", " ; /* a */ ; ");
  });

  test("reads the query text in place inside a Query message, NUL and header excluded", () => {
    const body = Buffer.from("LISTEN jobs\0");
    const message = Buffer.concat([Buffer.from([0x51, 0, 0, 0, 4 + body.length]), body]);
    expect(analyzeSessionEffects(message, 5, message.length - 1)).toEqual([pin("listen", "jobs")]);
  });
});

describe("SET", () => {
  test("a session SET yields its lower-cased name and its own text to replay", () => {
    expect(effects("SET search_path TO a, b")).toEqual([set("search_path", "SET search_path TO a, b")]);
    expect(effects("set Work_Mem = '64MB';")).toEqual([set("work_mem", "set Work_Mem = '64MB'")]);
    expect(effects("SET SESSION statement_timeout = 0")).toEqual([
      set("statement_timeout", "SET SESSION statement_timeout = 0"),
    ]);
    expect(effects("SET x=-1")).toEqual([set("x", "SET x=-1")]);
  });

  test("the replay text leaves out surrounding comments, whitespace and the semicolon", () => {
    expect(effects("  /* hi */ SET x = 1 /* in */ + 2 -- trailing\n ; ")).toEqual([set("x", "SET x = 1 /* in */ + 2")]);
    expect(effects("\n\tSET x = 'a;b'\n")).toEqual([set("x", "SET x = 'a;b'")]);
  });

  test("custom dotted names are supported; quoted parts keep their exact text", () => {
    expect(effects("SET myapp.tenant = '42'")).toEqual([set("myapp.tenant", "SET myapp.tenant = '42'")]);
    expect(effects("SET MyApp.Tenant TO 1")).toEqual([set("myapp.tenant", "SET MyApp.Tenant TO 1")]);
    expect(effects('SET "MyApp"."Tenant" TO 1')).toEqual([set("MyApp.Tenant", 'SET "MyApp"."Tenant" TO 1')]);
  });

  test("SET name TO DEFAULT is a reset", () => {
    expect(effects("SET x TO DEFAULT")).toEqual([reset("x")]);
    expect(effects("set x = default")).toEqual([reset("x")]);
    expect(effects("SET x = 'default'")).toEqual([set("x", "SET x = 'default'")]);
  });

  test("SET LOCAL and SET TRANSACTION last for the transaction only: no effect", () => {
    expectNone(
      "SET LOCAL search_path = a",
      "set local x to 1",
      "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
      "SET SESSION TRANSACTION READ ONLY",
      "SET TRANSACTION SNAPSHOT '00000003-0000001B-1'",
    );
  });

  test("SET TIME ZONE sets timezone, and LOCAL or DEFAULT resets it", () => {
    expect(effects("SET TIME ZONE 'UTC'")).toEqual([set("timezone", "SET TIME ZONE 'UTC'")]);
    expect(effects("set time zone interval '+02:00' hour to minute")).toEqual([
      set("timezone", "set time zone interval '+02:00' hour to minute"),
    ]);
    expect(effects("SET TIME ZONE LOCAL")).toEqual([reset("timezone")]);
    expect(effects("SET TIME ZONE DEFAULT")).toEqual([reset("timezone")]);
  });

  test("SET NAMES, SCHEMA, ROLE, SESSION AUTHORIZATION and XML OPTION map to their parameters", () => {
    expect(effects("SET NAMES 'UTF8'")).toEqual([set("client_encoding", "SET NAMES 'UTF8'")]);
    expect(effects("SET NAMES")).toEqual([reset("client_encoding")]);
    expect(effects("SET NAMES DEFAULT")).toEqual([reset("client_encoding")]);
    expect(effects("SET SCHEMA 'app'")).toEqual([set("search_path", "SET SCHEMA 'app'")]);
    expect(effects("SET ROLE admin")).toEqual([set("role", "SET ROLE admin")]);
    expect(effects("SET ROLE NONE")).toEqual([set("role", "SET ROLE NONE")]);
    expect(effects("SET SESSION AUTHORIZATION 'bob'")).toEqual([
      set("session_authorization", "SET SESSION AUTHORIZATION 'bob'"),
    ]);
    expect(effects("SET SESSION SESSION AUTHORIZATION bob")).toEqual([
      set("session_authorization", "SET SESSION SESSION AUTHORIZATION bob"),
    ]);
    expect(effects("SET SESSION AUTHORIZATION DEFAULT")).toEqual([reset("session_authorization")]);
    expect(effects("SET XML OPTION DOCUMENT")).toEqual([set("xmloption", "SET XML OPTION DOCUMENT")]);
  });

  test("a special word used as a plain parameter name is a plain SET", () => {
    expect(effects("SET role = 'x'")).toEqual([set("role", "SET role = 'x'")]);
    expect(effects("SET TimeZone = 'UTC'")).toEqual([set("timezone", "SET TimeZone = 'UTC'")]);
  });

  test("SET SESSION CHARACTERISTICS sets one default_transaction_* parameter per mode", () => {
    expect(
      effects("set session characteristics as transaction isolation level repeatable read, read only not deferrable"),
    ).toEqual([
      set(
        "default_transaction_isolation",
        "SET SESSION CHARACTERISTICS AS TRANSACTION isolation level repeatable read",
      ),
      set("default_transaction_read_only", "SET SESSION CHARACTERISTICS AS TRANSACTION read only"),
      set("default_transaction_deferrable", "SET SESSION CHARACTERISTICS AS TRANSACTION not deferrable"),
    ]);
    expect(effects("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")).toEqual([
      set("default_transaction_isolation", "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED"),
    ]);
  });

  test("SET forms it cannot replay pin the client rather than guess", () => {
    for (const sql of [
      "SET x FROM CURRENT",
      "SET",
      "SET x",
      "SET x =",
      "SET x 1",
      "SET CATALOG 'c'",
      "SET TIME 'x'",
      "SET XML 'x'",
      "SET SCHEMA",
      "SET 'x' = 1",
      "SET a. = 1",
      "SET SESSION SESSION x = 1",
      "SET SESSION CHARACTERISTICS AS TRANSACTION",
      "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SOMETIMES",
      "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY, FAST",
      "SET SESSION CHARACTERISTICS FOR TRANSACTION READ ONLY",
    ]) {
      expect(effects(sql), sql).toEqual([unrecognized]);
    }
  });
});

describe("set_config", () => {
  test("SELECT set_config with literal arguments and false is a SET replayed with its literals as written", () => {
    expect(effects("select SET_CONFIG('search_path', 'a, b', FALSE)")).toEqual([
      set("search_path", "SELECT pg_catalog.set_config('search_path', 'a, b', false)"),
    ]);
    expect(effects("SELECT pg_catalog.set_config('MyApp.Tenant', $$4'2$$, false) AS t;")).toEqual([
      set("myapp.tenant", "SELECT pg_catalog.set_config('MyApp.Tenant', $$4'2$$, false)"),
    ]);
    expect(effects("SELECT Pg_Catalog.set_config(E'app.x', E'it\\'s', false)")).toEqual([
      set("app.x", "SELECT pg_catalog.set_config(E'app.x', E'it\\'s', false)"),
    ]);
  });

  test("an alias, with or without AS, keeps set_config replayable", () => {
    const replay = "SELECT pg_catalog.set_config('a', 'b', false)";
    expect(effects("SELECT set_config('a', 'b', false) AS x")).toEqual([set("a", replay)]);
    expect(effects("SELECT set_config('a', 'b', false) x")).toEqual([set("a", replay)]);
    expect(effects("SELECT set_config('a', 'b', false) \"X\", set_config('c', 'd', false)")).toEqual([
      set("a", replay),
      set("c", "SELECT pg_catalog.set_config('c', 'd', false)"),
    ]);
  });

  test("several set_config calls in one SELECT yield one SET each, local ones skipped", () => {
    expect(
      effects("SELECT set_config('a', '1', false), set_config('b', '2', true), set_config('c', '3', false)"),
    ).toEqual([
      set("a", "SELECT pg_catalog.set_config('a', '1', false)"),
      set("c", "SELECT pg_catalog.set_config('c', '3', false)"),
    ]);
  });

  test("set_config with true is transaction-local: no effect, wherever it is", () => {
    expectNone(
      "SELECT set_config('a', 'b', true)",
      "SELECT set_config($1, $2, TRUE)",
      "SELECT x FROM t WHERE set_config('a', b.c, true) IS NOT NULL",
    );
  });

  test("set_config with a parameter, expression or column as an argument pins the client", () => {
    for (const sql of [
      "SELECT set_config('a', $1, false)",
      "SELECT set_config($1, 'b', false)",
      "SELECT set_config('a', 'b', $3)",
      "SELECT set_config($1, $2, $3)",
      "SELECT set_config('a', 'x' || 'y', false)",
      "SELECT set_config('a', current_user, false)",
      "SELECT set_config('a', 'b'::text, false)",
      "SELECT set_config('a', 'b')",
      "SELECT set_config(E'\\x41', 'b', false)",
      "SELECT set_config('a', 'b', false) FROM t",
      "SELECT 1, set_config('a', 'b', false)",
      "UPDATE t SET v = set_config('a', 'b', false)",
      "SELECT \"set_config\"('a', 'b', false) + 1",
    ]) {
      expect(effects(sql), sql).toEqual([pin("set_config")]);
    }
  });

  test("a column or another function named like set_config is not a call", () => {
    expectNone(
      "SELECT set_config FROM t",
      "SELECT my_set_config('a', 'b', false)",
      "SELECT 'set_config(''a'', ''b'', false)'",
      "SELECT \"SET_CONFIG\"('a', 'b', false)",
    );
  });
});

describe("RESET", () => {
  test("RESET name resets it, with the same special forms as SET", () => {
    expect(effects("RESET Work_Mem")).toEqual([reset("work_mem")]);
    expect(effects('RESET "MyApp".x')).toEqual([reset("MyApp.x")]);
    expect(effects("reset time zone")).toEqual([reset("timezone")]);
    expect(effects("RESET ROLE")).toEqual([reset("role")]);
    expect(effects("RESET SESSION AUTHORIZATION")).toEqual([reset("session_authorization")]);
    expect(effects("RESET ALL")).toEqual([{ kind: "reset_all" }]);
  });

  test("RESET TRANSACTION ISOLATION LEVEL is transaction-scoped: no effect", () => {
    expectNone("RESET TRANSACTION ISOLATION LEVEL");
  });

  test("a RESET it cannot read pins the client", () => {
    for (const sql of ["RESET", "RESET ALL x", "RESET a b", "RESET 'x'", "RESET a."]) {
      expect(effects(sql), sql).toEqual([unrecognized]);
    }
  });
});

describe("LISTEN and UNLISTEN", () => {
  test("LISTEN pins with the channel as key, folded unless quoted", () => {
    expect(effects("LISTEN Jobs")).toEqual([pin("listen", "jobs")]);
    expect(effects('listen "Jobs"')).toEqual([pin("listen", "Jobs")]);
  });

  test("UNLISTEN releases one channel, UNLISTEN * all of them", () => {
    expect(effects("UNLISTEN jobs")).toEqual([unpin("listen", "jobs")]);
    expect(effects("unlisten *")).toEqual([unpinAll("listen")]);
  });
});

describe("advisory locks", () => {
  test("each session-level lock function pins, anywhere in a statement, however spelled", () => {
    expect(effects("SELECT pg_advisory_lock(1)")).toEqual([pin("advisory_lock")]);
    expect(effects("select PG_ADVISORY_LOCK_SHARED(1)")).toEqual([pin("advisory_lock")]);
    expect(effects("SELECT pg_catalog.pg_try_advisory_lock(1, 2)")).toEqual([pin("advisory_lock")]);
    expect(effects("SELECT * FROM jobs WHERE pg_try_advisory_lock_shared(id) LIMIT 1")).toEqual([pin("advisory_lock")]);
    expect(effects('SELECT "pg_advisory_lock"(1)')).toEqual([pin("advisory_lock")]);
    expect(effects("SELECT pg_advisory_lock (1)")).toEqual([pin("advisory_lock")]);
  });

  test("the transaction-level _xact_ variants do not pin", () => {
    expectNone(
      "SELECT pg_advisory_xact_lock(1)",
      "SELECT pg_advisory_xact_lock_shared(1)",
      "SELECT pg_try_advisory_xact_lock(1)",
      "SELECT pg_try_advisory_xact_lock_shared(1)",
    );
  });

  test("unlock releases one lock, unlock_all every lock", () => {
    expect(effects("SELECT pg_advisory_unlock(1)")).toEqual([unpin("advisory_lock")]);
    expect(effects("SELECT pg_advisory_unlock_shared(1)")).toEqual([unpin("advisory_lock")]);
    expect(effects("SELECT pg_advisory_unlock_all()")).toEqual([unpinAll("advisory_lock")]);
  });

  test("several calls in one statement yield one effect each, in text order", () => {
    expect(effects("SELECT pg_advisory_unlock(1), pg_advisory_lock(2), f(pg_advisory_lock(3))")).toEqual([
      unpin("advisory_lock"),
      pin("advisory_lock"),
      pin("advisory_lock"),
    ]);
    expect(effects("SELECT set_config('a', pg_advisory_lock(1)::text, false)")).toEqual([
      pin("set_config"),
      pin("advisory_lock"),
    ]);
  });
});

describe("temporary tables", () => {
  test("CREATE TEMP TABLE, VIEW or SEQUENCE pins with the name as key", () => {
    expect(effects("CREATE TEMP TABLE Scratch (a int)")).toEqual([pin("temp_table", "scratch")]);
    expect(effects('create temporary table "Scratch" (a int)')).toEqual([pin("temp_table", "Scratch")]);
    expect(effects("CREATE GLOBAL TEMPORARY TABLE g (a int)")).toEqual([pin("temp_table", "g")]);
    expect(effects("CREATE LOCAL TEMP TABLE IF NOT EXISTS l (a int)")).toEqual([pin("temp_table", "l")]);
    expect(effects("CREATE TEMP VIEW v AS SELECT 1")).toEqual([pin("temp_table", "v")]);
    expect(effects("CREATE OR REPLACE TEMP RECURSIVE VIEW r (n) AS SELECT 1")).toEqual([pin("temp_table", "r")]);
    expect(effects("CREATE TEMP SEQUENCE s")).toEqual([pin("temp_table", "s")]);
    expect(effects("CREATE TEMP TABLE t AS SELECT * FROM u")).toEqual([pin("temp_table", "t")]);
  });

  test("a table created in the pg_temp schema is temporary too", () => {
    expect(effects("CREATE TABLE pg_temp.x (a int)")).toEqual([pin("temp_table", "x")]);
    expect(effects("CREATE TABLE pg_temp_3.y (a int)")).toEqual([pin("temp_table", "y")]);
    expect(effects("CREATE UNLOGGED TABLE pg_temp.z (a int)")).toEqual([pin("temp_table", "z")]);
  });

  test("SELECT ... INTO TEMP creates a temporary table", () => {
    expect(effects("SELECT * INTO TEMP t FROM u")).toEqual([pin("temp_table", "t")]);
    expect(effects("SELECT a INTO TEMPORARY TABLE t2 FROM u")).toEqual([pin("temp_table", "t2")]);
    expect(effects("WITH w AS (SELECT 1) SELECT * INTO LOCAL TEMP t3 FROM w")).toEqual([pin("temp_table", "t3")]);
  });

  test("ON COMMIT DROP outlives nothing: no pin", () => {
    expectNone(
      "CREATE TEMP TABLE t (a int) ON COMMIT DROP",
      "CREATE TEMP TABLE t ON COMMIT DROP AS SELECT 1",
      "create temp table t (a int) on commit drop",
    );
    expect(effects("CREATE TEMP TABLE t (a int) ON COMMIT DELETE ROWS")).toEqual([pin("temp_table", "t")]);
    expect(effects("CREATE TEMP TABLE t (a int) ON COMMIT PRESERVE ROWS")).toEqual([pin("temp_table", "t")]);
  });

  test("ordinary tables, views and other objects do not pin", () => {
    expectNone(
      "CREATE TABLE public.x (a int)",
      "CREATE UNLOGGED TABLE u (a int)",
      "CREATE VIEW v AS SELECT 1",
      "CREATE TABLE temp (a int)",
      "CREATE TEMP",
      "CREATE INDEX ON pg_temp.x (a)",
    );
  });

  test("DROP TABLE, VIEW or SEQUENCE releases each name; the caller knows which were temporary", () => {
    expect(effects('DROP TABLE IF EXISTS a, pg_temp.B, "C", public.d CASCADE')).toEqual([
      unpin("temp_table", "a"),
      unpin("temp_table", "b"),
      unpin("temp_table", "C"),
      unpin("temp_table", "public.d"),
    ]);
    expect(effects("drop view v")).toEqual([unpin("temp_table", "v")]);
    expect(effects("DROP SEQUENCE s RESTRICT")).toEqual([unpin("temp_table", "s")]);
    expectNone("DROP INDEX i", "DROP FUNCTION f()", "DROP TABLE");
  });
});

describe("cursors, prepared statements and libraries", () => {
  test("DECLARE ... WITH HOLD pins with the cursor name as key", () => {
    expect(effects("DECLARE c CURSOR WITH HOLD FOR SELECT 1")).toEqual([pin("cursor_with_hold", "c")]);
    expect(effects("declare C binary insensitive no scroll cursor with hold for select 1")).toEqual([
      pin("cursor_with_hold", "c"),
    ]);
    expectNone(
      "DECLARE c CURSOR FOR SELECT 1",
      "DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1",
      "DECLARE c CURSOR FOR WITH hold AS (SELECT 1) SELECT * FROM hold",
    );
  });

  test("CLOSE releases one cursor, CLOSE ALL every cursor", () => {
    expect(effects("CLOSE c")).toEqual([unpin("cursor_with_hold", "c")]);
    expect(effects("close all")).toEqual([unpinAll("cursor_with_hold")]);
    expect(effects('CLOSE "all"')).toEqual([unpin("cursor_with_hold", "all")]);
  });

  test("PREPARE pins with the statement name as key, but PREPARE TRANSACTION does not", () => {
    expect(effects("PREPARE Q1 (int) AS SELECT $1")).toEqual([pin("sql_prepare", "q1")]);
    expect(effects('prepare "Q1" AS SELECT 1')).toEqual([pin("sql_prepare", "Q1")]);
    expect(effects("PREPARE transaction AS SELECT 1")).toEqual([pin("sql_prepare", "transaction")]);
    expectNone("PREPARE TRANSACTION 'gid-1'");
  });

  test("DEALLOCATE releases one statement; DEALLOCATE ALL also clears protocol-level statements", () => {
    expect(effects("DEALLOCATE q1")).toEqual([unpin("sql_prepare", "q1")]);
    expect(effects("DEALLOCATE PREPARE q1")).toEqual([unpin("sql_prepare", "q1")]);
    expect(effects("DEALLOCATE PREPARE")).toEqual([unpin("sql_prepare", "prepare")]);
    expect(effects("DEALLOCATE ALL")).toEqual([{ kind: "deallocate_all" }]);
    expect(effects("deallocate prepare all")).toEqual([{ kind: "deallocate_all" }]);
  });

  test("LOAD pins with the library as key", () => {
    expect(effects("LOAD 'auto_explain'")).toEqual([pin("load", "auto_explain")]);
    expect(effects("load $$plugin$$")).toEqual([pin("load", "plugin")]);
    expect(effects("LOAD")).toEqual([pin("load")]);
  });
});

describe("DISCARD and ROLLBACK", () => {
  test("DISCARD reports what it discards", () => {
    expect(effects("DISCARD ALL")).toEqual([{ kind: "discard", what: "all" }]);
    expect(effects("discard temp")).toEqual([{ kind: "discard", what: "temp" }]);
    expect(effects("DISCARD TEMPORARY")).toEqual([{ kind: "discard", what: "temp" }]);
    expect(effects("DISCARD PLANS")).toEqual([{ kind: "discard", what: "plans" }]);
    expect(effects("DISCARD SEQUENCES")).toEqual([{ kind: "discard", what: "sequences" }]);
    expectNone("DISCARD EVERYTHING", "DISCARD");
  });

  test("ROLLBACK and ABORT end the transaction in a rollback", () => {
    for (const sql of ["ROLLBACK", "rollback work", "ROLLBACK TRANSACTION AND CHAIN", "ABORT", "abort transaction"]) {
      expect(effects(sql), sql).toEqual([{ kind: "rollback" }]);
    }
  });

  test("ROLLBACK TO SAVEPOINT and ROLLBACK PREPARED do not", () => {
    expectNone("ROLLBACK TO SAVEPOINT s", "rollback to s", "ROLLBACK WORK TO SAVEPOINT s", "ROLLBACK PREPARED 'gid'");
  });
});

describe("statements, quoting and comments", () => {
  test("each statement of a multi-statement text yields its effects, in order", () => {
    expect(effects("SELECT 1; LISTEN a; SET x = 1")).toEqual([pin("listen", "a"), set("x", "SET x = 1")]);
    expect(effects("BEGIN;SET a = 1;SET b=2;ROLLBACK;")).toEqual([
      set("a", "SET a = 1"),
      set("b", "SET b=2"),
      { kind: "rollback" },
    ]);
    expect(effects("LISTEN a\n;\n\nUNLISTEN a")).toEqual([pin("listen", "a"), unpin("listen", "a")]);
  });

  test("keywords inside strings, quoted identifiers, dollar quotes and comments have no effect", () => {
    expectNone(
      "SELECT '; LISTEN x'",
      "SELECT 'it''s; LISTEN x'",
      "SELECT E'\\'; LISTEN x'",
      "/* LISTEN */ SELECT 1",
      "-- LISTEN x\nSELECT 1",
      "SELECT 1 -- ; LISTEN x",
      "SELECT $$;LISTEN x$$",
      "SELECT $t$ $$; LISTEN x; $$ $t$",
      "/* outer /* inner */ LISTEN x; */ SELECT 1",
      'SELECT "; LISTEN x"',
      "SELECT U&'; LISTEN x'",
    );
  });

  test("with standard_conforming_strings a backslash does not escape a plain string's quote", () => {
    expect(effects("SELECT 'a\\'; LISTEN x")).toEqual([pin("listen", "x")]);
  });

  test("a statement may start with parentheses or comments", () => {
    expect(effects("(SELECT pg_advisory_lock(1))")).toEqual([pin("advisory_lock")]);
    expect(effects("/* a */ -- b\n  LISTEN x")).toEqual([pin("listen", "x")]);
    expectNone("((SELECT 1))", "(", "(((");
  });

  test("a semicolon inside parentheses or a BEGIN ATOMIC body does not end the statement", () => {
    expectNone("CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b)");
    expect(
      effects(
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql BEGIN ATOMIC SELECT set_config('a', 'b', false); " +
          "SELECT CASE WHEN true THEN 'x' END; END; LISTEN x",
      ),
    ).toEqual([pin("listen", "x")]);
  });

  test("unterminated input ends where the text ends, without throwing", () => {
    expectNone("SELECT 1 /* LISTEN x", "SELECT $$ ; LISTEN x", "SELECT ' ; LISTEN x", 'SELECT " ; LISTEN x');
    expect(effects('LISTEN "ch')).toEqual([pin("listen", "ch")]);
    expect(effects("SET x = 'abc")).toEqual([set("x", "SET x = 'abc")]);
  });

  test("newlines and tabs separate words like spaces", () => {
    expect(effects("SET\n\tsearch_path\r\nTO\ta")).toEqual([set("search_path", "SET\n\tsearch_path\r\nTO\ta")]);
    expect(effects("CREATE\nTEMP\tTABLE\r\nt()")).toEqual([pin("temp_table", "t")]);
  });
});

/** Statements with and without effects, for the properties. Every token is separated by one space. */
const STATEMENTS = [
  ...COMMON.filter((s) => !s.includes("$$") && !s.includes("--")),
  "SET search_path TO a , b",
  "SET LOCAL x = 1",
  "SET TIME ZONE 'UTC'",
  "SET SESSION AUTHORIZATION DEFAULT",
  "SET x FROM CURRENT",
  "RESET ALL",
  "RESET TIME ZONE",
  "LISTEN a",
  "UNLISTEN *",
  "SELECT pg_advisory_lock ( 1 )",
  "SELECT pg_advisory_unlock_all ( )",
  "SELECT set_config ( 'a' , 'b' , false )",
  "SELECT set_config ( 'a' , $1 , false )",
  "CREATE TEMP TABLE t ( a int )",
  "CREATE TEMP TABLE t ( a int ) ON COMMIT DROP",
  "SELECT * INTO TEMP t FROM u",
  "DROP TABLE a , b",
  "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
  "CLOSE ALL",
  "PREPARE p AS SELECT 1",
  "DEALLOCATE ALL",
  "LOAD 'x'",
  "DISCARD ALL",
  "ROLLBACK",
  "ROLLBACK TO SAVEPOINT s",
];

const KEYWORDS = [
  "SET",
  "RESET",
  "LISTEN",
  "UNLISTEN",
  "CREATE",
  "TEMP",
  "TABLE",
  "DROP",
  "DECLARE",
  "WITH",
  "HOLD",
  "CLOSE",
  "PREPARE",
  "DEALLOCATE",
  "LOAD",
  "DISCARD",
  "ROLLBACK",
  "ABORT",
  "SELECT",
  "INTO",
  "ALL",
  "SESSION",
  "TIME",
  "ZONE",
  "set_config",
  "pg_advisory_lock",
  "pg_advisory_unlock_all",
  "pg_catalog",
  "BEGIN",
  "ATOMIC",
  "END",
  "CASE",
  "ON",
  "COMMIT",
  "false",
  "true",
];
const PUNCTUATION = [" ", "\n", ";", "(", ")", ",", ".", "=", "*", "'x'", "$1", "$$", "'", '"', "/*", "*/", "--", "1"];

/** Text of the keywords that matter, mixed with punctuation and broken constructs. */
const keywordSoup = fc
  .array(fc.oneof(fc.constantFrom(...KEYWORDS), fc.constantFrom(...PUNCTUATION)), { maxLength: 40 })
  .map((parts) => parts.join(" "));

/** `text` made harmless: inside a string, quoted identifier, dollar quote or comment. */
const hidden = (text: string) =>
  fc.constantFrom(
    `'${text.replaceAll("'", "''")}'`,
    `E'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`,
    `"${text.replaceAll('"', '""')}"`,
    `$q$${text.replaceAll("$q$", "")}$q$`,
    `/* ${text.replaceAll("/*", "/ *").replaceAll("*/", "* /")} */`,
    `-- ${text.replaceAll("\n", " ").replaceAll("\r", " ")}\n`,
  );

const withoutSql = (found: readonly SessionEffect[] | null) =>
  found?.map((e) => (e.kind === "set" ? { kind: e.kind, name: e.name } : e)) ?? null;

describe("session effects properties", () => {
  test("never throws on arbitrary bytes or keyword soup, and never returns an empty list", () => {
    const input = fc.oneof(
      keywordSoup.map((s) => Buffer.from(s)),
      fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    );
    fc.assert(
      fc.property(input, fc.nat(), fc.nat(), (buf, a, b) => {
        const start = a % (buf.length + 1);
        const end = start + (b % (buf.length - start + 1));
        const found = analyzeSessionEffects(buf, start, end);
        if (found !== null) expect(found.length).toBeGreaterThan(0);
      }),
      { numRuns: 3000 },
    );
  });

  test("keywords hidden in strings, identifiers, dollar quotes and comments yield null", () => {
    const text = keywordSoup.chain((soup) => hidden(soup));
    fc.assert(
      fc.property(fc.constantFrom(...COMMON.slice(0, 10)), text, text, (statement, a, b) => {
        expect(effects(`SELECT ${a} , ${b}; ${statement} ${a}`)).toBeNull();
        expect(effects(`${b}\n${statement}`)).toBeNull();
      }),
      { numRuns: 2000 },
    );
  });

  test("a multi-statement text yields the effects of its statements in turn", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...STATEMENTS), { minLength: 1, maxLength: 6 }), (statements) => {
        const each = statements.flatMap((s) => effects(s) ?? []);
        expect(effects(statements.join(" ; "))).toEqual(each.length === 0 ? null : each);
      }),
      { numRuns: 1000 },
    );
  });

  test("comments and whitespace between tokens change nothing but the replay text", () => {
    const gap = fc.constantFrom(" ", "\n", "\t\r\n", " /* c */ ", " -- c\n", "/* a /* b */ c */", "\n--\n");
    fc.assert(
      fc.property(fc.constantFrom(...STATEMENTS), fc.array(gap, { minLength: 40, maxLength: 40 }), (sql, gaps) => {
        const spaced = sql
          .split(" ")
          .map((token, i) => `${token}${gaps[i]}`)
          .join("");
        expect(withoutSql(effects(`${gaps[39]}${spaced}`))).toEqual(withoutSql(effects(sql)));
      }),
      { numRuns: 1000 },
    );
  });
});
