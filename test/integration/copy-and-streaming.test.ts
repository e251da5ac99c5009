import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import net from "node:net";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  type BackendMessage,
  decodeBackendMessage,
  encodeCopyData,
  encodeQuery,
  encodeStartupMessage,
  encodeTerminate,
  FrameReader,
  ProtocolVersion,
  TransactionStatus,
} from "@pgmux/protocol";
import pg from "pg";
import postgres from "postgres";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
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

/** V8's gc(), exposed at run time (vitest gives no way to pass --expose-gc to its workers). */
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as (options?: { type: "major" | "minor" }) => void;
function collectGarbage(type: "major" | "minor" = "major"): void {
  gc({ type });
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

/**
 * A minimal frontend speaking the protocol by hand, for exchanges no driver produces on demand. It logs in
 * without a password (the pgmux instance it talks to uses auth_type trust) and keeps every backend message.
 */
class RawClient {
  readonly messages: BackendMessage[] = [];
  private readonly reader = new FrameReader(
    (type, buf, start, end) =>
      this.messages.push(decodeBackendMessage(type, Buffer.from(buf.subarray(start, end)), 0, end - start)),
    { maxMessageBytes: 1 << 30 },
  );
  private seen = 0;

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => this.reader.push(chunk));
    socket.on("error", () => {});
  }

  static async open(host: string, port: number, user: string, database: string): Promise<RawClient> {
    const socket = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const client = new RawClient(socket);
    client.send(
      encodeStartupMessage({
        protocolVersion: ProtocolVersion.V3_0,
        parameters: [
          ["user", user],
          ["database", database],
        ],
      }),
    );
    await client.next("ReadyForQuery");
    return client;
  }

  send(...messages: Buffer[]): void {
    this.socket.write(Buffer.concat(messages));
  }

  /** The next message of `type` after the ones already returned; messages of other types are passed over. */
  async next<T extends BackendMessage["type"]>(
    type: T,
    timeoutMs = 5_000,
  ): Promise<Extract<BackendMessage, { type: T }>> {
    let found: BackendMessage | undefined;
    await waitUntil(
      `a ${type} from pgmux`,
      () => {
        while (this.seen < this.messages.length) {
          const m = this.messages[this.seen++]!;
          if (m.type === type) {
            found = m;
            return true;
          }
        }
        return false;
      },
      { timeoutMs, intervalMs: 5, detail: () => `got: ${this.messages.map((m) => m.type).join(", ")}` },
    );
    return found as Extract<BackendMessage, { type: T }>;
  }

  close(): void {
    this.socket.end(encodeTerminate());
  }
}

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
  });

  // A pgmux of each test's own: a server one test leaves stuck must not fail the next.
  beforeEach(async () => {
    instance = await startPooler({
      postgres: server,
      settings: { defaultPoolSize: 1, queryWaitTimeoutMs: 5_000, authType: "trust" },
    });
  });

  afterEach(async () => {
    await stopWithin(instance);
  });

  test("a client that moves on without CopyDone after the server refused its COPY gets its server released", async () => {
    // The protocol lets a client drop a COPY the server has ended with ErrorResponse and ReadyForQuery:
    // the server ignores any CopyData/CopyDone/CopyFail that follow, so a client need not send them.
    const raw = await RawClient.open(instance.host, instance.port, server.user, database);
    try {
      raw.send(encodeQuery({ query: "copy copied_early (id, payload) from stdin" }));
      await raw.next("CopyInResponse");
      raw.send(encodeCopyData({ data: Buffer.from("not a number\tboom\n") }));
      const error = await raw.next("ErrorResponse");
      expect(error.fields.get("C")).toBe("22P02");
      expect((await raw.next("ReadyForQuery")).status).toBe(TransactionStatus.Idle);

      raw.send(encodeQuery({ query: "select count(*) from copied_early" }));
      const row = await raw.next("DataRow");
      expect(row.values.map((v) => v?.toString("utf8"))).toEqual(["0"]);
      expect((await raw.next("ReadyForQuery")).status).toBe(TransactionStatus.Idle);

      const pool = onlyPool(instance);
      const session = [...instance.pooler.clients][0]!;
      await waitUntil(
        "the idle client's server to go back to the pool",
        () => pool.active === 0 && pool.idleCount === 1,
        {
          timeoutMs: 2_000,
          detail: () =>
            `pool active=${pool.active} idle=${pool.idleCount}; client state=${session.state} owed=${session.owed} copyIn=${session.copyIn}`,
        },
      );
      const other = await connect({ ...instance.params({ database }), query_timeout: 3_000 });
      try {
        expect((await other.query("select 'served' as state")).rows).toEqual([{ state: "served" }]);
      } finally {
        await other.end();
      }
    } finally {
      raw.close();
    }
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
  let observer: pg.Client;

  beforeAll(async () => {
    server = await testPostgres();
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 1 } });
    observer = await connect(server.params());
    // The pool and its one server exist before the tests measure anything.
    const warm = await connect(instance.params());
    await warm.query("select 1");
    await warm.end();
  });

  afterAll(async () => {
    await observer?.end();
    await stopWithin(instance);
  });

  /**
   * Samples this process's RSS until stopped and returns its growth over the starting value. pgmux runs in
   * this process and the clients below run in child processes, so the growth is pgmux's. Each sample comes
   * after a young-generation GC: every socket read allocates a fresh 64 kB buffer, and V8 lets up to about
   * 64 MB of such dead buffers pile up before it collects them, which says nothing about what pgmux holds.
   */
  function rssSampler(): { stop(): number } {
    collectGarbage();
    const start = process.memoryUsage().rss;
    let max = start;
    const timer = setInterval(() => {
      collectGarbage("minor");
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

  /** Runs a child process to its end, collecting stdout and stderr as text. */
  function child(file: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd?: string) {
    const proc = spawn(file, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], cwd });
    const out = { stdout: "", stderr: "" };
    proc.stdout.on("data", (chunk: Buffer) => {
      out.stdout += chunk.toString("utf8");
    });
    proc.stderr.on("data", (chunk: Buffer) => {
      out.stderr += chunk.toString("utf8");
    });
    const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
    return { proc, out, exited };
  }

  test("a 200 MB result to a client that stalls flows in bounded memory: pgmux stops reading while it stalls", async () => {
    const pool = onlyPool(instance);
    const before = pool.stats.bytesFromServers;
    const sampler = rssSampler();
    // psql keeps the whole result in its own memory (no FETCH_COUNT) and prints how many rows it got.
    const psql = child(
      join(findPgBinDir(), "psql"),
      [
        ...["-X", "-At", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null"],
        ...["-h", instance.host, "-p", String(instance.port), "-U", server.user, "-d", server.database],
        ...["-c", STREAM_SQL, "-c", "\\echo rows=:ROW_COUNT"],
      ],
      { PGPASSWORD: server.password },
    );
    try {
      await waitUntil("the result to start flowing", () => pool.stats.bytesFromServers - before > 1024 * 1024, {
        timeoutMs: 10_000,
        intervalMs: 1,
        detail: () => psql.out.stderr,
      });
      psql.proc.kill("SIGSTOP");
      const backendPid = [...pool.servers][0]!.backendPid;
      // With psql stopped, pgmux must stop reading from PostgreSQL: the backend blocks writing to pgmux.
      await waitUntil(
        "the server backend to block on its write to pgmux",
        async () =>
          (await observer.query("select wait_event from pg_stat_activity where pid = $1", [backendPid])).rows[0]
            ?.wait_event === "ClientWrite",
        { timeoutMs: 10_000, intervalMs: 50 },
      );
      const forwardedWhileStalled = pool.stats.bytesFromServers - before;
      expect(forwardedWhileStalled).toBeLessThan((ROW_COUNT * ROW_BYTES) / 4);
      psql.proc.kill("SIGCONT");
      const code = await psql.exited;
      const growth = sampler.stop();
      expect(code, psql.out.stderr).toBe(0);
      expect(psql.out.stdout.trim()).toBe(`rows=${ROW_COUNT}`);
      expect(pool.stats.bytesFromServers - before).toBeGreaterThan(ROW_COUNT * ROW_BYTES);
      expect(growth).toBeLessThan(RSS_LIMIT);
    } finally {
      if (psql.proc.exitCode === null && psql.proc.signalCode === null) {
        psql.proc.kill("SIGCONT");
        psql.proc.kill("SIGKILL");
      }
    }
  });

  test("a 200 MB result read through a postgres.js cursor streams in bounded memory", async () => {
    // postgres.js runs in a child process; through the extended protocol (a parameterless unsafe query would
    // go as a simple Query, which has no cursor): Execute with a row limit, PortalSuspended, next Execute.
    const script = `
      import postgres from "postgres";
      const sql = postgres(process.env.PGMUX_URL, { max: 1, prepare: false, onnotice: () => {}, connect_timeout: 10 });
      let rows = 0;
      let chars = 0;
      for await (const batch of sql.unsafe(process.env.STREAM_SQL, [], { simple: false }).cursor(2000)) {
        rows += batch.length;
        for (const row of batch) chars += row.r.length;
      }
      const [after] = await sql\`select 'after' as word\`;
      await sql.end({ timeout: 5 });
      process.stdout.write(JSON.stringify({ rows, chars, after: after.word }));
    `;
    const testDir = fileURLToPath(new URL("..", import.meta.url));
    const sampler = rssSampler();
    const node = child(
      process.execPath,
      ["--input-type=module", "-e", script],
      { PGMUX_URL: instance.url(), STREAM_SQL },
      testDir,
    );
    const code = await node.exited;
    const growth = sampler.stop();
    expect(code, node.out.stderr).toBe(0);
    expect(JSON.parse(node.out.stdout)).toEqual({ rows: ROW_COUNT, chars: ROW_COUNT * ROW_BYTES, after: "after" });
    expect(growth).toBeLessThan(RSS_LIMIT);
    const pool = onlyPool(instance);
    await waitUntil("the server back in the pool", () => pool.active === 0 && pool.idleCount === 1, {
      timeoutMs: 2_000,
    });
  });
});
