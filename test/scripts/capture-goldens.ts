/**
 * Captures golden PostgreSQL wire bytes for packages/protocol/fixtures: starts a throwaway cluster, puts a
 * recording TCP relay in front of it, drives real clients (pg, postgres.js, psql) through the relay, and
 * writes every session's bytes per direction with the chunk sizes as they were read, plus a large DataRow
 * stream for the codec benchmark and a README describing what was captured.
 *
 *   pnpm exec tsc -b test && node test/dist/scripts/capture-goldens.js [--out <dir>]
 *
 * Passwords are fixed (see ROLES) so tests can recompute the MD5 hash and the SCRAM proofs from the bytes.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { finished } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import pg from "pg";
import postgres from "postgres";
import {
  findPgBinDir,
  PostgresCluster,
  type RecordedConnection,
  RecordingRelay,
  type RelayTarget,
  runCommand,
} from "../support/index.js";

/** One captured connection, as stored in goldens.json. */
interface GoldenSession {
  readonly name: string;
  /** The client library or program and its version. */
  readonly client: string;
  /** Hex of every client → server byte, in order. */
  readonly frontend: string;
  /** Hex of every server → client byte, in order. */
  readonly backend: string;
  /** Sizes of the client → server chunks as the relay read them; they sum to the frontend's byte length. */
  readonly frontendChunks: number[];
  readonly backendChunks: number[];
}

interface Scenario {
  readonly name: string;
  readonly client: string;
  /** For the README: what the session shows. */
  readonly shows: string;
  run(endpoint: RelayTarget): Promise<void>;
}

const DATABASE = "pgmux_goldens";
const ROLES = {
  scram: { name: "golden_scram", password: "golden-scram-password" },
  md5: { name: "golden_md5", password: "golden-md5-password" },
  plain: { name: "golden_plain", password: "golden-plain-password" },
} as const;
const APPLICATION_NAME = "pgmux-goldens";
const SESSION_DEADLINE_MS = 30_000;
const DATAROWS_COUNT = 100_000;
const DATAROWS_QUERY =
  `select g as id, 'row-' || g as label, (g * 1.25)::numeric(12, 2) as amount ` +
  `from generate_series(1, ${DATAROWS_COUNT}) as g`;

const SSL_REQUEST_CODE = 80877103;
const GSSENC_REQUEST_CODE = 80877104;
const CANCEL_REQUEST_CODE = 80877102;

async function main(): Promise<void> {
  const outDir = resolve(argValue("--out") ?? join(repoRoot(), "packages", "protocol", "fixtures"));
  const binDir = findPgBinDir();
  const psqlPath = join(binDir, "psql");
  const versions = {
    pg: `pg ${packageVersion("pg")}`,
    postgres: `postgres ${packageVersion("postgres")}`,
    psql: await psqlVersion(psqlPath),
  };

  const cluster = await PostgresCluster.start({ binDir });
  try {
    await cluster.createRole(ROLES.scram.name, ROLES.scram.password, { method: "scram" });
    await cluster.createRole(ROLES.md5.name, ROLES.md5.password, { method: "md5" });
    await cluster.createRole(ROLES.plain.name, ROLES.plain.password, { method: "plain" });
    await cluster.createDatabase(DATABASE, { owner: ROLES.scram.name });
    await cluster.psql(
      [
        `set role ${ROLES.scram.name};`,
        "create table golden_items (id int primary key, label text not null);",
        "create table golden_copy (id int primary key, label text not null);",
        `grant select on golden_items to ${ROLES.md5.name}, ${ROLES.plain.name};`,
      ].join("\n"),
      { database: DATABASE },
    );
    const serverVersion = await cluster.psql("show server_version");

    const sessions: GoldenSession[] = [];
    const summaries: string[] = [];
    for (const scenario of scenarios(versions, psqlPath)) {
      const connection = await capture(cluster, scenario);
      const session = toSession(scenario, connection);
      sessions.push(session);
      summaries.push(summarize(scenario, session));
      console.log(`captured ${scenario.name}`);
    }

    const datarows = await captureDataRows(cluster, versions.pg);
    console.log(`captured datarows: ${datarows.bytes.length} bytes`);

    await mkdir(outDir, { recursive: true });
    const goldensPath = join(outDir, "goldens.json");
    await writeFile(goldensPath, `${JSON.stringify(sessions, null, 2)}\n`);
    await formatWithBiome(goldensPath);
    await writeFile(join(outDir, "datarows.bin"), datarows.bytes);
    const readmePath = join(outDir, "README.md");
    const goldensBytes = readFileSync(goldensPath).length;
    await writeFile(readmePath, readme({ serverVersion, versions, summaries, datarows, goldensBytes }));
    await formatWithBiome(readmePath);
    console.log(`wrote ${relative(process.cwd(), outDir) || "."}/{goldens.json,datarows.bin,README.md}`);
  } finally {
    await cluster.destroy();
  }
}

function scenarios(versions: { pg: string; postgres: string; psql: string }, psqlPath: string): Scenario[] {
  const scram = { user: ROLES.scram.name, password: ROLES.scram.password };
  return [
    {
      name: "pg-scram-startup",
      client: versions.pg,
      shows: "StartupMessage, the SCRAM-SHA-256 exchange, ParameterStatus set, BackendKeyData, then Terminate",
      run: (endpoint) => withPg(endpoint, scram, async () => {}),
    },
    {
      name: "pg-cleartext-password-startup",
      client: versions.pg,
      shows: "AuthenticationCleartextPassword answered by a PasswordMessage, one simple query",
      run: (endpoint) =>
        withPg(endpoint, { user: ROLES.plain.name, password: ROLES.plain.password }, async (client) => {
          await client.query("select current_user as who");
        }),
    },
    {
      name: "psql-md5-session",
      client: versions.psql,
      shows: "SSLRequest refused with 'N', AuthenticationMD5Password, a simple query from `psql -c`",
      run: async (endpoint) => {
        const env: NodeJS.ProcessEnv = {};
        for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("PG")) env[key] = value;
        Object.assign(env, {
          PGHOST: endpoint.host,
          PGPORT: String(endpoint.port),
          PGUSER: ROLES.md5.name,
          PGPASSWORD: ROLES.md5.password,
          PGDATABASE: DATABASE,
          PGAPPNAME: "psql",
          // No Kerberos here; without this libpq's default may or may not probe GSSAPI encryption first.
          PGGSSENCMODE: "disable",
          PGSSLMODE: "prefer",
        });
        const sql = "select current_user as who, 'md5 session' as what";
        const result = await runCommand(psqlPath, ["-X", "-A", "-t", "-c", sql], { timeoutMs: 20_000, env });
        if (result.code !== 0) throw new Error(`psql failed: ${result.stderr.trim()}`);
      },
    },
    {
      name: "pg-simple-query-rows",
      client: versions.pg,
      shows: "simple Query returning RowDescription, three DataRows, CommandComplete, ReadyForQuery",
      run: (endpoint) =>
        withPg(endpoint, scram, async (client) => {
          await client.query("select g as n, 'row ' || g as label from generate_series(1, 3) as g");
        }),
    },
    {
      name: "pg-multi-statement-error",
      client: versions.pg,
      shows: "one Query with three statements: the first completes, the second raises 22012, the third never runs",
      run: (endpoint) =>
        withPg(endpoint, scram, async (client) => {
          await expectRejection(client.query("select 1 as a; select 1/0 as b; select 2 as c"), "22012");
        }),
    },
    {
      name: "pg-empty-query",
      client: versions.pg,
      shows: "an empty Query answered by EmptyQueryResponse",
      run: (endpoint) =>
        withPg(endpoint, scram, async (client) => {
          await client.query("");
        }),
    },
    {
      name: "pg-notice",
      client: versions.pg,
      shows: "NoticeResponse from RAISE NOTICE inside a DO block",
      run: (endpoint) =>
        withPg(endpoint, scram, async (client) => {
          const notice = new Promise((resolve) => client.once("notice", resolve));
          await client.query("DO $$ BEGIN RAISE NOTICE 'hi'; END $$");
          await withDeadline(notice, 5_000, "the notice");
        }),
    },
    {
      name: "pg-listen-notify",
      client: versions.pg,
      shows: "LISTEN, then NOTIFY to itself: NotificationResponse before ReadyForQuery, then UNLISTEN",
      run: (endpoint) =>
        withPg(endpoint, scram, async (client) => {
          await client.query("LISTEN golden_channel");
          const notification = new Promise((resolve) => client.once("notification", resolve));
          await client.query("NOTIFY golden_channel, 'hello from pgmux goldens'");
          await withDeadline(notification, 5_000, "the notification");
          await client.query("UNLISTEN *");
        }),
    },
    {
      name: "pg-extended-query-params",
      client: versions.pg,
      shows: "unnamed Parse/Bind/Describe/Execute/Sync with three text parameters",
      run: (endpoint) =>
        withPg(endpoint, scram, async (client) => {
          await client.query("select $1::int + $2::int as sum, $3::text as label", [1, 2, "three"]);
        }),
    },
    {
      name: "pg-named-prepared-statement",
      client: versions.pg,
      shows: "a named statement parsed once and executed twice (the second Bind reuses it without Parse)",
      run: (endpoint) =>
        withPg(endpoint, scram, async (client) => {
          const text = "select $1::int * 2 as doubled";
          await client.query({ name: "golden_double", text, values: [21] });
          await client.query({ name: "golden_double", text, values: [50] });
        }),
    },
    {
      name: "pg-transaction-status",
      client: versions.pg,
      shows: "ReadyForQuery statuses I → T → I, then a failed transaction: T → E → I after ROLLBACK",
      run: (endpoint) =>
        withPg(endpoint, scram, async (client) => {
          await client.query("begin");
          await client.query("insert into golden_items values (1, 'one'), (2, 'two')");
          await client.query("commit");
          await client.query("begin");
          await expectRejection(client.query("select 1/0"), "22012");
          await expectRejection(client.query("select 1"), "25P02");
          await client.query("rollback");
        }),
    },
    {
      name: "postgres-copy-from-stdin",
      client: versions.postgres,
      shows:
        "COPY FROM STDIN: CopyInResponse, CopyData rows, CopyDone, CommandComplete; postgres.js then sends a " +
        "stray CopyFail ('null') after CopyDone, which the server ignores outside COPY",
      run: (endpoint) =>
        withPostgresJs(endpoint, async (sql) => {
          const writable = await sql`copy golden_copy (id, label) from stdin`.writable();
          writable.write("1\tone\n2\ttwo\n");
          writable.write("3\tthree\n");
          writable.end();
          await finished(writable);
        }),
    },
    {
      name: "postgres-copy-to-stdout",
      client: versions.postgres,
      shows: "COPY TO STDOUT: CopyOutResponse, one CopyData per row, CopyDone, CommandComplete",
      run: (endpoint) =>
        withPostgresJs(endpoint, async (sql) => {
          const readable =
            await sql`copy (select g as id, 'item ' || g as label from generate_series(1, 3) as g) to stdout`.readable();
          for await (const _chunk of readable) {
            // Draining is the point: the bytes are recorded by the relay.
          }
        }),
    },
  ];
}

/** Runs one scenario through a fresh relay and returns the single connection it made. */
async function capture(cluster: PostgresCluster, scenario: Scenario): Promise<RecordedConnection> {
  const relay = await RecordingRelay.start({ host: cluster.host, port: cluster.port });
  try {
    await withDeadline(scenario.run({ host: relay.host, port: relay.port }), SESSION_DEADLINE_MS, scenario.name);
    await relay.settled(1);
    if (relay.connections.length !== 1) {
      throw new Error(`${scenario.name} opened ${relay.connections.length} connections, expected 1`);
    }
    return relay.connections[0]!;
  } finally {
    await relay.close();
  }
}

function toSession(scenario: Scenario, connection: RecordedConnection): GoldenSession {
  const side = (direction: "frontend" | "backend") => connection.chunks.filter((c) => c.direction === direction);
  const frontend = side("frontend");
  const backend = side("backend");
  return {
    name: scenario.name,
    client: scenario.client,
    frontend: Buffer.concat(frontend.map((c) => c.bytes)).toString("hex"),
    backend: Buffer.concat(backend.map((c) => c.bytes)).toString("hex"),
    frontendChunks: frontend.map((c) => c.bytes.length),
    backendChunks: backend.map((c) => c.bytes.length),
  };
}

interface DataRows {
  readonly bytes: Buffer;
  /** Where in the session's backend stream the file starts. */
  readonly offset: number;
  readonly sessionBackendBytes: number;
  readonly messages: string;
  readonly client: string;
}

/**
 * The big stream: the backend bytes of one simple Query returning DATAROWS_COUNT rows. The file starts at the
 * first byte after the startup phase's ReadyForQuery, i.e. at the reply's RowDescription.
 */
async function captureDataRows(cluster: PostgresCluster, client: string): Promise<DataRows> {
  const scenario: Scenario = {
    name: "datarows",
    client,
    shows: "",
    run: (endpoint) =>
      withPg(endpoint, { user: ROLES.scram.name, password: ROLES.scram.password }, async (pgClient) => {
        const result = await pgClient.query(DATAROWS_QUERY);
        if (result.rowCount !== DATAROWS_COUNT) throw new Error(`expected ${DATAROWS_COUNT} rows`);
      }),
  };
  const connection = await capture(cluster, scenario);
  const backend = Buffer.concat(connection.chunks.filter((c) => c.direction === "backend").map((c) => c.bytes));
  const messages = walkTyped(backend, 0);
  const startupEnd = messages.findIndex((m) => m.type === "Z");
  if (startupEnd < 0) throw new Error("no ReadyForQuery in the datarows session");
  const offset = messages[startupEnd]!.end;
  const bytes = backend.subarray(offset);
  const reply = walkTyped(bytes, 0);
  const rows = reply.filter((m) => m.type === "D").length;
  if (reply[0]?.type !== "T" || reply.at(-1)?.type !== "Z" || rows !== DATAROWS_COUNT) {
    throw new Error(`the datarows reply is not T D×${DATAROWS_COUNT} C Z: ${runLength(reply.map((m) => m.type))}`);
  }
  return {
    bytes,
    offset,
    sessionBackendBytes: backend.length,
    messages: runLength(reply.map((m) => m.type)),
    client,
  };
}

interface WireMessage {
  readonly type: string;
  readonly end: number;
}

/** Typed messages from `start` to the end of `bytes`; throws unless they tile it exactly. */
function walkTyped(bytes: Buffer, start: number): WireMessage[] {
  const messages: WireMessage[] = [];
  let offset = start;
  while (offset < bytes.length) {
    if (offset + 5 > bytes.length) throw new Error(`truncated header at ${offset}`);
    const length = bytes.readInt32BE(offset + 1);
    const end = offset + 1 + length;
    if (length < 4 || end > bytes.length) throw new Error(`bad length ${length} at ${offset}`);
    messages.push({ type: String.fromCharCode(bytes[offset]!), end });
    offset = end;
  }
  return messages;
}

/**
 * The frontend stream's message names: the untyped startup family first (SSLRequest, GSSENCRequest, then
 * StartupMessage or CancelRequest), typed messages after. Also checks the backend stream frames cleanly, with
 * one single-byte answer per SSLRequest/GSSENCRequest before its typed messages.
 */
function describeSession(session: GoldenSession): { frontend: string[]; backend: string[] } {
  const frontendBytes = Buffer.from(session.frontend, "hex");
  const backendBytes = Buffer.from(session.backend, "hex");
  const frontend: string[] = [];
  let offset = 0;
  let encryptionRequests = 0;
  for (;;) {
    if (offset + 8 > frontendBytes.length) throw new Error(`${session.name}: no StartupMessage`);
    const length = frontendBytes.readInt32BE(offset);
    const code = frontendBytes.readInt32BE(offset + 4);
    offset += length;
    if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
      frontend.push(code === SSL_REQUEST_CODE ? "SSLRequest" : "GSSENCRequest");
      encryptionRequests++;
      continue;
    }
    if (code === CANCEL_REQUEST_CODE) {
      frontend.push("CancelRequest");
      break;
    }
    if (code >> 16 !== 3) throw new Error(`${session.name}: unexpected startup code ${code}`);
    frontend.push("StartupMessage");
    break;
  }
  frontend.push(...walkTyped(frontendBytes, offset).map((m) => m.type));

  const backend: string[] = [];
  for (let i = 0; i < encryptionRequests; i++) backend.push(`'${String.fromCharCode(backendBytes[i]!)}'`);
  backend.push(...walkTyped(backendBytes, encryptionRequests).map((m) => m.type));

  const sum = (sizes: number[]) => sizes.reduce((a, b) => a + b, 0);
  if (sum(session.frontendChunks) !== frontendBytes.length || sum(session.backendChunks) !== backendBytes.length) {
    throw new Error(`${session.name}: chunk sizes do not add up to the bytes`);
  }
  return { frontend, backend };
}

function summarize(scenario: Scenario, session: GoldenSession): string {
  const { frontend, backend } = describeSession(session);
  const bytes = (hex: string) => hex.length / 2;
  return [
    `### ${scenario.name}`,
    "",
    `${scenario.shows}. Client: ${scenario.client}.`,
    "",
    `- frontend: ${bytes(session.frontend)} bytes in ${session.frontendChunks.length} chunks: ${runLength(frontend)}`,
    `- backend: ${bytes(session.backend)} bytes in ${session.backendChunks.length} chunks: ${runLength(backend)}`,
    "",
  ].join("\n");
}

/** "D D D C" → "D×3 C". */
function runLength(types: readonly string[]): string {
  const parts: string[] = [];
  for (let i = 0; i < types.length; ) {
    let j = i;
    while (j < types.length && types[j] === types[i]) j++;
    parts.push(j - i > 1 ? `${types[i]}×${j - i}` : types[i]!);
    i = j;
  }
  return parts.join(" ");
}

async function withPg(
  endpoint: RelayTarget,
  role: { user: string; password: string },
  drive: (client: pg.Client) => Promise<void>,
): Promise<void> {
  const client = new pg.Client({
    host: endpoint.host,
    port: endpoint.port,
    database: DATABASE,
    application_name: APPLICATION_NAME,
    ...role,
  });
  client.on("error", () => {});
  await client.connect();
  try {
    await drive(client);
  } finally {
    await client.end();
  }
}

async function withPostgresJs(endpoint: RelayTarget, drive: (sql: postgres.Sql) => Promise<void>): Promise<void> {
  const sql = postgres({
    host: endpoint.host,
    port: endpoint.port,
    database: DATABASE,
    username: ROLES.scram.name,
    password: ROLES.scram.password,
    max: 1,
    // Keeps the session to what the scenario does: no pg_type lookup on the first query.
    fetch_types: false,
    onnotice: () => {},
    connection: { application_name: APPLICATION_NAME },
  });
  try {
    await drive(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function expectRejection(promise: Promise<unknown>, sqlstate: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    if ((error as { code?: string }).code === sqlstate) return;
    throw error;
  }
  throw new Error(`expected SQLSTATE ${sqlstate}, the query succeeded`);
}

async function withDeadline<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function readme(facts: {
  serverVersion: string;
  versions: { pg: string; postgres: string; psql: string };
  summaries: string[];
  datarows: DataRows;
  goldensBytes: number;
}): string {
  const { datarows } = facts;
  return `# Protocol fixtures

Captured from a live server by \`test/scripts/capture-goldens.ts\`; do not edit by hand.

- Server: PostgreSQL ${facts.serverVersion}, a throwaway cluster from the harness (\`test/support\`).
- Clients: ${facts.versions.pg}, ${facts.versions.postgres}, ${facts.versions.psql}.
- Path: client → recording TCP relay on 127.0.0.1 → server. The relay forwards bytes unchanged and records
  every chunk it reads, per direction.

## Regenerate

\`\`\`sh
pnpm exec tsc -b test
node test/dist/scripts/capture-goldens.js          # writes packages/protocol/fixtures/
\`\`\`

The script needs the PostgreSQL server binaries (see \`test/support/find-pg-bin-dir.ts\`). SCRAM nonces,
salts, backend PIDs and cancel keys are random, so every capture differs in those bytes; the message
sequences stay the same.

## goldens.json (${facts.goldensBytes} bytes)

An array of sessions, one TCP connection each:

\`\`\`ts
{
  name: string;              // the scenario, below
  client: string;            // client library or program and version
  frontend: string;          // hex of all client → server bytes, in order
  backend: string;           // hex of all server → client bytes, in order
  frontendChunks: number[];  // sizes of the chunks as the relay read them (they sum to the byte count)
  backendChunks: number[];
}
\`\`\`

Both streams start at the connection's first byte: the frontend with the untyped startup family
(SSLRequest, StartupMessage), the backend with the single-byte answer to an SSLRequest when there was one.
The interleaving of the two directions is not kept.

Database \`${DATABASE}\`, \`application_name\` \`${APPLICATION_NAME}\` (psql: \`psql\`). Roles and passwords, so
the MD5 hash and the SCRAM proofs can be recomputed from the bytes:

| role | password | stored as | auth the server asks for |
| --- | --- | --- | --- |
| \`${ROLES.scram.name}\` | \`${ROLES.scram.password}\` | SCRAM-SHA-256 | SCRAM-SHA-256 (SASL) |
| \`${ROLES.md5.name}\` | \`${ROLES.md5.password}\` | md5 | MD5Password |
| \`${ROLES.plain.name}\` | \`${ROLES.plain.password}\` | SCRAM-SHA-256 | CleartextPassword (pg_hba \`password\`) |

Below, message names are the type bytes (startup-family messages by name); \`X×n\` means n in a row.

${facts.summaries.join("\n")}
## datarows.bin (${datarows.bytes.length} bytes)

Raw backend bytes for benchmarks: the reply to one simple Query, by ${datarows.client} as \`${ROLES.scram.name}\`:

\`\`\`sql
${DATAROWS_QUERY}
\`\`\`

The file starts at a message boundary: the first byte after the ReadyForQuery that ends the startup phase
(offset ${datarows.offset} of that session's ${datarows.sessionBackendBytes} backend bytes), so it holds exactly
\`${datarows.messages}\` (RowDescription, ${DATAROWS_COUNT} DataRows, CommandComplete, ReadyForQuery), every
message whole, nothing after the last.
`;
}

/** Biome owns the repository's JSON and Markdown layout; let it format what we wrote so `biome check` passes. */
async function formatWithBiome(path: string): Promise<void> {
  const root = repoRoot();
  // Outside the workspace there is no check to keep clean, and Biome refuses paths outside its root.
  if (relative(root, path).startsWith("..")) return;
  const biome = join(root, "node_modules", ".bin", "biome");
  if (!existsSync(biome)) {
    console.warn(`biome not found at ${biome}: run \`pnpm exec biome format --write ${path}\``);
    return;
  }
  const result = await runCommand(biome, ["format", "--write", path], { timeoutMs: 60_000, cwd: root });
  if (result.code !== 0) console.warn(`biome format failed: ${result.stderr.trim() || result.stdout.trim()}`);
}

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "pnpm-workspace.yaml"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("not inside the pgmux workspace (no pnpm-workspace.yaml above the script)");
    dir = parent;
  }
}

function packageVersion(name: string): string {
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve(name));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const parsed = JSON.parse(readFileSync(manifest, "utf8")) as { name?: string; version?: string };
      if (parsed.name === name && parsed.version) return parsed.version;
    }
    const parent = dirname(dir);
    if (parent === dir) return "unknown";
    dir = parent;
  }
}

async function psqlVersion(psqlPath: string): Promise<string> {
  const result = await runCommand(psqlPath, ["--version"], { timeoutMs: 10_000 });
  const version = /(\d+(?:\.\d+)+)/.exec(result.stdout)?.[1];
  return `psql ${version ?? "unknown"}`;
}

function argValue(flag: string): string | undefined {
  const index = process.argv.indexOf(flag);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
