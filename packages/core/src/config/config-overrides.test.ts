import { describe, expect, test } from "vitest";
import { ConfigError } from "./config-error.js";
import { combineOverrides, databaseUrlOverrides, envOverrides, flagOverrides } from "./config-overrides.js";
import type { ReadTextFile } from "./ini-parser.js";
import { loadConfig, loadConfigWithoutFile } from "./load-config.js";

function memoryFiles(files: Record<string, string>): ReadTextFile {
  return (path) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
    return text;
  };
}

const INI = [
  "[databases]",
  "app = host=db.internal port=5432",
  "[pgbouncer]",
  "listen_port = 7000",
  "default_pool_size = 11",
  "pool_mode = session",
  "auth_file = userlist.txt",
  "",
].join("\n");

const FILES = memoryFiles({
  "/etc/pgmux/pgbouncer.ini": INI,
  "/etc/pgmux/userlist.txt": '"alice" "from-the-file"\n',
  "/run/secrets/token": "t0ken-from-a-secret\n",
  "/run/secrets/userlist": '"bob" "bob-secret"\n',
});

function failure(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("precedence: defaults < file < environment < flags", () => {
  test("a key the file does not set keeps its default; the file beats the default", () => {
    const { config } = loadConfig("/etc/pgmux/pgbouncer.ini", FILES);
    expect(config.pgmux.max_client_conn).toBe(100);
    expect(config.pgmux.listen_port).toBe(7000);
  });

  test("the environment beats the file, and a flag beats both", () => {
    const env = envOverrides({
      PGMUX_LISTEN_PORT: "7001",
      PGMUX_DEFAULT_POOL_SIZE: "12",
      PGMUX_POOL_MODE: "transaction",
    });
    const flags = flagOverrides(["listen_port=7002", "databases.app.pool_size=3"]);
    const { config } = loadConfig("/etc/pgmux/pgbouncer.ini", FILES, combineOverrides(env, flags));
    expect(config.pgmux.listen_port).toBe(7002);
    expect(config.pgmux.default_pool_size).toBe(12);
    expect(config.pgmux.pool_mode).toBe("transaction");
    expect(config.databases.app).toMatchObject({ host: "db.internal", pool_size: 3 });
  });

  test("every general key has a PGMUX_ variable (upper case of its name)", () => {
    const env = envOverrides({
      PGMUX_QUERY_WAIT_TIMEOUT: "2.5",
      PGMUX_ADMIN_LISTEN_ADDR: "0.0.0.0",
      PGMUX_SERVICE_NAME: "x",
    });
    const { config } = loadConfig("/etc/pgmux/pgbouncer.ini", FILES, env);
    expect(config.pgmux.query_wait_timeout).toBe(2.5);
    expect(config.pgmux.admin_listen_addr).toBe("0.0.0.0");
    expect(config.pgmux.job_name).toBe("x");
  });

  test("a whole database entry from the environment replaces the file's", () => {
    const env = envOverrides({ PGMUX_DATABASES__app: "host=other port=6000", PGMUX_DATABASES__reports: "host=r" });
    const { config } = loadConfig("/etc/pgmux/pgbouncer.ini", FILES, env);
    expect(config.databases.app).toMatchObject({ host: "other", port: 6000 });
    expect(Object.keys(config.databases).sort()).toEqual(["app", "reports"]);
  });
});

describe("*_FILE variables", () => {
  test("a secret is read from the file named by <NAME>_FILE, without its trailing newline", () => {
    const env = envOverrides({ PGMUX_ADMIN_API_TOKEN_FILE: "/run/secrets/token" }, FILES);
    const { config } = loadConfig("/etc/pgmux/pgbouncer.ini", FILES, env);
    expect(config.pgmux.admin_api_token).toBe("t0ken-from-a-secret");
  });

  test("PGMUX_AUTH_FILE is the auth_file setting itself; PGMUX_USERLIST_FILE adds users over it", () => {
    const env = envOverrides(
      { PGMUX_AUTH_FILE: "/etc/pgmux/userlist.txt", PGMUX_USERLIST_FILE: "/run/secrets/userlist" },
      FILES,
    );
    const { config } = loadConfigWithoutFile(env, FILES);
    expect(config.pgmux.auth_file).toBe("/etc/pgmux/userlist.txt");
    expect(config.auth).toEqual({ alice: "from-the-file", bob: "bob-secret" });
  });

  test("both NAME and NAME_FILE set is a problem; an unreadable file is one too, and neither shows a secret", () => {
    const env = envOverrides(
      {
        PGMUX_ADMIN_API_TOKEN: "visible-secret",
        PGMUX_ADMIN_API_TOKEN_FILE: "/run/secrets/token",
        PGMUX_USERLIST_FILE: "/run/secrets/missing",
      },
      FILES,
    );
    const err = failure(() => loadConfig("/etc/pgmux/pgbouncer.ini", FILES, env));
    expect(err.problems.map((p) => p.text)).toEqual([
      "env PGMUX_ADMIN_API_TOKEN_FILE: admin_api_token: PGMUX_ADMIN_API_TOKEN is set too (set only one of PGMUX_ADMIN_API_TOKEN and PGMUX_ADMIN_API_TOKEN_FILE)",
      "env PGMUX_USERLIST_FILE: userlist: cannot read /run/secrets/missing: no such file (check the path, and that the file is mounted)",
    ]);
    expect(err.message).not.toContain("visible-secret");
    expect(err.message).not.toContain("t0ken");
  });
});

describe("errors name where a value came from", () => {
  test("a bad environment value reads env NAME: key: problem", () => {
    const err = failure(() =>
      loadConfig("/etc/pgmux/pgbouncer.ini", FILES, envOverrides({ PGMUX_LISTEN_PORT: "70000" })),
    );
    expect(err.problems.map((p) => p.text)).toEqual([
      "env PGMUX_LISTEN_PORT: listen_port: must be at most 65535 (lower it)",
    ]);
  });

  test("a bad flag reads --set key: key: problem, and a mistyped key gets a suggestion", () => {
    const err = failure(() =>
      loadConfig(
        "/etc/pgmux/pgbouncer.ini",
        FILES,
        flagOverrides(["pool_mode=sometimes", "max_client_con=5", "nonsense"]),
      ),
    );
    const texts = err.problems.map((p) => p.text);
    expect(texts).toContain("--set: nonsense is not key=value (write e.g. --set listen_port=6433)");
    expect(texts).toContain(
      '--set pool_mode: pool_mode: "sometimes" is not a valid choice (write one of: session, transaction, statement)',
    );
    expect(texts).toContain("--set max_client_con: max_client_con: unknown setting (did you mean max_client_conn?)");
  });

  test("a PGMUX_ variable that looks like a mistyped setting is a warning; other PGMUX_ names are ignored", () => {
    const env = envOverrides({ PGMUX_DEFAULT_POOLSIZE: "5", PGMUX_TEST_LOG: "debug" });
    expect(env.overrides).toEqual([]);
    expect(env.warnings.map((w) => w.text)).toEqual([
      "env PGMUX_DEFAULT_POOLSIZE: PGMUX_DEFAULT_POOLSIZE is not a pgmux setting and is ignored (did you mean PGMUX_DEFAULT_POOL_SIZE?)",
    ]);
  });

  test("a database password given in the environment never appears in a problem", () => {
    const env = envOverrides({ PGMUX_DATABASES__app: "host=x password=hunter2-secret port=notaport" });
    const err = failure(() => loadConfig("/etc/pgmux/pgbouncer.ini", FILES, env));
    expect(err.message).toContain("env PGMUX_DATABASES__app: databases.app.port");
    expect(err.message).not.toContain("hunter2");
  });
});

describe("DATABASE_URL", () => {
  test("is one database, named like its dbname, with the URL's user and password in the user list", () => {
    const env = envOverrides({ DATABASE_URL: "postgres://app%40x:p%3Ass@db.internal:5433/orders?pool_size=7" });
    const { config } = loadConfigWithoutFile(env);
    expect(config.databases).toEqual({ orders: { host: "db.internal", port: 5433, dbname: "orders", pool_size: 7 } });
    expect(config.auth).toEqual({ "app@x": "p:ss" });
  });

  test("a URL that is not postgres:// or names no database is a problem without its password", () => {
    expect(databaseUrlOverrides("mysql://u:pw@h/d", "env DATABASE_URL").problems[0]!.text).toBe(
      "env DATABASE_URL: DATABASE_URL: has the scheme mysql (write postgres://user:password@host:5432/dbname)",
    );
    const bad = databaseUrlOverrides("postgres://u:pw@h/d?frobnicate=1", "env DATABASE_URL");
    expect(bad.problems[0]!.text).toContain("DATABASE_URL.frobnicate");
    expect(JSON.stringify(bad.problems)).not.toContain("pw");
  });
});
