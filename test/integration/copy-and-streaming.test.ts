import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findPgBinDir, runCommand, type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

let names = 0;
function unique(prefix: string): string {
  return `${prefix}_${process.pid}_${++names}`;
}

async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on("error", () => {});
  await client.connect();
  return client;
}

/**
 * Stops a pgmux instance, failing after `ms` rather than hanging the file until the hook timeout if
 * pooler.stop() does not finish.
 */
async function stopWithin(instance: PoolerInstance | undefined, ms = 10_000): Promise<void> {
  if (instance === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`pooler.stop() did not finish within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([instance.stop(), late]);
  } finally {
    clearTimeout(timer);
  }
}

function onlyPool(instance: PoolerInstance) {
  const pools = [...instance.pooler.pools.values()];
  expect(pools).toHaveLength(1);
  return pools[0]!;
}

function md5(data: string | Buffer): string {
  return createHash("md5").update(data).digest("hex");
}

const ROWS = 100_000;

/** Row `i` of the COPY data, in COPY's text format: tab-separated, newline-terminated. */
function copyLine(i: number): string {
  return `${i}\trow ${i} ${md5(String(i)).slice(0, 1 + (i % 32))}\n`;
}

/** The server's md5 of the table as COPY text, rows in id order. */
const SERVER_MD5 = "select md5(string_agg(id || E'\\t' || payload || E'\\n', '' order by id)) as h, count(*)::int as n";

describe("COPY through pgmux in transaction mode", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;
  let database: string;
  let expectedMd5: string;

  beforeAll(async () => {
    server = await testPostgres();
    database = unique("copy_db");
    await server.createDatabase(database);
    await server.psql(
      "create table copied_js (id int primary key, payload text not null); create table copied_psql (like copied_js including all); create table copied_bad (like copied_js including all)",
      { database },
    );
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 2 } });
    const all = createHash("md5");
    for (let i = 1; i <= ROWS; i++) all.update(copyLine(i));
    expectedMd5 = all.digest("hex");
  });

  afterAll(async () => {
    await stopWithin(instance);
  });

  async function serverMd5(table: string): Promise<{ h: string; n: number }> {
    const [h, n] = (await server.psql(`${SERVER_MD5} from ${table}`, { database })).split("|");
    return { h: h!, n: Number(n) };
  }

  test("postgres.js copies 100k rows in and out with matching checksums, and its connection goes on", async () => {
    const sql = postgres(instance.url({ database }), {
      max: 1,
      prepare: false,
      onnotice: () => {},
      connect_timeout: 10,
    });
    try {
      const sent = createHash("md5");
      async function* lines() {
        // Batches of lines, so the chunks the client writes do not line up with rows or messages.
        let batch = "";
        for (let i = 1; i <= ROWS; i++) {
          const line = copyLine(i);
          sent.update(line);
          batch += line;
          if (batch.length > 7_777) {
            yield batch;
            batch = "";
          }
        }
        if (batch !== "") yield batch;
      }
      const writable = await sql`copy copied_js (id, payload) from stdin`.writable();
      await pipeline(Readable.from(lines()), writable);
      expect(sent.digest("hex")).toBe(expectedMd5);
      expect(await serverMd5("copied_js")).toEqual({ h: expectedMd5, n: ROWS });

      const received = createHash("md5");
      let bytes = 0;
      const readable = await sql`copy (select id, payload from copied_js order by id) to stdout`.readable();
      await pipeline(
        readable,
        new Writable({
          write(chunk: Buffer, _encoding, callback) {
            received.update(chunk);
            bytes += chunk.length;
            callback();
          },
        }),
      );
      expect(received.digest("hex")).toBe(expectedMd5);
      expect(bytes).toBeGreaterThan(ROWS * 8);

      expect(await sql`select count(*)::int as n from copied_js`).toEqual([{ n: ROWS }]);
    } finally {
      await sql.end({ timeout: 5 });
    }
    const pool = onlyPool(instance);
    await waitUntil("every server back in the pool", () => pool.active === 0 && pool.idleCount === pool.servers.size, {
      timeoutMs: 2_000,
    });
  });

  test("psql \\copy from stdin and to stdout carries 100k rows with matching checksums", async () => {
    const psql = join(findPgBinDir(), "psql");
    const args = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", instance.host, "-p", String(instance.port)];
    const env = { ...process.env, PGPASSWORD: server.password, PGUSER: server.user, PGDATABASE: database };
    let input = "";
    for (let i = 1; i <= ROWS; i++) input += copyLine(i);
    expect(md5(input)).toBe(expectedMd5);

    const copyIn = await runCommand(psql, [...args, "-c", "\\copy copied_psql (id, payload) from stdin"], {
      timeoutMs: 30_000,
      env,
      input: `${input}\\.\n`,
    });
    expect(copyIn.code, copyIn.stderr).toBe(0);
    expect(await serverMd5("copied_psql")).toEqual({ h: expectedMd5, n: ROWS });

    const copyOut = await runCommand(
      psql,
      [...args, "-c", "\\copy (select id, payload from copied_psql order by id) to stdout"],
      { timeoutMs: 30_000, env },
    );
    expect(copyOut.code, copyOut.stderr).toBe(0);
    expect(md5(copyOut.stdout)).toBe(expectedMd5);
  });

  test("a COPY FROM STDIN the server rejects midway reports the error, keeps nothing, and frees the server", async () => {
    const psql = join(findPgBinDir(), "psql");
    const args = ["-X", "-q", "-h", instance.host, "-p", String(instance.port)];
    const env = { ...process.env, PGPASSWORD: server.password, PGUSER: server.user, PGDATABASE: database };
    let input = "";
    for (let i = 1; i <= 20_000; i++) input += i === 10_000 ? "not a number\tboom\n" : copyLine(i);
    // Without ON_ERROR_STOP psql goes on to the next command on the same connection.
    const run = await runCommand(
      psql,
      [
        ...args,
        "-At",
        "-c",
        "\\copy copied_bad (id, payload) from stdin",
        "-c",
        "select count(*), 'after' from copied_bad",
      ],
      { timeoutMs: 30_000, env, input: `${input}\\.\n` },
    );
    expect(run.stderr).toMatch(/invalid input syntax for type integer: "not a number"/);
    expect(run.stdout.trim()).toBe("0|after");
    const pool = onlyPool(instance);
    await waitUntil("every server back in the pool", () => pool.active === 0 && pool.idleCount === pool.servers.size, {
      timeoutMs: 2_000,
    });
  });
});

describe("a COPY FROM STDIN the server rejects early, from a client that then idles", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;
  let database: string;

  beforeAll(async () => {
    server = await testPostgres();
    database = unique("copy_early_db");
    await server.createDatabase(database);
    await server.psql("create table copied_early (id int primary key, payload text not null)", { database });
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 1, queryWaitTimeoutMs: 5_000 } });
  });

  afterAll(async () => {
    await stopWithin(instance);
  });

  test("the server goes back to the pool once the client has finished sending, though the client sends nothing more", async () => {
    // psql reads commands and COPY data from its stdin, which stays open: after the COPY it sits idle at its
    // prompt, holding no transaction. The bad row comes first, so the server refuses the COPY (and sends its
    // ReadyForQuery) while psql is still sending the other rows; psql sends them all, then CopyDone.
    const child = spawn(
      join(findPgBinDir(), "psql"),
      ["-X", "-At", "-h", instance.host, "-p", String(instance.port), "-U", server.user, "-d", database],
      { env: { ...process.env, PGPASSWORD: server.password }, stdio: ["pipe", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    child.stdin.on("error", () => {});
    try {
      let input = "\\copy copied_early (id, payload) from stdin\n";
      for (let i = 1; i <= 1_000_000; i++) input += i === 5 ? "not a number\tboom\n" : `${i}\tx\n`;
      child.stdin.write(`${input}\\.\n`);
      await waitUntil("psql to report the COPY's error", () => output.includes("ERROR"), {
        timeoutMs: 20_000,
        detail: () => output,
      });
      expect(output).toMatch(/invalid input syntax for type integer: "not a number"/);

      const pool = onlyPool(instance);
      const session = [...instance.pooler.clients][0]!;
      await waitUntil(
        "the idle psql's server to go back to the pool",
        () => pool.active === 0 && pool.idleCount === 1,
        {
          timeoutMs: 2_000,
          detail: () =>
            `pool active=${pool.active} idle=${pool.idleCount}; client state=${session.state} owed=${session.owed} copyIn=${session.copyIn}`,
        },
      );
      // The pool's one server serves another client while psql idles.
      const other = await connect({ ...instance.params({ database }), query_timeout: 3_000 });
      try {
        expect((await other.query("select count(*)::int as n from copied_early")).rows).toEqual([{ n: 0 }]);
      } finally {
        await other.end();
      }
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      child.stdin.end("select 'still there';\n");
      expect(await exited).toBe(0);
      expect(output).toContain("still there");
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });
});

describe("large results through pgmux", () => {
  const ROW_COUNT = 200_000;
  const ROW_BYTES = 1000;
  const STREAM_SQL = `select repeat('x', ${ROW_BYTES}) as r from generate_series(1, ${ROW_COUNT})`;
  const RSS_LIMIT = 64 * 1024 * 1024;

  let server: TestPostgres;
  let instance: PoolerInstance;

  beforeAll(async () => {
    server = await testPostgres();
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 1 } });
  });

  afterAll(async () => {
    await stopWithin(instance);
  });

  /** Samples this process's RSS (pgmux runs in it) until stopped; returns the growth over the starting value. */
  function rssSampler(): { stop(): number } {
    const start = process.memoryUsage().rss;
    let max = start;
    const timer = setInterval(() => {
      max = Math.max(max, process.memoryUsage().rss);
    }, 10);
    return {
      stop() {
        clearInterval(timer);
        max = Math.max(max, process.memoryUsage().rss);
        return max - start;
      },
    };
  }

  test("a 200 MB result read by a stalling client flows in bounded memory: pgmux stops reading while it stalls", async () => {
    const client = await connect(instance.params());
    const stream = (client as unknown as { connection: { stream: NodeJS.ReadableStream } }).connection.stream;
    const observer = await connect(server.params());
    try {
      const sampler = rssSampler();
      let rows = 0;
      let chars = 0;
      let paused = false;
      const done = new Promise<void>((resolve, reject) => {
        const query = client.query(new pg.Query(STREAM_SQL));
        query.on("row", (row: { r: string }) => {
          rows++;
          chars += row.r.length;
          if (rows === 1000 && !paused) {
            paused = true;
            stream.pause();
          }
        });
        query.on("end", () => resolve());
        query.on("error", reject);
      });
      await waitUntil("the client to stall", () => paused, { timeoutMs: 10_000 });
      const pool = onlyPool(instance);
      const backendPid = [...pool.servers][0]!.backendPid;
      // PostgreSQL blocks writing to pgmux once pgmux stops reading from it (backpressure reached the server).
      await waitUntil(
        "the server backend to block on its write to pgmux",
        async () =>
          (await observer.query("select wait_event from pg_stat_activity where pid = $1", [backendPid])).rows[0]
            ?.wait_event === "ClientWrite",
        { timeoutMs: 10_000, intervalMs: 50 },
      );
      const forwardedWhileStalled = pool.stats.bytesFromServers;
      expect(forwardedWhileStalled).toBeLessThan(RSS_LIMIT / 2);
      stream.resume();
      await done;
      const growth = sampler.stop();
      expect(rows).toBe(ROW_COUNT);
      expect(chars).toBe(ROW_COUNT * ROW_BYTES);
      expect(pool.stats.bytesFromServers).toBeGreaterThan(ROW_COUNT * ROW_BYTES);
      expect(growth).toBeLessThan(RSS_LIMIT);
    } finally {
      await Promise.all([client.end(), observer.end()]);
    }
  });

  test("a 200 MB result read through a postgres.js cursor streams in bounded memory", async () => {
    const sql = postgres(instance.url(), { max: 1, prepare: false, onnotice: () => {}, connect_timeout: 10 });
    try {
      await sql`select 1`;
      const sampler = rssSampler();
      let rows = 0;
      let chars = 0;
      // Through the extended protocol (a parameterless unsafe query would go as a simple Query, which
      // has no cursor): Execute with a row limit, PortalSuspended, the next Execute when the batch is consumed.
      const query = sql.unsafe(STREAM_SQL, [], { simple: false } as postgres.UnsafeQueryOptions);
      for await (const batch of query.cursor(2000)) {
        rows += batch.length;
        for (const row of batch) chars += (row.r as string).length;
      }
      const growth = sampler.stop();
      expect(rows).toBe(ROW_COUNT);
      expect(chars).toBe(ROW_COUNT * ROW_BYTES);
      expect(growth).toBeLessThan(RSS_LIMIT);
      expect(await sql`select 'after' as word`).toEqual([{ word: "after" }]);
    } finally {
      await sql.end({ timeout: 5 });
    }
    const pool = onlyPool(instance);
    await waitUntil("the server back in the pool", () => pool.active === 0 && pool.idleCount === 1, {
      timeoutMs: 2_000,
    });
  });
});
