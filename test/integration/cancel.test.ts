import { randomInt } from "node:crypto";
import net from "node:net";
import pg from "pg";
import postgres from "postgres";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

const CANCEL_REQUEST_CODE = 80877102;

async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** The BackendKeyData pgmux sent this node-postgres client. */
function keyOf(client: pg.Client): { pid: number; key: number } {
  const c = client as unknown as { processID: number | null; secretKey: number | null };
  if (c.processID === null || c.secretKey === null) throw new Error("the client got no BackendKeyData");
  return { pid: c.processID, key: c.secretKey };
}

/**
 * Sends a CancelRequest on a new connection, as libpq does, and resolves once pgmux has closed that
 * connection (it has dealt with the request by then).
 */
function sendCancel(host: string, port: number, pid: number, key: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const packet = Buffer.alloc(16);
    packet.writeInt32BE(16, 0);
    packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
    packet.writeInt32BE(pid | 0, 8);
    packet.writeInt32BE(key | 0, 12);
    const socket = net.connect({ host, port }, () => socket.end(packet));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("pgmux did not close the cancel connection within 5 s"));
    }, 5_000);
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume();
  });
}

/** Waits until a backend runs a statement containing `text` (the query has reached PostgreSQL); its pid. */
async function runningBackend(observer: pg.Client, text: string): Promise<number> {
  let pid = 0;
  await waitUntil(
    `a backend to run ${text}`,
    async () => {
      const { rows } = await observer.query(
        "select pid from pg_stat_activity where state = 'active' and query like $1 and pid <> pg_backend_pid()",
        [`%${text}%`],
      );
      pid = rows[0]?.pid ?? 0;
      return pid !== 0;
    },
    { timeoutMs: 5_000, intervalMs: 10 },
  );
  return pid;
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

/**
 * A TCP proxy in front of PostgreSQL for pgmux's server connections. Ordinary connections pass through
 * untouched; a connection that carries a CancelRequest is forwarded too, but its closing (which is how
 * pgmux learns that PostgreSQL has taken the request) is held back until `releaseCancels()`.
 */
class CancelHoldingProxy {
  readonly host = "127.0.0.1";
  port = 0;
  cancelsSeen = 0;
  private held: net.Socket[] = [];
  private holding = true;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  static async start(target: { host: string; port: number }): Promise<CancelHoldingProxy> {
    const proxy = new CancelHoldingProxy(target);
    await new Promise<void>((resolve) => proxy.server.listen({ host: proxy.host, port: 0 }, resolve));
    proxy.port = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => {});
    socket.once("readable", () => this.route(socket));
  }

  private route(socket: net.Socket): void {
    const first = socket.read() as Buffer | null;
    if (first === null) {
      socket.once("readable", () => this.route(socket));
      return;
    }
    const upstream = net.connect(this.target);
    this.sockets.add(upstream);
    upstream.on("close", () => this.sockets.delete(upstream));
    upstream.on("error", () => socket.destroy());
    const isCancel = first.length >= 8 && first.readInt32BE(0) === 16 && first.readInt32BE(4) === CANCEL_REQUEST_CODE;
    upstream.write(first);
    if (isCancel) {
      this.cancelsSeen++;
      upstream.resume();
      upstream.on("close", () => {
        if (this.holding) this.held.push(socket);
        else socket.destroy();
      });
      return;
    }
    socket.pipe(upstream);
    upstream.pipe(socket);
    socket.on("close", () => upstream.destroy());
    upstream.on("close", () => socket.destroy());
  }

  /** Lets the held cancel connections close (and any later ones close at once). */
  releaseCancels(): void {
    this.holding = false;
    for (const socket of this.held.splice(0)) socket.destroy();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function onlyPool(instance: PoolerInstance) {
  const pools = [...instance.pooler.pools.values()];
  expect(pools).toHaveLength(1);
  return pools[0]!;
}

/** A random int32 that is not `avoid`. */
function otherThan(avoid: number): number {
  let n: number;
  do n = randomInt(-(2 ** 31), 2 ** 31 - 1);
  while (n === avoid);
  return n;
}

describe("cancel requests through pgmux", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;
  let observer: pg.Client;

  beforeAll(async () => {
    server = await testPostgres();
    observer = await connect(server.params());
  });

  afterAll(async () => {
    await observer?.end();
  });

  // A pgmux of each test's own, with one server: a server one test leaves stuck must not starve the next.
  beforeEach(async () => {
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 1 } });
  });

  afterEach(async () => {
    await stopWithin(instance);
  });

  const untilRunning = (text: string) => runningBackend(observer, text);

  async function serverBackToPool(): Promise<void> {
    const pool = onlyPool(instance);
    await waitUntil("the server back in the pool", () => pool.active === 0 && pool.idleCount === pool.servers.size, {
      timeoutMs: 2_000,
    });
  }

  test("a CancelRequest with the key pgmux gave the client stops its running query with 57014 within 2 s", async () => {
    const client = await connect(instance.params());
    try {
      const { pid, key } = keyOf(client);
      const running = client.query("select pg_sleep(30) /* cancel-me-1 */");
      const outcome = running.then(
        () => null,
        (error: unknown) => error,
      );
      const backend = await untilRunning("cancel-me-1");
      // pgmux hands out its own keys, never the server's.
      expect(pid).not.toBe(backend);
      const sentAt = Date.now();
      await sendCancel(instance.host, instance.port, pid, key);
      const error = await outcome;
      const elapsedMs = Date.now() - sentAt;
      expect(error).toMatchObject({ code: "57014" });
      expect(elapsedMs).toBeLessThan(2_000);
      expect((await client.query("select 'usable' as state")).rows).toEqual([{ state: "usable" }]);
    } finally {
      await client.end();
    }
    await serverBackToPool();
  });

  test("a cancel inside a transaction aborts that statement; the transaction keeps its server until ROLLBACK", async () => {
    const client = await connect(instance.params());
    try {
      const { pid, key } = keyOf(client);
      await client.query("begin");
      const outcome = client.query("select pg_sleep(30) /* cancel-me-2 */").then(
        () => null,
        (error: unknown) => error,
      );
      await untilRunning("cancel-me-2");
      const sentAt = Date.now();
      await sendCancel(instance.host, instance.port, pid, key);
      expect(await outcome).toMatchObject({ code: "57014" });
      expect(Date.now() - sentAt).toBeLessThan(2_000);
      expect(onlyPool(instance).active).toBe(1);
      await expect(client.query("select 1")).rejects.toMatchObject({ code: "25P02" });
      await client.query("rollback");
      await serverBackToPool();
      expect((await client.query("select 'usable' as state")).rows).toEqual([{ state: "usable" }]);
    } finally {
      await client.end();
    }
  });

  test("postgres.js's own query.cancel() goes through pgmux and stops the query with 57014", async () => {
    const sql = postgres(instance.url(), { max: 1, prepare: false, onnotice: () => {}, connect_timeout: 10 });
    try {
      const query = sql`select pg_sleep(30) /* cancel-me-3 */`;
      const outcome = query.execute().then(
        () => null,
        (error: unknown) => error,
      );
      await untilRunning("cancel-me-3");
      const sentAt = Date.now();
      await query.cancel();
      expect(await outcome).toMatchObject({ code: "57014" });
      expect(Date.now() - sentAt).toBeLessThan(2_000);
      expect(await sql`select 'usable' as state`).toEqual([{ state: "usable" }]);
    } finally {
      await sql.end({ timeout: 5 });
    }
    await serverBackToPool();
  });

  test("stale, wrong and random keys cancel nothing: another client's query completes normally", async () => {
    const gone = await connect(instance.params());
    const staleKey = keyOf(gone);
    await gone.end();
    await waitUntil(
      "the departed client to be forgotten",
      () => ![...instance.pooler.clients].some((c) => c.cancelPid === staleKey.pid && c.state !== "closed"),
      { timeoutMs: 2_000 },
    );

    const client = await connect(instance.params());
    try {
      const own = keyOf(client);
      let finished = false;
      const running = client.query("select pg_sleep(2) as slept /* keep-me-1 */").finally(() => {
        finished = true;
      });
      running.catch(() => {});
      const backend = await untilRunning("keep-me-1");
      await sendCancel(instance.host, instance.port, staleKey.pid, staleKey.key);
      await sendCancel(instance.host, instance.port, own.pid, otherThan(own.key));
      await sendCancel(instance.host, instance.port, otherThan(own.pid), own.key);
      await sendCancel(instance.host, instance.port, otherThan(own.pid), otherThan(own.key));
      // The real server's pid with a guess at its key: pgmux must not pass it on.
      await sendCancel(instance.host, instance.port, backend, otherThan(own.key));
      // All five were dealt with while the query still ran, so they had their chance to hit it.
      expect(finished).toBe(false);
      const result = await running;
      expect(result.rows).toEqual([{ slept: "" }]);
      expect((await client.query("select 'usable' as state")).rows).toEqual([{ state: "usable" }]);
    } finally {
      await client.end();
    }
    await serverBackToPool();
  });

  test("a cancel with an idle client's key never reaches the next client on its former server", async () => {
    const idle = await connect(instance.params());
    const busy = await connect(instance.params());
    try {
      const idleKey = keyOf(idle);
      const formerBackend = (await idle.query("select pg_backend_pid() as pid")).rows[0].pid as number;
      await serverBackToPool();

      // Before the other client's query: the cancel lands nowhere, and the query that follows runs in full.
      await sendCancel(instance.host, instance.port, idleKey.pid, idleKey.key);
      const first = await busy.query("select pg_sleep(1) as slept, pg_backend_pid() as pid");
      expect(first.rows).toEqual([{ slept: "", pid: formerBackend }]);

      // During it: the idle client's former server now runs the other client's query, which must survive.
      let finished = false;
      const running = busy.query("select pg_sleep(1) as slept, pg_backend_pid() as pid /* keep-me-2 */").finally(() => {
        finished = true;
      });
      running.catch(() => {});
      expect(await untilRunning("keep-me-2")).toBe(formerBackend);
      await sendCancel(instance.host, instance.port, idleKey.pid, idleKey.key);
      expect(finished).toBe(false);
      expect((await running).rows).toEqual([{ slept: "", pid: formerBackend }]);
      expect((await idle.query("select 'usable' as state")).rows).toEqual([{ state: "usable" }]);
    } finally {
      await Promise.all([idle.end(), busy.end()]);
    }
  });
});

describe("cancel requests in session mode", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;
  let observer: pg.Client;

  beforeAll(async () => {
    server = await testPostgres();
    instance = await startPooler({ postgres: server, settings: { poolMode: "session", defaultPoolSize: 2 } });
    observer = await connect(server.params());
  });

  afterAll(async () => {
    await observer?.end();
    await stopWithin(instance);
  });

  test("a client's cancel stops its query and leaves the other session's query alone", async () => {
    const target = await connect(instance.params());
    const bystander = await connect(instance.params());
    try {
      const { pid, key } = keyOf(target);
      const cancelled = target.query("select pg_sleep(30) /* cancel-me-4 */").then(
        () => null,
        (error: unknown) => error,
      );
      let finished = false;
      const spared = bystander.query("select pg_sleep(1) as slept /* keep-me-3 */").finally(() => {
        finished = true;
      });
      spared.catch(() => {});
      await runningBackend(observer, "cancel-me-4");
      await runningBackend(observer, "keep-me-3");
      const sentAt = Date.now();
      await sendCancel(instance.host, instance.port, pid, key);
      expect(await cancelled).toMatchObject({ code: "57014" });
      expect(Date.now() - sentAt).toBeLessThan(2_000);
      expect(finished).toBe(false);
      expect((await spared).rows).toEqual([{ slept: "" }]);
    } finally {
      await Promise.all([target.end(), bystander.end()]);
    }
  });
});

describe("cancel connections and the client limit", () => {
  const MAX_CLIENTS = 5;
  let server: TestPostgres;
  let instance: PoolerInstance;

  beforeAll(async () => {
    server = await testPostgres();
    instance = await startPooler({ postgres: server, settings: { maxClientConn: MAX_CLIENTS, defaultPoolSize: 1 } });
  });

  afterAll(async () => {
    await stopWithin(instance);
  });

  test("a CancelRequest's connection stops counting as a client once pgmux has closed it", async () => {
    const client = await connect(instance.params());
    const { pid, key } = keyOf(client);
    await client.end();
    // More cancel connections, one after another, than max_client_conn allows clients at once.
    for (let i = 0; i < MAX_CLIENTS + 1; i++) {
      await sendCancel(instance.host, instance.port, i % 2 === 0 ? pid : otherThan(pid), key);
    }
    await waitUntil("pgmux to hold no client", () => instance.pooler.clients.size === 0, {
      timeoutMs: 2_000,
      detail: () => `clients: ${[...instance.pooler.clients].map((c) => `${c.id}:${c.state}`).join(", ")}`,
    });
    const next = await connect(instance.params());
    try {
      expect((await next.query("select 'admitted' as state")).rows).toEqual([{ state: "admitted" }]);
    } finally {
      await next.end();
    }
  });
});

describe("a cancel that PostgreSQL takes slowly", () => {
  let server: TestPostgres;
  let proxy: CancelHoldingProxy;
  let instance: PoolerInstance;
  let observer: pg.Client;

  beforeAll(async () => {
    server = await testPostgres();
    proxy = await CancelHoldingProxy.start({ host: server.host, port: server.port });
    instance = await startPooler({
      postgres: { ...server.params(), host: proxy.host, port: proxy.port },
      settings: { defaultPoolSize: 1 },
    });
    observer = await connect(server.params());
  });

  afterAll(async () => {
    await observer?.end();
    await stopWithin(instance);
    await proxy?.close();
  });

  test("a client that leaves before its cancel has landed leaves its server to the pool once it has", async () => {
    const client = await connect(instance.params());
    const { pid, key } = keyOf(client);
    const outcome = client.query("select pg_sleep(30) /* cancel-me-5 */").then(
      () => null,
      (error: unknown) => error,
    );
    await runningBackend(observer, "cancel-me-5");
    await sendCancel(instance.host, instance.port, pid, key);
    // PostgreSQL acts on the request at once; only the closing of the cancel connection is held back.
    expect(await outcome).toMatchObject({ code: "57014" });
    expect(proxy.cancelsSeen).toBe(1);
    expect((await client.query("select 'usable' as state")).rows).toEqual([{ state: "usable" }]);
    await client.end();
    await waitUntil("pgmux to see the client leave", () => instance.pooler.clients.size === 0, { timeoutMs: 2_000 });

    // Until the cancel has landed the server goes to nobody: a late signal must not hit another query.
    const pool = onlyPool(instance);
    expect(pool.idleCount).toBe(0);
    const next = await connect({ ...instance.params(), query_timeout: 10_000 });
    try {
      let served = false;
      const query = next.query("select 'served' as state").finally(() => {
        served = true;
      });
      query.catch(() => {}); // awaited below; a failure here must not surface as an unhandled rejection too
      await waitUntil("the next client to wait for the server", () => pool.waitingCount === 1, { timeoutMs: 2_000 });
      expect(served).toBe(false);
      proxy.releaseCancels();
      await waitUntil("the waiting client to get the server once the cancel has landed", () => served, {
        timeoutMs: 3_000,
        detail: () =>
          [...pool.servers]
            .map((s) => `server ${s.id}: ${s.state}, client ${s.client?.id ?? "none"}, idle list ${pool.idleCount}`)
            .join("; "),
      });
      expect((await query).rows).toEqual([{ state: "served" }]);
    } finally {
      await next.end();
    }
    await waitUntil("the server back in the pool", () => pool.active === 0 && pool.idleCount === 1, {
      timeoutMs: 2_000,
      detail: () =>
        [...pool.servers].map((s) => `server ${s.id}: ${s.state}, client ${s.client?.id ?? "none"}`).join("; "),
    });
  });
});
