import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type TestPostgres, testPostgres } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

/**
 * Session parameters a client sets in its startup packet belong to the client: in transaction mode, whichever
 * server it lands on shows them, and the next client on that server does not. The expected values are what
 * PostgreSQL itself shows a direct connection made with the same startup packet.
 */

/** The parameters PostgreSQL reports with ParameterStatus, so pgmux always knows a server's values. */
const PROBE = `select pg_backend_pid() as pid,
  current_setting('application_name') as application_name,
  current_setting('TimeZone') as timezone,
  current_setting('DateStyle') as datestyle,
  current_setting('IntervalStyle') as intervalstyle,
  current_setting('client_encoding') as client_encoding,
  current_setting('standard_conforming_strings') as standard_conforming_strings`;

/** Parameters PostgreSQL 15 does not report: pgmux knows a server's value only from what it set itself. */
const UNREPORTED_PROBE = `select pg_backend_pid() as pid,
  current_setting('search_path') as search_path,
  current_setting('extra_float_digits') as extra_float_digits`;

type Settings = Record<string, string>;

/** Something that runs the probe, whatever the driver. */
interface Prober {
  readonly name: string;
  probe(sql?: string): Promise<{ pid: number; settings: Settings }>;
  query(sql: string): Promise<void>;
  end(): Promise<void>;
}

// pg: application_name as its own parameter, the rest through `options` (-c name=value). Not client_encoding:
// PostgreSQL 15 does not apply a client_encoding given in `options` (a direct connection keeps UTF8).
const PG_OPTIONS = [
  "-c TimeZone=Asia/Tokyo",
  "-c DateStyle=SQL,DMY",
  "-c IntervalStyle=iso_8601",
  "-c standard_conforming_strings=off",
].join(" ");

// postgres.js: every parameter as a startup parameter of its own.
const POSTGRESJS_CONNECTION = {
  application_name: "py_app",
  TimeZone: "America/New_York",
  DateStyle: "German, YMD",
  IntervalStyle: "sql_standard",
  client_encoding: "LATIN1",
};

let pgServer: TestPostgres;
let pooler: PoolerInstance;

beforeAll(async () => {
  pgServer = await testPostgres();
  pooler = await startPooler({ postgres: pgServer, settings: { defaultPoolSize: 2 } });
});

afterAll(async () => {
  if (pooler) await stopWithin(pooler, 3000);
});

describe("client-set parameters in transaction mode", () => {
  test("follow each client onto both servers of the pool and never leak to the next client", async () => {
    const expected = {
      pg: await directSettings(
        pgProber("direct pg", { ...pgServer.params(), application_name: "px_app", options: PG_OPTIONS }),
      ),
      postgresjs: await directSettings(postgresProber("direct postgres.js", pgServer.params(), POSTGRESJS_CONNECTION)),
      plain: await directSettings(pgProber("direct plain", pgServer.params())),
    };
    // Each client differs from the plain one in every parameter it sets (else the test proves nothing).
    for (const key of Object.keys(expected.plain)) {
      if (key !== "client_encoding") expect(expected.pg[key], key).not.toBe(expected.plain[key]);
      if (key !== "standard_conforming_strings") expect(expected.postgresjs[key], key).not.toBe(expected.plain[key]);
    }

    const clients = {
      pg: pgProber("pg", { ...pooler.params(), application_name: "px_app", options: PG_OPTIONS }),
      postgresjs: postgresProber("postgres.js", pooler.params(), POSTGRESJS_CONNECTION),
      plain: pgProber("plain pg", pooler.params()),
    };
    const holder = pgProber("holder", pooler.params());
    try {
      const visited = { pg: new Set<number>(), postgresjs: new Set<number>(), plain: new Set<number>() };
      // Each turn: the client lands on the server the previous client just used (idle servers are reused
      // last-in first-out), then, with that server held by another client, on the other one.
      const turns = ["pg", "plain", "postgresjs", "plain", "pg", "postgresjs", "pg", "plain"] as const;
      for (const who of turns) {
        const first = await clients[who].probe();
        expect(first.settings, `${who} on server ${first.pid}`).toEqual(expected[who]);
        await holder.query("begin");
        const second = await clients[who].probe();
        expect(second.settings, `${who} on server ${second.pid}`).toEqual(expected[who]);
        await holder.query("commit");
        expect(second.pid).not.toBe(first.pid);
        visited[who].add(first.pid).add(second.pid);
      }
      expect(visited.pg.size).toBe(2);
      expect(visited.postgresjs.size).toBe(2);
      expect(visited.plain.size).toBe(2);
      expect(pooler.serverCount()).toBe(2);
    } finally {
      await Promise.all([...Object.values(clients), holder].map((c) => c.end().catch(() => {})));
    }
  });

  test("a search_path of several schemas given at startup is the same list on every server as on PostgreSQL", async () => {
    const options = "-c search_path=first_schema,public";
    const direct = await directSettings(pgProber("direct", { ...pgServer.params(), options }), UNREPORTED_PROBE);
    expect(direct.search_path).toBe("first_schema,public");
    const client = pgProber("list", { ...pooler.params(), options });
    const holder = pgProber("holder", pooler.params());
    try {
      const first = await client.probe(UNREPORTED_PROBE);
      await holder.query("begin");
      const second = await client.probe(UNREPORTED_PROBE);
      await holder.query("commit");
      expect(second.pid).not.toBe(first.pid);
      expect(first.settings.search_path).toBe(direct.search_path);
      expect(second.settings.search_path).toBe(direct.search_path);
    } finally {
      await Promise.all([client, holder].map((c) => c.end().catch(() => {})));
    }
  });

  test("unreported parameters (search_path, extra_float_digits) are set again for their client after another client reset them", async () => {
    // A pool of one server: the client, a plain client, then the client again, all on that server.
    const single = await startPooler({ postgres: pgServer, settings: { defaultPoolSize: 1 } });
    const options = "-c search_path=own_schema -c extra_float_digits=3";
    const expected = await directSettings(pgProber("direct", { ...pgServer.params(), options }), UNREPORTED_PROBE);
    const plainExpected = await directSettings(pgProber("direct plain", pgServer.params()), UNREPORTED_PROBE);
    expect(expected).not.toEqual(plainExpected);
    const client = pgProber("own", { ...single.params(), options });
    const plain = pgProber("plain", single.params());
    try {
      for (let round = 0; round < 3; round++) {
        expect((await client.probe(UNREPORTED_PROBE)).settings, `round ${round}, the client`).toEqual(expected);
        expect((await plain.probe(UNREPORTED_PROBE)).settings, `round ${round}, the plain client`).toEqual(
          plainExpected,
        );
      }
    } finally {
      await Promise.all([client, plain].map((c) => c.end().catch(() => {})));
      await stopWithin(single, 3000);
    }
  });

  test("a SET undone by ROLLBACK does not follow the client", async () => {
    const client = pgProber("undone", { ...pooler.params(), options: "-c TimeZone=Asia/Tokyo" });
    const holder = pgProber("holder", pooler.params());
    try {
      await client.query("begin");
      await client.query("set TimeZone = 'Europe/Berlin'");
      await client.query("rollback");
      for (let i = 0; i < 2; i++) {
        const first = await client.probe();
        await holder.query("begin");
        const second = await client.probe();
        await holder.query("commit");
        expect(second.pid).not.toBe(first.pid);
        expect([first.settings.timezone, second.settings.timezone]).toEqual(["Asia/Tokyo", "Asia/Tokyo"]);
      }
    } finally {
      await Promise.all([client, holder].map((c) => c.end().catch(() => {})));
    }
  });

  test("a parameter the client SETs later follows it too, and not the others", async () => {
    const mover = pgProber("mover", { ...pooler.params(), application_name: "mover_app" });
    const other = pgProber("other", pooler.params());
    const holder = pgProber("holder", pooler.params());
    try {
      const plain = await other.probe();
      await mover.query("set TimeZone = 'Pacific/Auckland'");
      await mover.query("set application_name = 'renamed_app'");
      const pids = new Set<number>();
      for (let i = 0; i < 3; i++) {
        const first = await mover.probe();
        await holder.query("begin");
        const second = await mover.probe();
        await holder.query("commit");
        for (const seen of [first, second]) {
          expect(seen.settings.timezone).toBe("Pacific/Auckland");
          expect(seen.settings.application_name).toBe("renamed_app");
          pids.add(seen.pid);
        }
        const bystander = await other.probe();
        expect(bystander.settings).toEqual(plain.settings);
      }
      expect(pids.size).toBe(2);
    } finally {
      await Promise.all([mover, other, holder].map((c) => c.end().catch(() => {})));
    }
  });
});

// ---- helpers ------------------------------------------------------------------------------------------------

async function directSettings(prober: Prober, sql = PROBE): Promise<Settings> {
  try {
    return (await prober.probe(sql)).settings;
  } finally {
    await prober.end();
  }
}

function split(row: Record<string, unknown>): { pid: number; settings: Settings } {
  const { pid, ...settings } = row;
  return { pid: Number(pid), settings: settings as Settings };
}

function pgProber(name: string, config: pg.ClientConfig): Prober {
  const client = new pg.Client(config);
  client.on("error", () => {});
  const connecting = client.connect();
  return {
    name,
    async probe(sql = PROBE) {
      await connecting;
      return split((await client.query(sql)).rows[0]);
    },
    async query(sql) {
      await connecting;
      await client.query(sql);
    },
    end: () => client.end(),
  };
}

function postgresProber(
  name: string,
  params: { host: string; port: number; user: string; password: string; database: string },
  connection: Record<string, string>,
): Prober {
  const sql = postgres({
    ...params,
    username: params.user,
    connection,
    max: 1,
    prepare: false,
    onnotice: () => {},
    connect_timeout: 10,
  });
  return {
    name,
    async probe(text = PROBE) {
      const rows = await sql.unsafe(text);
      return split(rows[0] as Record<string, unknown>);
    },
    async query(text) {
      await sql.unsafe(text);
    },
    end: () => sql.end({ timeout: 5 }),
  };
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
