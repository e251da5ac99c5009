import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findPgBinDir, runCommand, type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

/** Names unique to this run, so reruns against one PG_TEST_URL server do not collide. */
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

/** A query pg sends through Parse/Bind/Execute even without parameters (pg's queryMode, untyped). */
function extended(text: string): pg.QueryConfig {
  return { text, queryMode: "extended" } as pg.QueryConfig;
}

/** The one pool of a pgmux instance that serves a single database/user pair in these tests. */
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

describe("transaction pooling under load", () => {
  const POOL_SIZE = 10;
  const CLIENTS = 200;
  const TRANSACTIONS_PER_CLIENT = 5;
  const COUNTERS = 7;

  let server: TestPostgres;
  let instance: PoolerInstance;
  let role: string;
  let database: string;
  const password = "load secret";

  beforeAll(async () => {
    server = await testPostgres();
    role = unique("txload");
    database = unique("txload_db");
    await server.createRole(role, password);
    await server.createDatabase(database, { owner: role });
    await server.psql(
      [
        "create table counters (id int primary key, n bigint not null default 0);",
        `insert into counters (id) select g from generate_series(0, ${COUNTERS - 1}) g;`,
        "create table writes (client int not null, seq int not null, backend int not null, primary key (client, seq));",
        `alter table counters owner to ${role}; alter table writes owner to ${role};`,
      ].join("\n"),
      { database },
    );
    instance = await startPooler({
      postgres: server,
      users: { [role]: password },
      settings: { defaultPoolSize: POOL_SIZE, maxClientConn: CLIENTS + 20 },
    });
  });

  afterAll(async () => {
    await stopWithin(instance);
  });

  test("200 clients share 10 servers: every write lands once, and no client sees another's session state", async () => {
    const params = instance.params({ user: role, password, database });
    const observer = await connect(server.params({ database }));
    let maxPoolerServers = 0;
    let maxServerBackends = 0;
    let samples = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxPoolerServers = Math.max(maxPoolerServers, instance.serverCount());
        const { rows } = await observer.query(
          "select count(*)::int as n from pg_stat_activity where usename = $1 and datname = $2",
          [role, database],
        );
        maxServerBackends = Math.max(maxServerBackends, rows[0].n);
        samples++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();

    const violations: string[] = [];
    const work = async (id: number): Promise<void> => {
      const client = await connect({ ...params, application_name: `app-${id}` });
      try {
        for (let seq = 0; seq < TRANSACTIONS_PER_CLIENT; seq++) {
          // Outside any transaction: the client's own application_name, and nobody's transaction-local values.
          const before = await client.query(
            "select current_setting('x.client', true) as x, current_setting('application_name') as app, current_setting('search_path') as path",
          );
          const outside = before.rows[0];
          if (outside.x !== null && outside.x !== "") violations.push(`client ${id} saw x.client=${outside.x} outside`);
          if (outside.app !== `app-${id}`) violations.push(`client ${id} saw application_name=${outside.app} outside`);
          if (outside.path !== '"$user", public')
            violations.push(`client ${id} saw search_path=${outside.path} outside`);

          await client.query("BEGIN");
          const start = await client.query(
            "select set_config('x.client', $1, true) as x, pg_backend_pid() as pid, txid_current()::text as txid, current_setting('x.client', true) as seen",
            [String(id)],
          );
          const { pid, txid } = start.rows[0];
          await client.query(`SET LOCAL application_name = 'local-${id}'`);
          await client.query(`SET LOCAL search_path = client_${id}, public`);
          await client.query("UPDATE counters SET n = n + 1 WHERE id = $1", [(id + seq) % COUNTERS]);
          await client.query("INSERT INTO writes (client, seq, backend) VALUES ($1, $2, pg_backend_pid())", [id, seq]);
          const inside = (
            await client.query(
              "select current_setting('x.client', true) as x, current_setting('application_name') as app, current_setting('search_path') as path, pg_backend_pid() as pid, txid_current()::text as txid",
            )
          ).rows[0];
          if (inside.x !== String(id)) violations.push(`client ${id} saw x.client=${inside.x} inside`);
          if (inside.app !== `local-${id}`) violations.push(`client ${id} saw application_name=${inside.app} inside`);
          if (inside.path !== `client_${id}, public`) violations.push(`client ${id} saw search_path=${inside.path}`);
          if (inside.pid !== pid || inside.txid !== txid) {
            violations.push(`client ${id}'s transaction moved from ${pid}/${txid} to ${inside.pid}/${inside.txid}`);
          }
          await client.query("COMMIT");
          const after = (await client.query("select current_setting('application_name') as app")).rows[0];
          if (after.app !== `app-${id}`) violations.push(`client ${id} saw application_name=${after.app} after COMMIT`);
        }
      } finally {
        await client.end();
      }
    };

    const started = Date.now();
    try {
      await Promise.all(Array.from({ length: CLIENTS }, (_, id) => work(id)));
    } finally {
      sampling = false;
      await sampler;
    }
    const elapsedMs = Date.now() - started;

    expect(violations).toEqual([]);
    // The pool opened up to its size under this load, and never beyond it: pgmux's own count and the server's.
    expect(samples).toBeGreaterThan(2);
    expect(maxPoolerServers).toBe(POOL_SIZE);
    expect(maxServerBackends).toBeGreaterThan(1);
    expect(maxServerBackends).toBeLessThanOrEqual(POOL_SIZE);

    const checked = await observer.query("select sum(n)::int as total from counters");
    expect(checked.rows[0].total).toBe(CLIENTS * TRANSACTIONS_PER_CLIENT);
    const perCounter = await observer.query("select id, n::int as n from counters order by id");
    const expected = new Map<number, number>();
    for (let id = 0; id < CLIENTS; id++) {
      for (let seq = 0; seq < TRANSACTIONS_PER_CLIENT; seq++) {
        const c = (id + seq) % COUNTERS;
        expected.set(c, (expected.get(c) ?? 0) + 1);
      }
    }
    expect(perCounter.rows).toEqual([...expected].sort((a, b) => a[0] - b[0]).map(([id, n]) => ({ id, n })));
    const perClient = await observer.query(
      "select client, count(*)::int as n, count(distinct seq)::int as seqs from writes group by client order by client",
    );
    expect(perClient.rows).toEqual(
      Array.from({ length: CLIENTS }, (_, client) => ({
        client,
        n: TRANSACTIONS_PER_CLIENT,
        seqs: TRANSACTIONS_PER_CLIENT,
      })),
    );
    // The writes were spread over the pool's servers (so the clients really did share them).
    const backends = await observer.query("select count(distinct backend)::int as n from writes");
    expect(backends.rows[0].n).toBeGreaterThan(1);
    expect(backends.rows[0].n).toBeLessThanOrEqual(POOL_SIZE);

    await observer.end();
    // Everything went back to the pool once the clients left.
    const pool = onlyPool(instance);
    await waitUntil("every server back in the pool", () => pool.active === 0 && pool.idleCount === pool.servers.size, {
      timeoutMs: 5_000,
    });
    expect(elapsedMs).toBeLessThan(45_000);
  });
});

describe("pgbench through pgmux in transaction mode", () => {
  const POOL_SIZE = 10;
  const CLIENTS = 50;
  const SECONDS = 20;

  let server: TestPostgres;
  let instance: PoolerInstance;
  let database: string;
  let pgbench: string;

  beforeAll(async () => {
    server = await testPostgres();
    database = unique("pgbench_db");
    await server.createDatabase(database);
    pgbench = join(findPgBinDir(), "pgbench");
    const init = await runCommand(
      pgbench,
      ["-i", "-s", "1", "-q", "-h", server.host, "-p", String(server.port), "-U", server.user, database],
      { timeoutMs: 60_000, env: { ...process.env, PGPASSWORD: server.password } },
    );
    if (init.code !== 0) throw new Error(`pgbench -i failed:\n${init.stderr}`);
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: POOL_SIZE } });
  });

  afterAll(async () => {
    await stopWithin(instance);
  });

  async function run(mode: "simple" | "extended" | "prepared"): Promise<void> {
    let maxServers = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxServers = Math.max(maxServers, instance.serverCount());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const result = await runCommand(
      pgbench,
      [
        ...["-M", mode, "-c", String(CLIENTS), "-j", "2", "-T", String(SECONDS)],
        ...["-h", instance.host, "-p", String(instance.port), "-U", server.user, database],
      ],
      { timeoutMs: (SECONDS + 20) * 1000, env: { ...process.env, PGPASSWORD: server.password } },
    ).finally(() => {
      sampling = false;
    });
    await sampler;
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.code, output).toBe(0);
    expect(output).toMatch(/number of failed transactions: 0 \(/);
    const processed = /number of transactions actually processed: (\d+)/.exec(output);
    expect(processed, output).not.toBeNull();
    const transactions = Number(processed![1]);
    expect(transactions).toBeGreaterThan(0);
    expect(maxServers).toBeGreaterThan(0);
    expect(maxServers).toBeLessThanOrEqual(POOL_SIZE);

    // pgbench empties pgbench_history before a run, and each TPC-B-like transaction adds exactly one row:
    // the committed work is what pgbench counted, and the balances agree with the history.
    const check = await server.psql(
      [
        "select (select count(*) from pgbench_history),",
        "(select coalesce(sum(delta), 0) from pgbench_history),",
        "(select sum(abalance) from pgbench_accounts),",
        "(select sum(bbalance) from pgbench_branches),",
        "(select sum(tbalance) from pgbench_tellers)",
      ].join(" "),
      { database },
    );
    const [history, deltas, accounts, branches, tellers] = check.split("|");
    expect(Number(history)).toBe(transactions);
    expect(accounts).toBe(branches);
    expect(tellers).toBe(branches);
    // Balances accumulate over both runs; each run's history is a part of them. Only the first run's
    // history equals the balances outright, so compare the delta sum when this is the first run.
    if (mode === "simple") expect(accounts).toBe(deltas);
  }

  test(
    "pgbench -M simple with 50 clients on 10 servers completes every transaction",
    async () => {
      await run("simple");
    },
    SECONDS * 1000 + 30_000,
  );

  test(
    "pgbench -M extended with 50 clients on 10 servers completes every transaction",
    async () => {
      await run("extended");
    },
    SECONDS * 1000 + 30_000,
  );

  test(
    "pgbench -M prepared with 50 clients on 10 servers completes every transaction, on statements it prepared elsewhere",
    async () => {
      const pool = [...instance.pooler.pools.values()][0]!;
      const before = { ...pool.statements!.stats };
      await run("prepared");
      // Each of the 50 connections prepares its statements once and runs them on whichever of the 10
      // servers it gets: most executions find the statement already there, the rest had it prepared.
      const { hits, misses } = pool.statements!.stats;
      expect(hits - before.hits).toBeGreaterThan(misses - before.misses);
      expect(misses - before.misses).toBeGreaterThan(0);
    },
    SECONDS * 1000 + 30_000,
  );
});

describe("the end of an exchange", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;
  let database: string;

  beforeAll(async () => {
    server = await testPostgres();
    database = unique("exchange_db");
    await server.createDatabase(database);
    await server.psql("create table marks (id int)", { database });
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 1 } });
  });

  afterAll(async () => {
    await stopWithin(instance);
  });

  async function serverBackendState(): Promise<string[]> {
    const pids = [...onlyPool(instance).servers].map((s) => s.backendPid);
    const out = await server.psql(
      `select coalesce(state, '') from pg_stat_activity where pid in (${pids.join(",") || "0"}) order by pid`,
    );
    return out === "" ? [] : out.split("\n");
  }

  test("a multi-statement query failing in the middle reports the error, rolls back, and frees the server", async () => {
    const client = await connect(instance.params({ database }));
    try {
      await expect(
        client.query("insert into marks values (1); select 1/0; insert into marks values (3)"),
      ).rejects.toMatchObject({ code: "22012" });
      // The implicit transaction of the query string was rolled back as a whole: the statement after the
      // error did not run and the one before it did not commit.
      expect((await client.query("select count(*)::int as n from marks")).rows).toEqual([{ n: 0 }]);
      const pool = onlyPool(instance);
      await waitUntil("the server to be idle in the pool", () => pool.active === 0 && pool.idleCount === 1, {
        timeoutMs: 2_000,
      });
      expect(await serverBackendState()).toEqual(["idle"]);
      // The one server of the pool serves another client straight away.
      const other = await connect(instance.params({ database }));
      try {
        expect((await other.query("select 3 as three")).rows).toEqual([{ three: 3 }]);
      } finally {
        await other.end();
      }
      expect((await client.query("select 2 as two")).rows).toEqual([{ two: 2 }]);
    } finally {
      await client.end();
    }
  });

  test("an error inside an explicit transaction keeps the server until ROLLBACK", async () => {
    const client = await connect(instance.params({ database }));
    const pool = onlyPool(instance);
    try {
      await client.query("begin");
      await expect(client.query("select 1/0")).rejects.toMatchObject({ code: "22012" });
      expect(pool.active).toBe(1);
      expect(await serverBackendState()).toEqual(["idle in transaction (aborted)"]);
      await expect(client.query("select 1")).rejects.toMatchObject({ code: "25P02" });
      await client.query("rollback");
      await waitUntil("the server to be idle in the pool", () => pool.active === 0 && pool.idleCount === 1, {
        timeoutMs: 2_000,
      });
      expect((await client.query("select 4 as four")).rows).toEqual([{ four: 4 }]);
    } finally {
      await client.end();
    }
  });

  test("an empty query gets EmptyQueryResponse and the connection stays usable", async () => {
    const client = await connect(instance.params({ database }));
    let empties = 0;
    (client as unknown as { connection: NodeJS.EventEmitter }).connection.on("emptyQuery", () => empties++);
    try {
      const blank = await client.query("");
      expect(blank.rows).toEqual([]);
      expect(empties).toBe(1);
      await client.query(";");
      expect(empties).toBe(2);
      // Extended protocol too: an empty statement through Parse/Bind/Execute.
      await client.query(extended(""));
      expect(empties).toBe(3);
      expect((await client.query("select 5 as five")).rows).toEqual([{ five: 5 }]);
      const pool = onlyPool(instance);
      await waitUntil("the server to be idle in the pool", () => pool.active === 0 && pool.idleCount === 1, {
        timeoutMs: 2_000,
      });
    } finally {
      await client.end();
    }
  });

  test("a NOTICE raised by the server reaches the client", async () => {
    const client = await connect(instance.params({ database }));
    const notices: Array<{ severity?: string | undefined; message?: string | undefined }> = [];
    client.on("notice", (notice) => notices.push(notice));
    try {
      await client.query("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$");
      expect(notices.map((n) => [n.severity, n.message])).toEqual([["NOTICE", "hello 42"]]);
      // Notices in the extended protocol, and after the server changed hands in between.
      await client.query({ text: "select $1::int as n", values: [1] });
      await client.query(extended("DO $$ BEGIN RAISE WARNING 'careful %', 'now'; END $$"));
      expect(notices.map((n) => n.message)).toEqual(["hello 42", "careful now"]);
    } finally {
      await client.end();
    }
  });
});
