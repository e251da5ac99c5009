import { setTimeout as pause } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PostgresCluster, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

/**
 * PostgreSQL going away under pgmux (a restart, a stop), on a cluster of this file's own. Clients may see
 * only the documented errors — 08006 (server lost), 57P01 (PostgreSQL's own shutdown FATAL, relayed),
 * 08001 (server unreachable) and 53300 only past query_wait_timeout — and once PostgreSQL is back everyone
 * is served again by the same pgmux.
 */

type PgError = Error & { code?: string };

const QUERY_WAIT_MS = 15_000;
const ALLOWED = new Set(["08006", "57P01", "08001", "53300"]);

let cluster: PostgresCluster;
let pooler: PoolerInstance;

beforeAll(async () => {
  cluster = await PostgresCluster.start();
  await cluster.createDatabase("fresh_pool");
  pooler = await startPooler({
    postgres: cluster,
    settings: { defaultPoolSize: 4, queryWaitTimeoutMs: QUERY_WAIT_MS, serverLoginRetryMs: 200 },
  });
});

afterAll(async () => {
  if (pooler) await stopWithin(pooler, 3000);
  await cluster?.destroy();
});

interface SeenError {
  readonly code: string | undefined;
  readonly message: string;
  readonly waitedMs: number;
}

/** A client that queries in a loop, reconnecting after any error; records the first error of each connection. */
class Worker {
  successes = 0;
  readonly errors: SeenError[] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(readonly id: number) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const client = new pg.Client(pooler.params());
      let first: SeenError | null = null;
      let started = Date.now();
      const record = (e: PgError): void => {
        first ??= { code: e.code, message: e.message, waitedMs: Date.now() - started };
      };
      client.on("error", record);
      try {
        await client.connect();
        for (let i = 0; !this.stopped && first === null; i++) {
          started = Date.now();
          if (i % 3 === 0) {
            await client.query("begin");
            const { rows } = await client.query("select $1::int as n", [i]);
            if (rows[0].n !== i) throw new Error(`worker ${this.id} got ${rows[0].n} for ${i}`);
            await client.query("commit");
          } else {
            await client.query("select 1");
          }
          this.successes++;
        }
      } catch (error) {
        record(error as PgError);
      }
      await client.end().catch(() => {});
      if (first !== null) {
        this.errors.push(first);
        // Pace reconnections while PostgreSQL is down.
        await pause(50);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

describe("PostgreSQL restarting under pgmux", () => {
  test("a restart under load: clients see only the documented errors, and all are served again afterwards", async () => {
    const errors = await underLoad("restart", () => cluster.restart());
    // A fast shutdown tells every backend: the linked clients hear PostgreSQL's own 57P01.
    expect(errors.some((e) => e.code === "57P01" || e.code === "08006")).toBe(true);
  });

  test("a crash under load (every PostgreSQL process SIGKILLed): the same, with no word from the server", async () => {
    await underLoad("crash", async () => {
      await cluster.kill();
      await cluster.start();
    });
  });

  test("clients arriving while PostgreSQL is down wait and are served once it is back", async () => {
    // One pool already knows the server; the other has never reached it (its clients wait in the login).
    const known = new pg.Client(pooler.params());
    await known.connect();
    expect((await known.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    await known.end();

    await cluster.stop();
    const started = Date.now();
    let answered = 0;
    const arrivals = [
      ...Array.from({ length: 4 }, () => pooler.params()),
      ...Array.from({ length: 2 }, () => pooler.params({ database: "fresh_pool" })),
    ].map(async (params) => {
      const client = new pg.Client(params);
      client.on("error", () => {});
      try {
        await client.connect();
        const { rows } = await client.query("select current_database() as db");
        return rows[0].db as string;
      } catch (error) {
        return error as PgError;
      } finally {
        answered++;
        await client.end().catch(() => {});
      }
    });
    const settled = Promise.all(arrivals);
    // pgmux has tried and failed to reach the server for both pools, and the clients are still waiting.
    await waitUntil(
      "pgmux to have failed to reach the stopped server for both pools",
      () => [...pooler.pooler.pools.values()].filter((p) => p.lastConnectFailure !== "").length === 2,
      { timeoutMs: 5000 },
    );
    expect(answered).toBe(0);

    await cluster.start();
    const results = await settled;
    expect(Date.now() - started).toBeLessThan(QUERY_WAIT_MS);
    expect(results.map((r) => (typeof r === "string" ? r : `${r.code}: ${r.message}`))).toEqual([
      ...Array.from({ length: 4 }, () => cluster.database),
      "fresh_pool",
      "fresh_pool",
    ]);
    await expectPoolWhole();
  });
});

/**
 * Runs `disrupt` while eight clients query in a loop; afterwards every client must be served again, every
 * error one of the documented ones (53300 only past query_wait_timeout), and the pool whole.
 */
async function underLoad(what: string, disrupt: () => Promise<void>): Promise<SeenError[]> {
  const workers = Array.from({ length: 8 }, (_, i) => new Worker(i));
  try {
    await waitUntil("every worker to be querying", () => workers.every((w) => w.successes >= 5), {
      timeoutMs: 10_000,
    });
    await disrupt();
    const after = workers.map((w) => w.successes);
    await waitUntil(
      `every worker to be served again after the ${what}`,
      () => workers.every((w, i) => w.successes >= after[i]! + 10),
      {
        timeoutMs: 20_000,
        detail: () => JSON.stringify(workers.map((w) => ({ ok: w.successes, errors: w.errors }))),
      },
    );
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
  const errors = workers.flatMap((w) => w.errors);
  const tally = new Map<string, number>();
  for (const e of errors) {
    const key = e.code ?? `no SQLSTATE: ${e.message}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
  }
  console.info(`errors clients saw during the ${what}: ${JSON.stringify([...tally])}`);
  for (const e of errors) {
    expect(ALLOWED, `${e.code}: ${e.message}`).toContain(e.code);
    if (e.code === "53300") expect(e.waitedMs).toBeGreaterThanOrEqual(QUERY_WAIT_MS);
  }
  await expectPoolWhole();
  return errors;
}

async function expectPoolWhole(): Promise<void> {
  for (const pool of pooler.pooler.pools.values()) {
    await waitUntil(
      `pool ${pool.name} to settle with every server idle`,
      () => pool.active === 0 && pool.waitingCount === 0 && pool.idleCount === pool.servers.size,
      {
        timeoutMs: 5000,
        detail: () => `servers ${pool.servers.size}, idle ${pool.idleCount}, active ${pool.active}`,
      },
    );
    expect(pool.servers.size).toBeLessThanOrEqual(pool.size);
  }
  const fresh = new pg.Client(pooler.params());
  await fresh.connect();
  expect((await fresh.query("select 'back' as s")).rows).toEqual([{ s: "back" }]);
  await fresh.end();
}

/** pooler.stop() bounded in time: true when it finished, false when it was still waiting after `ms`. */
async function stopWithin(instance: PoolerInstance, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([instance.stop().then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}
