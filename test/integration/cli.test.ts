import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { freePort } from "../support/free-port.js";
import { type TestPostgres, testPostgres } from "../support/test-postgres.js";
import { waitUntil } from "../support/wait-until.js";

const run = promisify(execFile);
const main = fileURLToPath(new URL("../../packages/cli/dist/main.js", import.meta.url));

/** The pgmux binary, as an operator runs it: an existing pgbouncer.ini and userlist.txt, psql in front. */
describe("pgmux --config pgbouncer.ini", () => {
  let pg: TestPostgres;
  let dir: string;
  let port: number;
  let child: ChildProcess;
  let output = "";

  beforeAll(async () => {
    pg = await testPostgres();
    dir = mkdtempSync(join(tmpdir(), "pgmux-cli-"));
    port = await freePort();
    writeFileSync(join(dir, "userlist.txt"), `"${pg.user}" "${pg.password}"\n"nobody" "md5${"0".repeat(32)}"\n`);
    writeFileSync(
      join(dir, "pgbouncer.ini"),
      [
        "[databases]",
        `app = host=${pg.host} port=${pg.port} dbname=${pg.database}`,
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        `listen_port = ${port}`,
        `unix_socket_dir = ${dir}`,
        "auth_type = scram-sha-256",
        "auth_file = userlist.txt",
        "pool_mode = transaction",
        "default_pool_size = 2",
        "logfile = /var/log/pgbouncer.log",
        "",
      ].join("\n"),
    );
    child = spawn(process.execPath, [main, join(dir, "pgbouncer.ini")], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr!.on("data", (d: Buffer) => {
      output += d.toString();
    });
    await waitUntil("pgmux to start", () => output.includes('"pgmux started"'), {
      timeoutMs: 15_000,
      detail: () => output,
    });
  });

  afterAll(async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test("serves psql over TCP and over the Unix socket with the ini's users and databases", async () => {
    const env = { ...process.env, PGPASSWORD: pg.password };
    const tcp = await run(
      "psql",
      ["-h", "127.0.0.1", "-p", String(port), "-U", pg.user, "-d", "app", "-Atc", "select 40 + 2"],
      {
        env,
      },
    );
    expect(tcp.stdout.trim()).toBe("42");
    const unix = await run(
      "psql",
      ["-h", dir, "-p", String(port), "-U", pg.user, "-d", "app", "-Atc", "select current_database()"],
      {
        env,
      },
    );
    expect(unix.stdout.trim()).toBe(pg.database);
  });

  test("warns at start-up, naming file and line, about a PgBouncer setting it does not act on yet", () => {
    expect(output).toMatch(/"key":"logfile".*"line":12/);
  });

  test("refuses a database the ini does not name with 3D000", async () => {
    const env = { ...process.env, PGPASSWORD: pg.password };
    const err = await run(
      "psql",
      ["-h", "127.0.0.1", "-p", String(port), "-U", pg.user, "-d", "other", "-c", "select 1"],
      {
        env,
      },
    ).catch((e: { stderr: string }) => e);
    expect((err as { stderr: string }).stderr).toContain('database "other" is not configured in pgmux');
  });

  test("stops on SIGTERM", async () => {
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(0);
  });
});

describe("pgmux check", () => {
  test("accepts a valid file and names the file, line and key of each problem in a broken one, without secrets", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pgmux-check-"));
    try {
      writeFileSync(join(dir, "userlist.txt"), '"u" "s3cret-in-userlist"\n');
      writeFileSync(
        join(dir, "good.ini"),
        "[databases]\nd = host=127.0.0.1 password=s3cret-in-ini\n[pgbouncer]\nauth_file = userlist.txt\n",
      );
      const good = await run(process.execPath, [main, "check", join(dir, "good.ini")]);
      expect(good.stdout).toContain("configuration is valid");
      writeFileSync(
        join(dir, "bad.ini"),
        "[databases]\nd = host=127.0.0.1 password=s3cret-in-ini\n[pgbouncer]\nauth_file = userlist.txt\nmax_client_con = 10\n",
      );
      const bad = await run(process.execPath, [main, "check", join(dir, "bad.ini")]).catch(
        (e: { code: number; stderr: string }) => e,
      );
      expect((bad as { code: number }).code).toBe(1);
      const stderr = (bad as { stderr: string }).stderr;
      expect(stderr).toContain("bad.ini:5: max_client_con");
      expect(stderr).toContain("max_client_conn");
      expect(stderr).not.toContain("s3cret");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("pgmux configuration from the environment and flags", () => {
  test("--print-config shows defaults < file < environment < flags, secrets redacted", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pgmux-print-"));
    try {
      writeFileSync(join(dir, "userlist.txt"), '"u" "s3cret-in-userlist"\n');
      writeFileSync(
        join(dir, "pgmux.ini"),
        "[databases]\nd = host=127.0.0.1 password=s3cret-in-ini\n[pgbouncer]\nauth_file = userlist.txt\nlisten_port = 7000\ndefault_pool_size = 11\nmax_client_conn = 50\n",
      );
      const out = await run(
        process.execPath,
        [main, "--print-config", "--set", "default_pool_size=13", join(dir, "pgmux.ini")],
        {
          env: {
            ...process.env,
            PGMUX_DEFAULT_POOL_SIZE: "12",
            PGMUX_LISTEN_PORT: "7001",
            PGMUX_ADMIN_API_TOKEN: "t0ken-in-env",
          },
        },
      );
      expect(out.stdout).toContain("listen_port: 7001");
      expect(out.stdout).toContain("default_pool_size: 13");
      expect(out.stdout).toContain("max_client_conn: 50");
      expect(out.stdout).toContain("max_db_connections: 0");
      expect(out.stdout).not.toMatch(/s3cret|t0ken/);
      expect(out.stdout).toContain('admin_api_token: "********"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("check names a bad environment value by its variable and exits 1 without showing secrets", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pgmux-check-env-"));
    try {
      writeFileSync(join(dir, "token"), "t0ken-in-a-file\n");
      writeFileSync(join(dir, "p.yaml"), "pgmux:\n  auth_type: trust\ndatabases:\n  d: { host: 127.0.0.1 }\n");
      const bad = await run(process.execPath, [main, "check", join(dir, "p.yaml")], {
        env: { ...process.env, PGMUX_POOL_MODE: "sometimes", PGMUX_ADMIN_API_TOKEN_FILE: join(dir, "token") },
      }).catch((e: { code: number; stderr: string; stdout: string }) => e);
      expect((bad as { code: number }).code).toBe(1);
      const stderr = (bad as { stderr: string }).stderr;
      expect(stderr).toContain("env PGMUX_POOL_MODE: pool_mode:");
      expect(stderr).not.toContain("t0ken");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("runs from DATABASE_URL alone, without a file, and serves psql", async () => {
    const pg = await testPostgres();
    const port = await freePort();
    const adminPort = await freePort();
    const child = spawn(process.execPath, [main, "--set", `admin_listen_port=${adminPort}`], {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        DATABASE_URL: `postgres://${encodeURIComponent(pg.user)}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${pg.database}`,
        PGMUX_LISTEN_ADDR: "127.0.0.1",
        PGMUX_LISTEN_PORT: String(port),
        PGMUX_UNIX_SOCKET_DIR: "",
        PGMUX_AUTH_TYPE: "scram-sha-256",
        PGMUX_POOL_MODE: "transaction",
      },
    });
    let output = "";
    child.stdout!.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr!.on("data", (d: Buffer) => {
      output += d.toString();
    });
    try {
      await waitUntil("pgmux to start", () => output.includes('"pgmux started"'), {
        timeoutMs: 15_000,
        detail: () => output,
      });
      const banner = JSON.parse(output.split("\n").find((l) => l.includes('"pgmux started"'))!) as Record<
        string,
        unknown
      >;
      expect(banner).toMatchObject({
        config: "(environment and flags only)",
        listen: [`127.0.0.1:${port}`],
        admin: `http://127.0.0.1:${adminPort}`,
        databases: [{ name: pg.database, pool_mode: "transaction", pool_size: 20 }],
      });
      expect(typeof banner.version).toBe("string");
      const r = await run(
        "psql",
        ["-h", "127.0.0.1", "-p", String(port), "-U", pg.user, "-d", pg.database, "-Atc", "select 6 * 7"],
        { env: { ...process.env, PGPASSWORD: pg.password } },
      );
      expect(r.stdout.trim()).toBe("42");
      expect(output).not.toContain(pg.password);
    } finally {
      child.kill("SIGINT");
      await new Promise((resolve) => child.once("exit", resolve));
    }
  });
});
