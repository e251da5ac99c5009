import {
  type BackendMessage,
  buildScramVerifier,
  decodeBackendMessage,
  encodePasswordMessage,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeStartupMessage,
  md5Response,
  md5Secret,
  ProtocolVersion,
  ScramClient,
} from "@pgmux/protocol";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { RawPeer, type TestPostgres, testPostgres } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

/**
 * Client authentication against the auth_file (auth_type × the kind of secret held, as PgBouncer pairs
 * them), the answer a failed login gets, and pgmux's own login to PostgreSQL with what the auth_file holds:
 * an md5 secret, or only a role's SCRAM verifier (passthrough).
 */

type AuthType = "plain" | "md5" | "scram-sha-256";
type SecretKind = "plain" | "md5" | "scram";

let pgServer: TestPostgres;

beforeAll(async () => {
  pgServer = await testPostgres();
});

/** A role name no other run or file uses. */
function role(what: string): string {
  return `auth_${what}_${process.pid}`;
}

describe("auth_type against the kind of secret in the auth_file", () => {
  // Client authentication only: every pool logs in to PostgreSQL as the superuser (a [databases] entry with
  // its own user and password), so what is tested is pgmux's check of the client.
  const password: Record<SecretKind, string> = { plain: "plain pw", md5: "md5 pw", scram: "scram pw" };
  const user = (kind: SecretKind): string => `client_${kind}`;
  const poolers = new Map<AuthType, PoolerInstance>();

  beforeAll(async () => {
    const users = {
      [user("plain")]: password.plain,
      [user("md5")]: md5Secret(user("md5"), password.md5),
      [user("scram")]: await buildScramVerifier(password.scram),
    };
    for (const authType of ["plain", "md5", "scram-sha-256"] as const) {
      poolers.set(
        authType,
        await startPooler({
          postgres: pgServer,
          users,
          settings: {
            authType,
            fallbackDatabase: null,
            databases: new Map([
              [
                "authdb",
                {
                  name: "authdb",
                  host: pgServer.host,
                  port: pgServer.port,
                  dbname: pgServer.database,
                  user: pgServer.user,
                  password: pgServer.password,
                  serverStartupParameters: new Map(),
                },
              ],
            ]),
          },
        }),
      );
    }
  });

  afterAll(async () => {
    for (const p of poolers.values()) await stopWithin(p, 3000);
  });

  // What PgBouncer does: plain checks a cleartext password against any secret; md5 uses SCRAM when the secret
  // is a SCRAM verifier; scram-sha-256 needs a plaintext password or a verifier, and fails with an md5 secret.
  const matrix: [AuthType, SecretKind, BackendMessage["type"], "ok" | "28P01"][] = [
    ["plain", "plain", "AuthenticationCleartextPassword", "ok"],
    ["plain", "md5", "AuthenticationCleartextPassword", "ok"],
    ["plain", "scram", "AuthenticationCleartextPassword", "ok"],
    ["md5", "plain", "AuthenticationMD5Password", "ok"],
    ["md5", "md5", "AuthenticationMD5Password", "ok"],
    ["md5", "scram", "AuthenticationSASL", "ok"],
    ["scram-sha-256", "plain", "AuthenticationSASL", "ok"],
    ["scram-sha-256", "md5", "AuthenticationSASL", "28P01"],
    ["scram-sha-256", "scram", "AuthenticationSASL", "ok"],
  ];

  test.each(matrix)(
    "auth_type %s with a %s secret asks for %s and the right password gives %s",
    async (authType, kind, asked, outcome) => {
      const pooler = poolers.get(authType)!;
      const peer = await RawPeer.connect(pooler.port);
      try {
        peer.send(startup(user(kind), "authdb"));
        expect((await peer.next())?.type).toBe(asked);
      } finally {
        peer.destroy();
      }

      const params = pooler.params({ user: user(kind), password: password[kind], database: "authdb" });
      if (outcome === "ok") {
        const client = new pg.Client(params);
        await client.connect();
        try {
          expect((await client.query("select current_user as who")).rows).toEqual([{ who: pgServer.user }]);
        } finally {
          await client.end();
        }
      } else {
        expect((await connectError(params)).code).toBe(outcome);
      }
      // And the check is real: a wrong password never gets in.
      expect((await connectError({ ...params, password: `${password[kind]} but wrong` })).code).toBe("28P01");
    },
  );

  test.each(["plain", "md5", "scram-sha-256"] as const)(
    "with auth_type %s an unknown user and a wrong password get byte-identical 28P01 errors after the same exchange",
    async (authType) => {
      const name = "someone";
      const withUser = await startPooler({
        postgres: pgServer,
        users: { [name]: "the password" },
        settings: { authType },
      });
      const withoutUser = await startPooler({ postgres: pgServer, settings: { authType } });
      try {
        const wrongPassword = await failedLogin(withUser.port, name, "not the password");
        const unknownUser = await failedLogin(withoutUser.port, name, "not the password");
        expect(unknownUser.asked).toEqual(wrongPassword.asked);
        expect(unknownUser.error.toString("hex")).toBe(wrongPassword.error.toString("hex"));
        const fields = (decodeFrame(wrongPassword.error) as Extract<BackendMessage, { type: "ErrorResponse" }>).fields;
        expect(fields.get("C")).toBe("28P01");
        expect(fields.get("V")).toBe("FATAL");
        expect(fields.get("M")).toBe(`password authentication failed for user "${name}"`);
      } finally {
        await stopWithin(withUser, 3000);
        await stopWithin(withoutUser, 3000);
      }
    },
  );

  test("trust lets a listed user in without a password and refuses an unlisted one with 28P01", async () => {
    const pooler = await startPooler({ postgres: pgServer, settings: { authType: "trust" } });
    try {
      const peer = await RawPeer.connect(pooler.port);
      try {
        peer.send(startup(pgServer.user, pgServer.database));
        // No Authentication request but AuthenticationOk straight away.
        expect((await peer.next())?.type).toBe("AuthenticationOk");
      } finally {
        peer.destroy();
      }
      const client = new pg.Client({ ...pooler.params(), password: undefined });
      await client.connect();
      try {
        expect((await client.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
      } finally {
        await client.end();
      }
      expect((await connectError({ ...pooler.params(), user: "not_listed", password: undefined })).code).toBe("28P01");
    } finally {
      await stopWithin(pooler, 3000);
    }
  });
});

describe("pgmux's own login to PostgreSQL", () => {
  test("an md5 secret alone logs in to a role PostgreSQL stores as md5", async () => {
    const name = role("md5_role");
    await pgServer.createRole(name, "md5 role pw", { method: "md5" });
    expect(await pgServer.psql(`select left(rolpassword, 3) from pg_authid where rolname = '${name}'`)).toBe("md5");
    const secret = md5Secret(name, "md5 role pw");
    const pooler = await startPooler({ postgres: pgServer, users: { [name]: secret }, settings: { authType: "md5" } });
    try {
      const client = new pg.Client(pooler.params({ user: name, password: "md5 role pw" }));
      await client.connect();
      try {
        const { rows } = await client.query("select current_user as who, session_user as session");
        expect(rows).toEqual([{ who: name, session: name }]);
      } finally {
        await client.end();
      }
    } finally {
      await stopWithin(pooler, 3000);
    }
  });

  test("a plaintext password logs in to an md5 role while the client itself uses SCRAM", async () => {
    const name = role("md5_role_plain");
    await pgServer.createRole(name, "md5 role pw 2", { method: "md5" });
    const pooler = await startPooler({ postgres: pgServer, users: { [name]: "md5 role pw 2" } });
    try {
      const client = new pg.Client(pooler.params({ user: name, password: "md5 role pw 2" }));
      await client.connect();
      try {
        expect((await client.query("select current_user as who")).rows).toEqual([{ who: name }]);
      } finally {
        await client.end();
      }
    } finally {
      await stopWithin(pooler, 3000);
    }
  });

  test("SCRAM passthrough: with only the role's verifier and no plaintext anywhere, SCRAM clients reach PostgreSQL", async () => {
    const name = role("scram_passthrough");
    const secretPassword = "only the client knows this";
    await pgServer.createRole(name, secretPassword);
    const verifier = await pgServer.psql(`select rolpassword from pg_authid where rolname = '${name}'`);
    expect(verifier).toMatch(/^SCRAM-SHA-256\$4096:/);
    const pooler = await startPooler({
      postgres: pgServer,
      users: { [name]: verifier },
      settings: { authType: "scram-sha-256", defaultPoolSize: 2 },
    });
    // Nothing pgmux was given holds the password.
    const given = JSON.stringify(pooler.pooler.settings, (_k, v: unknown) =>
      v instanceof Map ? [...v.entries()] : v instanceof Set ? [...v] : v,
    );
    expect(given).not.toContain(secretPassword);
    expect(pooler.pooler.settings.users.get(name)).toBe(verifier);

    const clients: pg.Client[] = [];
    try {
      // Two clients in transactions at once: two servers, each logged in with the ClientKey a client proved.
      for (let i = 0; i < 2; i++) {
        const c = new pg.Client(pooler.params({ user: name, password: secretPassword }));
        await c.connect();
        clients.push(c);
        await c.query("begin");
      }
      const pids = new Set<number>();
      for (const c of clients) {
        const { rows } = await c.query("select current_user as who, pg_backend_pid() as pid");
        expect(rows[0].who).toBe(name);
        pids.add(rows[0].pid);
      }
      expect(pids.size).toBe(2);
      for (const c of clients) await c.query("commit");
      expect((await connectError(pooler.params({ user: name, password: "a guess" }))).code).toBe("28P01");
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
      await stopWithin(pooler, 3000);
    }
  });

  test("a cleartext client of a user held only as a SCRAM verifier is told why pgmux cannot log in, and pgmux runs on", async () => {
    // PgBouncer's rule: a SCRAM secret logs in to the server only when the client itself used SCRAM. pgmux may
    // do better (derive the keys from the cleartext password); either way it must answer, not fall over.
    const name = role("scram_cleartext");
    await pgServer.createRole(name, "cleartext pw");
    const verifier = await pgServer.psql(`select rolpassword from pg_authid where rolname = '${name}'`);
    const pooler = await startPooler({
      postgres: pgServer,
      users: { [name]: verifier },
      settings: { authType: "plain", queryWaitTimeoutMs: 4000, serverConnectTimeoutMs: 2000 },
    });
    try {
      const client = new pg.Client(pooler.params({ user: name, password: "cleartext pw" }));
      client.on("error", () => {});
      const outcome = await client.connect().then(
        async () => {
          const { rows } = await client.query("select current_user as who");
          await client.end();
          return rows[0].who as string;
        },
        (error: Error & { code?: string }) => error,
      );
      if (typeof outcome !== "string") {
        expect(outcome.code).toBe("08001");
        expect(outcome.message).toMatch(/SCRAM/);
      } else {
        expect(outcome).toBe(name);
      }
      // pgmux is still there for everyone else.
      const other = new pg.Client(pooler.params());
      await other.connect();
      expect((await other.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
      await other.end();
    } finally {
      await stopWithin(pooler, 3000);
    }
  });

  test("an md5 secret for a role PostgreSQL asks SCRAM of: the client gets 08001 saying so, and pgmux runs on", async () => {
    const name = role("scram_role_md5_secret");
    await pgServer.createRole(name, "pw for scram role");
    const pooler = await startPooler({
      postgres: pgServer,
      users: { [name]: md5Secret(name, "pw for scram role") },
      settings: { authType: "md5", queryWaitTimeoutMs: 4000, serverConnectTimeoutMs: 2000 },
    });
    try {
      const error = await connectError(pooler.params({ user: name, password: "pw for scram role" }));
      expect(error.code).toBe("08001");
      expect(error.message).toMatch(/scram-sha-256/i);
      const other = new pg.Client(pooler.params());
      await other.connect();
      expect((await other.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
      await other.end();
    } finally {
      await stopWithin(pooler, 3000);
    }
  });
});

// ---- helpers ------------------------------------------------------------------------------------------------

function startup(user: string, database: string): Buffer {
  return encodeStartupMessage({
    protocolVersion: ProtocolVersion.V3_0,
    parameters: [
      ["user", user],
      ["database", database],
    ],
  });
}

/** Logs in with a wrong password on a raw socket: the authentication requests seen and the error's raw bytes. */
async function failedLogin(port: number, user: string, password: string): Promise<{ asked: string[]; error: Buffer }> {
  const peer = await RawPeer.connect(port);
  try {
    peer.send(startup(user, pgServer.database));
    const asked: string[] = [];
    let scram: ScramClient | null = null;
    for (;;) {
      const frame = await peer.nextFrame();
      if (frame === null) throw new Error(`closed without an error after ${asked.join(", ")}`);
      const msg = decodeFrame(frame);
      switch (msg.type) {
        case "ErrorResponse":
          await peer.closed();
          return { asked, error: frame };
        case "AuthenticationCleartextPassword":
          asked.push(msg.type);
          peer.send(encodePasswordMessage({ password }));
          break;
        case "AuthenticationMD5Password":
          asked.push(msg.type);
          peer.send(encodePasswordMessage({ password: md5Response(password, user, msg.salt) }));
          break;
        case "AuthenticationSASL":
          asked.push(msg.type);
          scram = new ScramClient({ credentials: { password } });
          peer.send(encodeSASLInitialResponse({ mechanism: scram.mechanism, data: Buffer.from(scram.clientFirst()) }));
          break;
        case "AuthenticationSASLContinue":
          asked.push(msg.type);
          peer.send(encodeSASLResponse({ data: Buffer.from(await scram!.clientFinal(msg.data)) }));
          break;
        default:
          throw new Error(`unexpected ${msg.type} during a login that should fail`);
      }
    }
  } finally {
    peer.destroy();
  }
}

async function connectError(params: pg.ClientConfig): Promise<Error & { code?: string }> {
  const client = new pg.Client(params);
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    return error as Error & { code?: string };
  }
  await client.end();
  throw new Error("the login was expected to fail, and succeeded");
}

/** pooler.stop() bounded in time: true when it finished, false when it was still waiting after `ms`. */
async function stopWithin(pooler: PoolerInstance, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([pooler.stop().then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

function decodeFrame(frame: Buffer): BackendMessage {
  return decodeBackendMessage(frame[0]!, frame, 5, frame.length);
}
