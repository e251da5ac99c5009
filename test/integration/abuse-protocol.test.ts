import {
  type BackendMessage,
  encodeExecute,
  encodePasswordMessage,
  encodeQuery,
  encodeStartupMessage,
  ProtocolVersion,
} from "@pgmux/protocol";
import fc from "fast-check";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { RawPeer, type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

/**
 * Clients that break the protocol, scripted on raw sockets: each offender gets an ErrorResponse 08P01 (when
 * it is still there to read one) and is disconnected, its server is never handed on dirty, and a well-behaved
 * client querying all along sees nothing of it. Most offenders log in with auth_type trust; the one that
 * misbehaves during authentication meets SCRAM.
 */

let pgServer: TestPostgres;
let trusting: PoolerInstance;
let scram: PoolerInstance;

beforeAll(async () => {
  pgServer = await testPostgres();
  trusting = await startPooler({ postgres: pgServer, settings: { authType: "trust", defaultPoolSize: 4 } });
  scram = await startPooler({ postgres: pgServer });
});

afterAll(async () => {
  if (trusting) await stopWithin(trusting, 3000);
  if (scram) await stopWithin(scram, 3000);
});

describe("a client breaking the protocol", () => {
  test("garbage before the startup packet (an HTTP request) gets 08P01", async () => {
    await withBystander(trusting, async () => {
      const peer = await RawPeer.connect(trusting.port);
      peer.send(Buffer.from("GET / HTTP/1.1\r\nHost: pgmux\r\n\r\n"));
      await expectProtocolViolation(peer);
    });
  });

  test("a startup packet whose length cannot hold its header gets 08P01", async () => {
    await withBystander(trusting, async () => {
      const peer = await RawPeer.connect(trusting.port);
      peer.send(Buffer.from([0, 0, 0, 4, 0, 3, 0, 0]));
      await expectProtocolViolation(peer);
    });
  });

  test("a startup packet over 10,000 bytes gets 08P01", async () => {
    await withBystander(trusting, async () => {
      const peer = await RawPeer.connect(trusting.port);
      peer.send(startup([["application_name", "x".repeat(12_000)]]));
      await expectProtocolViolation(peer);
    });
  });

  test("a startup packet asking for protocol 2.0 gets 08P01 naming the version", async () => {
    await withBystander(trusting, async () => {
      const peer = await RawPeer.connect(trusting.port);
      peer.send(encodeStartupMessage({ protocolVersion: 2 << 16, parameters: [["user", pgServer.user]] }));
      await expectProtocolViolation(peer, /protocol.* 2\.0/);
    });
  });

  test("a startup packet whose parameters are not NUL-terminated gets 08P01", async () => {
    await withBystander(trusting, async () => {
      const peer = await RawPeer.connect(trusting.port);
      const body = Buffer.from("user\0postgres\0database\0postgres");
      const header = Buffer.alloc(8);
      header.writeUInt32BE(8 + body.length, 0);
      header.writeUInt32BE(ProtocolVersion.V3_0, 4);
      peer.send(Buffer.concat([header, body]));
      await expectProtocolViolation(peer);
    });
  });

  test("an unknown startup parameter gets 08P01 naming it", async () => {
    await withBystander(trusting, async () => {
      const peer = await RawPeer.connect(trusting.port);
      peer.send(startup([["no_such_guc_anywhere", "1"]]));
      const fields = await expectProtocolViolation(peer, /no_such_guc_anywhere/);
      expect(fields.get("C")).toBe("08P01");
    });
  });

  test("garbage in place of the SCRAM response gets 08P01", async () => {
    await withBystander(scram, async () => {
      const peer = await RawPeer.connect(scram.port);
      peer.send(startup());
      expect((await peer.next())?.type).toBe("AuthenticationSASL");
      peer.send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x08, 1, 2, 3, 4]));
      await expectProtocolViolation(peer);
    });
  });

  test("garbage after login gets 08P01", async () => {
    await withBystander(trusting, async () => {
      const peer = await loggedIn();
      peer.send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03, 0x04]));
      await expectProtocolViolation(peer);
    });
  });

  test("an absurd length (0xFFFFFFFF) in a typed message after login gets 08P01", async () => {
    await withBystander(trusting, async () => {
      const peer = await loggedIn();
      peer.send(Buffer.from([0x51, 0xff, 0xff, 0xff, 0xff, 0x73, 0x65, 0x6c]));
      await expectProtocolViolation(peer);
    });
  });

  test("a typed message whose length is under 4 gets 08P01", async () => {
    await withBystander(trusting, async () => {
      const peer = await loggedIn();
      peer.send(Buffer.from([0x51, 0x00, 0x00, 0x00, 0x02]));
      await expectProtocolViolation(peer);
    });
  });

  test("a message over max_packet_size gets 08P01 naming the limit, before pgmux buffers it", async () => {
    const small = await startPooler({ postgres: pgServer, settings: { authType: "trust", maxPacketSize: 65_536 } });
    try {
      await withBystander(trusting, async () => {
        const peer = await loggedIn(small);
        // The header alone announces 1 MB; the rest never needs to arrive.
        peer.send(Buffer.concat([Buffer.from([0x51, 0x00, 0x10, 0x00, 0x04]), Buffer.from("select ")]));
        await expectProtocolViolation(peer, /1048580 bytes exceeds the limit of 65536/);
        // Under the limit is fine.
        const ok = await loggedIn(small);
        expect(await ok.query(`select length('${"x".repeat(60_000)}')`)).toEqual(["60000"]);
        ok.destroy();
      });
    } finally {
      await stopWithin(small, 3000);
    }
  });

  test("an unknown message type after login gets 08P01", async () => {
    await withBystander(trusting, async () => {
      const peer = await loggedIn();
      peer.send(Buffer.from([0x78, 0x00, 0x00, 0x00, 0x04])); // 'x', a well-framed message of no known type
      await expectProtocolViolation(peer);
    });
  });

  test("a password message ('p') after login gets 08P01", async () => {
    await withBystander(trusting, async () => {
      const peer = await loggedIn();
      peer.send(encodePasswordMessage({ password: "too late" }));
      await expectProtocolViolation(peer);
    });
  });

  test("an absurd length inside a transaction gets 08P01, and the transaction is rolled back", async () => {
    const table = `abuse_len_${process.pid}`;
    await pgServer.psql(`drop table if exists ${table}; create table ${table} (id int)`);
    try {
      await withBystander(trusting, async () => {
        const peer = await loggedIn();
        expect(await peer.query("begin")).toEqual([]);
        expect(await peer.query(`insert into ${table} values (1)`)).toEqual([]);
        peer.send(Buffer.from([0x51, 0xff, 0xff, 0xff, 0xff]));
        await expectProtocolViolation(peer);
      });
      await expectNoTransactionLeft(table);
    } finally {
      await pgServer.psql(`drop table if exists ${table}`);
    }
  });

  test("a message cut off and then the socket closed costs nothing but that connection", async () => {
    await withBystander(trusting, async () => {
      const peer = await loggedIn();
      // A Query announcing 100 bytes, 10 sent, then goodbye.
      const cut = Buffer.concat([Buffer.from([0x51, 0, 0, 0, 100]), Buffer.from("select 1; ")]);
      peer.send(cut);
      peer.end();
      await peer.closed();
    });
  });

  test("a socket closed in the middle of a message inside a transaction: rolled back, its server not reused", async () => {
    const table = `abuse_cut_${process.pid}`;
    await pgServer.psql(`drop table if exists ${table}; create table ${table} (id int)`);
    try {
      await withBystander(trusting, async () => {
        const peer = await loggedIn();
        expect(await peer.query("begin")).toEqual([]);
        expect(await peer.query(`insert into ${table} values (1)`)).toEqual([]);
        const pid = Number((await peer.query("select pg_backend_pid()"))[0]);
        peer.send(Buffer.concat([Buffer.from([0x51, 0, 0, 0, 60]), Buffer.from("insert into")]));
        peer.destroy();
        // A server that got half a message can only be closed.
        await waitUntil(
          `backend ${pid} to end`,
          async () => (await pgServer.psql(`select count(*) from pg_stat_activity where pid = ${pid}`)) === "0",
          { timeoutMs: 5000, intervalMs: 50 },
        );
      });
      await expectNoTransactionLeft(table);
    } finally {
      await pgServer.psql(`drop table if exists ${table}`);
    }
  });

  test("an offender that keeps its end open after the 08P01 is disconnected anyway", async () => {
    const peer = await RawPeer.connect(trusting.port, { allowHalfOpen: true });
    peer.send(Buffer.from("GET / HTTP/1.1\r\n\r\n"));
    const msg = await peer.next();
    expect(msg?.type).toBe("ErrorResponse");
    await waitUntil("pgmux's end of the connection to finish", () => peer.ended, { timeoutMs: 5000 });
    // Our end stays open and keeps talking: a pgmux that only half-closed would go on reading forever.
    await waitUntil(
      "pgmux to drop the connection for good",
      () => {
        peer.send(Buffer.from("still here"));
        return peer.isClosed;
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    peer.destroy();
  });

  test("random bytes after login never take pgmux down or disturb anyone else", async () => {
    await withBystander(trusting, async () => {
      await fc.assert(
        fc.asyncProperty(randomTraffic(), async (bytes) => {
          const peer = await loggedIn();
          try {
            peer.send(bytes);
            // Whatever happens to this connection, give it a moment, then leave.
            await waitUntil("the offender to be answered or closed", () => peer.isClosed, {
              timeoutMs: 100,
              intervalMs: 10,
            }).catch(() => {});
          } finally {
            peer.destroy();
          }
          // Once pgmux has let go of the offender, none of its servers may be left waiting for replies that
          // will never come (a drain stuck until the 30 s guard): checked per run, so a failure shrinks.
          const pool = poolOf(trusting);
          await waitUntil("pgmux to let go of the offender", () => trusting.pooler.clients.size <= 1, {
            timeoutMs: 2000,
            intervalMs: 5,
          });
          await waitUntil(
            "no server to be stuck in a query of pgmux's own",
            () => [...pool.servers].every((server) => server.state !== "internal"),
            { timeoutMs: 1500, intervalMs: 10 },
          );
        }),
        { numRuns: 100 },
      );
    });
    // Every server pgmux kept is clean: as many transactions at once as there are servers all work.
    const pool = poolOf(trusting);
    const clients = await Promise.all(Array.from({ length: pool.servers.size || 1 }, () => connected(trusting)));
    try {
      for (const c of clients) await c.query("begin");
      for (const c of clients) expect((await c.query("select 42 as n")).rows).toEqual([{ n: 42 }]);
      for (const c of clients) await c.query("commit");
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
    }
  });
});

describe("bytes whose replies pgmux could miscount", () => {
  // pgmux counts the replies a server owes from headers alone. These offenders send what PostgreSQL reads
  // otherwise than it looks (a Sync or Flush with a body, a Query skipped after an extended-query error,
  // a valid message with garbage behind it): none of it may reach another client or strand a server. A pool
  // of one server, so the next client to get it is known.
  // Each test has a pgmux of its own, so a server one of them strands cannot starve the next.
  let single: PoolerInstance;
  const table = `abuse_smuggle_${process.pid}`;

  beforeAll(async () => {
    await pgServer.psql(`drop table if exists ${table}; create table ${table} (what text)`);
  });

  beforeEach(async () => {
    single = await startPooler({ postgres: pgServer, settings: { authType: "trust", defaultPoolSize: 1 } });
  });

  afterEach(async () => {
    if (single) await stopWithin(single, 3000);
  });

  afterAll(async () => {
    await pgServer.psql(`drop table if exists ${table}`);
  });

  test("a Query hidden in the body of a Sync never runs, and its result never reaches another client", async () => {
    const bystander = await connected(single);
    try {
      expect((await bystander.query("select 'warm' as x")).rows).toEqual([{ x: "warm" }]);
      const offender = await loggedIn(single);
      const hidden = encodeQuery({
        query: `insert into ${table} values ('smuggled'); select pg_sleep(0.5), 'smuggled' as x`,
      });
      const sync = Buffer.alloc(5);
      sync[0] = 0x53; // 'S'
      sync.writeUInt32BE(4 + hidden.length, 1);
      offender.send(Buffer.concat([sync, hidden]));
      // Whatever pgmux answers the offender, the bystander's next query is its own.
      await offender.next();
      const result: pg.QueryResult | pg.QueryResult[] = await withDeadline(
        bystander.query("select 'mine' as x"),
        5000,
        "the bystander's query",
      );
      // (An array would mean the bystander got the results of the offender's two statements.)
      expect(Array.isArray(result) ? result.map((r) => r.rows) : result.rows).toEqual([{ x: "mine" }]);
      expect(await pgServer.psql(`select count(*) from ${table}`)).toBe("0");
      offender.destroy();
    } finally {
      await bystander.end().catch(() => {});
    }
  });

  test("garbage right behind a valid message inside a transaction: the server is not stranded waiting for a reply", async () => {
    const bystander = await connected(single);
    try {
      const offender = await loggedIn(single);
      expect(await offender.query("begin")).toEqual([]);
      // One write: a valid Query, then a message of no known type. pgmux refuses the chunk; it must not
      // expect a reply to a Query it never sent.
      offender.send(Buffer.concat([encodeQuery({ query: "select 1" }), Buffer.from([0xde, 0, 0, 0, 4])]));
      await expectProtocolViolation(offender);
      const { rows } = await withDeadline(bystander.query("select 'served' as x"), 5000, "the bystander's query");
      expect(rows).toEqual([{ x: "served" }]);
    } finally {
      await bystander.end().catch(() => {});
    }
  });

  test("a Query sent after a failed extended message and before its Sync: the server is not stranded when the client leaves", async () => {
    // After an error in an extended-query exchange PostgreSQL skips everything up to the next Sync, Query
    // messages included: the ReadyForQuery pgmux counts for such a Query never comes.
    const bystander = await connected(single);
    try {
      expect((await bystander.query("select 'warm' as x")).rows).toEqual([{ x: "warm" }]);
      const offender = await loggedIn(single);
      offender.send(
        Buffer.concat([encodeExecute({ portal: "no_such_portal", maxRows: 0 }), encodeQuery({ query: "select 1" })]),
      );
      const msg = await offender.next();
      expect(msg?.type).toBe("ErrorResponse");
      offender.destroy();
      const { rows } = await withDeadline(bystander.query("select 'served' as x"), 5000, "the bystander's query");
      expect(rows).toEqual([{ x: "served" }]);
    } finally {
      await bystander.end().catch(() => {});
    }
  });

  test("a Flush with a body: PostgreSQL's error for it never reaches the next client", async () => {
    const bystander = await connected(single);
    try {
      const offender = await loggedIn(single);
      const flush = Buffer.from([0x48, 0, 0, 0, 8, 1, 2, 3, 4]); // 'H' with 4 bytes of body
      offender.send(Buffer.concat([encodeQuery({ query: "select pg_sleep(0.3)" }), flush]));
      const pool = poolOfSingle();
      // pgmux may refuse the malformed Flush at once (08P01); if it lets it through, the offender holds the
      // server and the bystander is queued behind it, to get the server the moment the offender's query ends.
      await waitUntil("the offender to hold the server or be refused", () => pool.active === 1 || offender.isClosed, {
        timeoutMs: 3000,
      });
      const { rows } = await withDeadline(
        bystander.query("select $1::text as x", ["mine"]),
        5000,
        "the bystander's query",
      );
      expect(rows).toEqual([{ x: "mine" }]);
      offender.destroy();
    } finally {
      await bystander.end().catch(() => {});
    }
  });

  function poolOfSingle() {
    return single.pooler.pools.get(`${pgServer.database}\0${pgServer.user}`)!;
  }
});

// ---- helpers ------------------------------------------------------------------------------------------------

function startup(extra: readonly [string, string][] = []): Buffer {
  return encodeStartupMessage({
    protocolVersion: ProtocolVersion.V3_0,
    parameters: [["user", pgServer.user], ["database", pgServer.database], ...extra],
  });
}

function loggedIn(instance: PoolerInstance = trusting): Promise<RawPeer> {
  return RawPeer.loggedIn(instance.port, pgServer.user, pgServer.database);
}

/** The offender's ErrorResponse: FATAL 08P01 with `message`, then the end of the connection. */
async function expectProtocolViolation(
  peer: RawPeer,
  message: RegExp = /^protocol violation: /,
): Promise<ReadonlyMap<string, string>> {
  const msg = await peer.next();
  expect(msg?.type).toBe("ErrorResponse");
  const fields = (msg as Extract<BackendMessage, { type: "ErrorResponse" }>).fields;
  expect(fields.get("V")).toBe("FATAL");
  expect(fields.get("C")).toBe("08P01");
  expect(fields.get("M")).toMatch(message);
  await peer.closed();
  return fields;
}

function poolOf(instance: PoolerInstance) {
  const pool = instance.pooler.pools.get(`${pgServer.database}\0${pgServer.user}`);
  if (pool === undefined) throw new Error("no pool yet");
  return pool;
}

/** No row of the offender's transaction, and no backend left idle in a transaction. */
async function expectNoTransactionLeft(table: string): Promise<void> {
  await waitUntil(
    "no backend idle in a transaction",
    async () =>
      (await pgServer.psql(
        `select count(*) from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'`,
      )) === "0",
    { timeoutMs: 5000, intervalMs: 50 },
  );
  expect(await pgServer.psql(`select count(*) from ${table}`)).toBe("0");
}

async function connected(instance: PoolerInstance): Promise<pg.Client> {
  const client = new pg.Client(instance.params());
  client.on("error", () => {});
  await client.connect();
  return client;
}

/**
 * Runs `abuse` while a well-behaved pg client queries in a loop (each answer checked), then expects that
 * client to have had no error at all and the pool to settle whole: every server idle, none owed to anyone.
 */
async function withBystander(instance: PoolerInstance, abuse: () => Promise<void>): Promise<void> {
  const client = await connected(instance);
  const errors: unknown[] = [];
  client.on("error", (e) => errors.push(e));
  let queries = 0;
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      try {
        const { rows } = await client.query("select $1::int as n", [queries]);
        if (rows[0].n !== queries) errors.push(new Error(`query ${queries} answered ${rows[0].n}`));
        queries++;
      } catch (error) {
        errors.push(error);
        return;
      }
    }
  })();
  try {
    await waitUntil("the bystander to get going", () => queries > 0, { timeoutMs: 5000 });
    await abuse();
    const before = queries;
    await waitUntil("the bystander to carry on after the abuse", () => queries > before + 5 || errors.length > 0, {
      timeoutMs: 5000,
    });
  } finally {
    stop = true;
    await loop;
    await client.end().catch(() => {});
  }
  expect(errors).toEqual([]);
  const pool = poolOf(instance);
  await waitUntil(
    "the pool to settle with every server idle",
    () => pool.active === 0 && pool.waitingCount === 0 && pool.idleCount === pool.servers.size,
    {
      timeoutMs: 5000,
      detail: () => `servers ${pool.servers.size}, idle ${pool.idleCount}, active ${pool.active}`,
    },
  );
  expect(pool.servers.size).toBeLessThanOrEqual(pool.size);
  await waitUntil("pgmux to have no client left", () => instance.pooler.clients.size === 0, { timeoutMs: 5000 });
}

/** Mostly well-framed messages of any type with random bodies, some truncated, some pure noise. */
function randomTraffic(): fc.Arbitrary<Buffer> {
  const typeByte = fc.oneof(
    fc.constantFrom(..."QPBDECSHFdcfpXxZ".split("").map((c) => c.charCodeAt(0))),
    fc.integer({ min: 0, max: 255 }),
  );
  const framed = fc
    .record({
      type: typeByte,
      body: fc.uint8Array({ maxLength: 64 }),
      lie: fc.oneof(fc.constant(0), fc.integer({ min: -8, max: 64 }), fc.constant(0x7ffffff0)),
    })
    .map(({ type, body, lie }) => {
      const header = Buffer.alloc(5);
      header[0] = type;
      header.writeUInt32BE((4 + body.length + lie) >>> 0, 1);
      return Buffer.concat([header, body]);
    });
  return fc
    .array(fc.oneof({ weight: 4, arbitrary: framed }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 32 }) }), {
      minLength: 1,
      maxLength: 4,
    })
    .map((parts) => Buffer.concat(parts.map((p) => Buffer.from(p))));
}

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
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
