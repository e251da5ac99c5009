import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { ConfigError } from "./config-error.js";
import { DEFAULT_AUTH_QUERY } from "./config-schema.js";
import type { ReadTextFile } from "./ini-parser.js";
import { loadPgbouncerIni } from "./pgbouncer-ini.js";

const FIXTURES = join(import.meta.dirname, "fixtures");
const fixture = (name: string) => join(FIXTURES, name);

function memoryFiles(files: Record<string, string>): ReadTextFile {
  return (path) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
    return text;
  };
}

/** Loads a one-file configuration from memory; `[pgbouncer]` with trust auth is added unless given. */
function loadIni(text: string, extra: Record<string, string> = {}) {
  const body = text.includes("[pgbouncer]") ? text : `${text}\n[pgbouncer]\nauth_type = trust\n`;
  return loadPgbouncerIni(
    "/etc/pgbouncer/pgbouncer.ini",
    memoryFiles({ "/etc/pgbouncer/pgbouncer.ini": body, ...extra }),
  );
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.text.replaceAll(`${FIXTURES}/`, ""));
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("loadPgbouncerIni on real-world samples", () => {
  test("a minimal file gets PgBouncer's defaults for everything it does not set", () => {
    const { config, warnings } = loadPgbouncerIni(fixture("minimal/pgbouncer.ini"));
    expect(warnings).toEqual([]);
    expect(config.databases).toEqual({ app: { host: "127.0.0.1", port: 5432, dbname: "app" } });
    expect(config.auth).toEqual({ app: "md5c0ffee0123456789abcdef0123456789" });
    expect(config.pgmux).toMatchObject({
      listen_addr: ["127.0.0.1"],
      listen_port: 6432,
      unix_socket_dir: "/tmp",
      unix_socket_mode: 0o777,
      auth_type: "md5",
      auth_file: fixture("minimal/userlist.txt"),
      auth_query: DEFAULT_AUTH_QUERY,
      pool_mode: "session",
      max_client_conn: 100,
      default_pool_size: 20,
      min_pool_size: 0,
      reserve_pool_size: 0,
      reserve_pool_timeout: 5,
      server_reset_query: "DISCARD ALL",
      server_reset_query_always: false,
      server_check_query: "<empty>",
      server_check_delay: 30,
      server_lifetime: 3600,
      server_idle_timeout: 600,
      server_connect_timeout: 15,
      server_login_retry: 15,
      query_timeout: 0,
      query_wait_timeout: 120,
      client_idle_timeout: 0,
      client_login_timeout: 60,
      idle_transaction_timeout: 0,
      max_prepared_statements: 200,
      pkt_buf: 4096,
      max_packet_size: 2_147_483_647,
      listen_backlog: 128,
      tcp_keepalive: true,
      client_tls_sslmode: "disable",
      server_tls_sslmode: "prefer",
      admin_listen_addr: "127.0.0.1",
      admin_listen_port: 9127,
      workers: 1,
    });
    expect(config.users).toEqual({});
    expect(config.peers).toEqual({});
  });

  test("a file split with %include loads as one, with each key's own file and line", () => {
    const { config, sources } = loadPgbouncerIni(fixture("full/pgbouncer.ini"));
    expect(sources.files).toEqual([
      fixture("full/pgbouncer.ini"),
      fixture("full/databases.ini"),
      fixture("full/tuning.ini"),
      fixture("full/userlist.txt"),
    ]);
    expect(config.pgmux.server_connect_timeout).toBe(5);
    expect(sources.locate(["pgmux", "server_connect_timeout"])).toEqual({ file: fixture("full/tuning.ini"), line: 2 });
    expect(sources.locate(["databases", "billing", "password"])).toEqual({
      file: fixture("full/databases.ini"),
      line: 4,
    });
    expect(sources.locate(["auth", "etl"])).toEqual({ file: fixture("full/userlist.txt"), line: 4 });
  });

  test("the * fallback entry is kept under its own name", () => {
    const { config } = loadPgbouncerIni(fixture("full/pgbouncer.ini"));
    expect(config.databases["*"]).toEqual({ host: "pg-primary.internal", port: 5432 });
  });

  test("per-database and per-user pool modes override the global one", () => {
    const { config } = loadPgbouncerIni(fixture("full/pgbouncer.ini"));
    expect(config.pgmux.pool_mode).toBe("transaction");
    expect(config.databases.app_ro?.pool_mode).toBe("session");
    expect(config.databases.app?.pool_mode).toBeUndefined();
    expect(config.users).toEqual({
      reporting: { pool_mode: "session", max_user_connections: 10 },
      etl: { pool_mode: "statement", pool_size: 4 },
    });
  });

  test("connection strings are unquoted and typed, and reserve_pool is read as reserve_pool_size", () => {
    const { config } = loadPgbouncerIni(fixture("full/pgbouncer.ini"));
    expect(config.databases.billing).toEqual({
      host: "10.0.4.17",
      port: 5432,
      dbname: "billing",
      user: "billing_svc",
      password: "c0rrect horse's battery",
      reserve_pool_size: 2,
    });
    expect(config.databases.analytics?.connect_query).toBe("SET statement_timeout = '5min'");
    expect(config.databases["legacy-db.v1"]).toMatchObject({ port: 5433, min_pool_size: 2, pool_size: 4 });
  });

  test("the userlist holds all three secret kinds and names with quotes in them", () => {
    const { config } = loadPgbouncerIni(fixture("full/pgbouncer.ini"));
    expect(Object.keys(config.auth)).toEqual(["app", "reporting", "etl", 'o"brien', "postgres"]);
    expect(config.auth.app).toMatch(/^md5[0-9a-f]{32}$/);
    expect(config.auth.reporting).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(config.auth.etl).toBe("plain-text etl secret");
    expect(config.auth['o"brien']).toBe('sh"h-quiet');
  });

  test("general values are typed: lists split, octal modes read, fractional seconds kept", () => {
    const { config } = loadPgbouncerIni(fixture("full/pgbouncer.ini"));
    expect(config.pgmux.listen_addr).toEqual(["0.0.0.0", "::1"]);
    expect(config.pgmux.admin_users).toEqual(["postgres", "ops"]);
    expect(config.pgmux.ignore_startup_parameters).toEqual(["extra_float_digits", "options"]);
    expect(config.pgmux.unix_socket_mode).toBe(0o770);
    expect(config.pgmux.reserve_pool_timeout).toBe(2.5);
    expect(config.pgmux.so_reuseport).toBe(true);
  });

  test("settings pgmux does not act on yet load with a warning each, pointing at their line", () => {
    const { warnings } = loadPgbouncerIni(fixture("full/pgbouncer.ini"));
    expect(warnings.map((w) => w.text.replaceAll(`${FIXTURES}/`, ""))).toEqual([
      "full/pgbouncer.ini:46: logfile is accepted but not implemented yet; it has no effect (remove it to silence this warning)",
      "full/pgbouncer.ini:47: so_reuseport is accepted but not implemented yet; it has no effect (remove it to silence this warning)",
      "full/tuning.ini:4: tcp_keepalive is accepted but not implemented yet; it has no effect (remove it to silence this warning)",
    ]);
  });

  test("a relative auth_file is read from the directory of the file that sets it", () => {
    const { config } = loadPgbouncerIni(
      "/etc/pgbouncer/pgbouncer.ini",
      memoryFiles({
        "/etc/pgbouncer/pgbouncer.ini": "[pgbouncer]\n%include conf.d/auth.ini\n",
        "/etc/pgbouncer/conf.d/auth.ini": "auth_file = ../users/list.txt\n",
        "/etc/pgbouncer/users/list.txt": '"a" "b"\n',
      }),
    );
    expect(config.pgmux.auth_file).toBe("/etc/pgbouncer/users/list.txt");
    expect(config.auth).toEqual({ a: "b" });
  });

  test("auth_type pam reads no user list, as PgBouncer does", () => {
    const { config, warnings } = loadIni("[pgbouncer]\nauth_type = pam\nauth_file = /missing.txt\n");
    expect(config.auth).toEqual({});
    expect(warnings.map((w) => w.key)).toEqual(["auth_type"]);
  });

  test("[pgmux] may stand in for [pgbouncer], and PgBouncer's aliases are understood", () => {
    const { config } = loadIni("[pgmux]\nauth_type = trust\nservice_name = edge\n[databases]\na = reserve_pool=3\n");
    expect(config.pgmux.job_name).toBe("edge");
    expect(config.databases.a?.reserve_pool_size).toBe(3);
  });

  test("switches accept PgBouncer's integers and words; enums ignore case", () => {
    const { config } = loadIni(
      "[pgbouncer]\nauth_type = TRUST\nso_reuseport = 2\nlog_stats = off\npool_mode = Transaction\n",
    );
    expect(config.pgmux).toMatchObject({ so_reuseport: true, log_stats: false, pool_mode: "transaction" });
  });

  test("an empty value leaves an optional setting unset", () => {
    const { config } = loadIni("[pgbouncer]\nauth_type = trust\nlogfile =\n");
    expect("logfile" in config.pgmux).toBe(false);
  });

  test("a database's query_wait_timeout of -1 means not set, as PgBouncer documents", () => {
    expect(loadIni("[databases]\na = query_wait_timeout=-1").config.databases.a).toEqual({ port: 5432 });
  });

  test("an empty [databases] value means all defaults", () => {
    expect(loadIni("[databases]\nfoodb =\n").config.databases).toEqual({ foodb: { port: 5432 } });
  });

  test("[peers] is read and warned about as a whole", () => {
    const { config, warnings } = loadIni("[peers]\n1 = host=/tmp/pgb1\n2 = host=10.0.0.2 port=7432\n");
    expect(config.peers).toEqual({ 1: { host: "/tmp/pgb1", port: 6432 }, 2: { host: "10.0.0.2", port: 7432 } });
    expect(warnings.map((w) => w.message)).toEqual([
      "the [peers] section is accepted but not implemented yet; it has no effect (remove it to silence this warning)",
    ]);
  });
});

describe("loadPgbouncerIni on broken files", () => {
  test("an unknown key is an error naming file:line and the closest known key", () => {
    expect(problemsOf(() => loadPgbouncerIni(fixture("broken/unknown-key.ini")))).toEqual([
      "broken/unknown-key.ini:2: databases.app.pool_sise: unknown setting (did you mean pool_size?)",
      "broken/unknown-key.ini:6: listen_prot: unknown setting (did you mean listen_port?)",
    ]);
  });

  test("an unknown key far from any known one says where it might belong instead", () => {
    expect(problemsOf(() => loadIni("[pgbouncer]\nauth_type = trust\npool_size = 5\n"))).toEqual([
      "/etc/pgbouncer/pgbouncer.ini:3: pool_size: unknown setting (it is a per-database setting: put it in a [databases] connection string)",
    ]);
    expect(problemsOf(() => loadIni("[pgbouncer]\nauth_type = trust\nfrobnicate = 1\n"))[0]).toMatch(
      /frobnicate: unknown setting \(remove it, or check the spelling/,
    );
  });

  test("an unknown section is an error with a suggestion", () => {
    expect(problemsOf(() => loadIni("[pgbouncr]\nx = 1\n"))).toEqual([
      "/etc/pgbouncer/pgbouncer.ini:1: [pgbouncr]: unknown section (did you mean [pgbouncer]?)",
    ]);
  });

  test("a file without a [pgbouncer] section is rejected", () => {
    const problems = problemsOf(() =>
      loadPgbouncerIni("/x.ini", memoryFiles({ "/x.ini": "[databases]\na = host=b\n" })),
    );
    expect(problems[0]).toBe(
      "/x.ini: has no [pgbouncer] section (add one, even if empty; PgBouncer requires it too, and its absence usually means the wrong file)",
    );
  });

  test("bad numbers, ports, choices and switches are each reported with what to write", () => {
    expect(problemsOf(() => loadPgbouncerIni(fixture("broken/bad-values.ini")))).toEqual([
      "broken/bad-values.ini:2: databases.app.port: must be at most 65535 (lower it)",
      'broken/bad-values.ini:6: max_client_conn: expected a whole number, got "lots" (write digits only, e.g. 100)',
      "broken/bad-values.ini:7: reserve_pool_timeout: must not be negative (write 0 or more seconds)",
      'broken/bad-values.ini:8: pool_mode: "transactional" is not a valid choice (write one of: session, transaction, statement)',
      'broken/bad-values.ini:9: tcp_keepalive: expected a switch, got "maybe" (write 1 or 0, or true or false)',
    ]);
  });

  test("a missing auth_file is an error at the line that names it", () => {
    expect(problemsOf(() => loadPgbouncerIni(fixture("broken/missing-auth-file.ini")))).toEqual([
      `broken/missing-auth-file.ini:6: auth_file: cannot read broken/no-such-userlist.txt: no such file (check the path; a relative one is taken from the directory of the file that sets it)`,
    ]);
  });

  test("an include loop is an error naming both files", () => {
    expect(problemsOf(() => loadPgbouncerIni(fixture("broken/loop-a.ini")))).toEqual([
      "broken/loop-b.ini:2: %include: includes itself: broken/loop-a.ini -> broken/loop-b.ini -> broken/loop-a.ini (remove one of these includes)",
    ]);
  });

  test("a malformed userlist is reported line by line", () => {
    expect(problemsOf(() => loadPgbouncerIni(fixture("broken/bad-userlist.ini")))).toEqual([
      'broken/bad-userlist.txt:2: auth_file: expected "user" "secret" (put both in double quotes, or start a comment with ;)',
      'broken/bad-userlist.txt:3: userlist.carol: the secret has no closing " (end it with "; write "" for a quote inside)',
      "broken/bad-userlist.txt:4: userlist.dave: the SCRAM-SHA-256 secret is malformed (copy the whole rolpassword value: SCRAM-SHA-256$<iterations>:<salt>$<storedkey>:<serverkey>)",
    ]);
  });

  test("malformed connection strings are reported per database without their values", () => {
    expect(problemsOf(() => loadPgbouncerIni(fixture("broken/bad-connection-strings.ini")))).toEqual([
      "broken/bad-connection-strings.ini:3: databases.orders.password: the quoted value has no closing ' (end it with ')",
      "broken/bad-connection-strings.ini:5: databases.stock.password: the text after the password is not a key=value setting (quote a password that contains spaces: password='...')",
      "broken/bad-connection-strings.ini:7: databases.audit.dbname: has no value (give it one, write '' for an empty value, or remove it)",
    ]);
  });

  test("password authentication without any user list is an error, even by PgBouncer's md5 default", () => {
    expect(problemsOf(() => loadPgbouncerIni(fixture("broken/no-userlist.ini")))).toEqual([
      "broken/no-userlist.ini: auth_type: md5 checks passwords, but no user list is configured (set auth_file to a userlist.txt, or auth_user so that auth_query looks passwords up; md5 is PgBouncer's default auth_type)",
    ]);
  });

  test("auth_user with auth_query counts as a user list", () => {
    const { warnings } = loadIni("[pgbouncer]\nauth_type = scram-sha-256\nauth_user = pgbouncer\n");
    expect(warnings.map((w) => w.key)).toEqual(["auth_user"]);
  });

  test("min_pool_size above the pool size is an error, globally and per database", () => {
    expect(
      problemsOf(() =>
        loadIni("[databases]\na = pool_size=2 min_pool_size=3\n[pgbouncer]\nauth_type = trust\nmin_pool_size = 30\n"),
      ),
    ).toEqual([
      "/etc/pgbouncer/pgbouncer.ini:2: databases.a.min_pool_size: min_pool_size 3 is larger than the pool size 2 (lower min_pool_size or raise pool_size)",
      "/etc/pgbouncer/pgbouncer.ini:5: min_pool_size: 30 is larger than default_pool_size 20 (lower min_pool_size or raise default_pool_size)",
    ]);
  });

  test("the admin console's database names are reserved", () => {
    expect(problemsOf(() => loadIni("[databases]\npgbouncer = host=x\n"))).toEqual([
      "/etc/pgbouncer/pgbouncer.ini:2: databases.pgbouncer: the name pgbouncer is reserved for the admin console (rename this database)",
    ]);
  });

  test("a name JavaScript treats specially is refused rather than silently dropped", () => {
    expect(problemsOf(() => loadIni("[databases]\n__proto__ = host=x\n"))).toEqual([
      "/etc/pgbouncer/pgbouncer.ini:2: databases.__proto__: this name cannot be used (rename it)",
    ]);
  });

  test("the admin port may not collide with the client port", () => {
    expect(
      problemsOf(() => loadIni("[pgbouncer]\nauth_type = trust\nlisten_addr = *\nadmin_listen_port = 6432\n")),
    ).toEqual([
      "/etc/pgbouncer/pgbouncer.ini:4: admin_listen_port: is the same port as listen_port 6432 on an overlapping address (pick another admin_listen_port)",
    ]);
  });

  test("TLS for clients needs a key and a certificate", () => {
    expect(problemsOf(() => loadIni("[pgbouncer]\nauth_type = trust\nclient_tls_sslmode = require\n"))[0]).toMatch(
      /:3: client_tls_sslmode: require needs a certificate \(set client_tls_key_file and client_tls_cert_file\)$/,
    );
  });

  test("peer ids must be numbers", () => {
    expect(problemsOf(() => loadIni("[peers]\nfirst = host=x\n"))[0]).toMatch(/:2: peers\.first: a peer id must be/);
  });

  test("every problem in a file is reported at once, in file order", () => {
    const problems = problemsOf(() =>
      loadIni("[pgbouncer]\nauth_type = trust\nlisten_port = x\n[databases]\na = port=0\n[pgbouncer]\nworkers = 0\n"),
    );
    expect(problems.map((p) => p.split(":")[1])).toEqual(["3", "5", "7"]);
  });
});
