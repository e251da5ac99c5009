/**
 * The live protocol trace through a running pgmux: real clients' messages appear decoded in the SSE stream
 * and the text view, values masked unless revealed; and while no trace is open the hot path records
 * nothing, shown by the tracer's count of recorded chunks staying 0 (not by timing).
 *
 * Needs the engine hooks (Pooler.tracer, ClientSession.trace and its two record() calls): until they are
 * wired, these tests fail saying so.
 */
import { AdminServer } from "@pgmux/admin";
import type { TraceLine, Tracer } from "@pgmux/core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

const TOKEN = "trace-test-token";

async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** Reads a server-sent-event stream in the background; `lines` fills as `trace` events arrive. */
class SseReader {
  readonly lines: TraceLine[] = [];
  raw = "";
  private readonly controller = new AbortController();
  private done: Promise<void> = Promise.resolve();

  async open(url: string, headers: Record<string, string> = {}): Promise<Response> {
    const response = await fetch(url, { headers, signal: this.controller.signal });
    if (response.status !== 200 || response.body === null) return response;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    this.done = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          const text = decoder.decode(value, { stream: true });
          this.raw += text;
          pending += text;
          let end = pending.indexOf("\n\n");
          while (end >= 0) {
            this.onEvent(pending.slice(0, end));
            pending = pending.slice(end + 2);
            end = pending.indexOf("\n\n");
          }
        }
      } catch {
        // aborted
      }
    })();
    // The stream's first bytes say the subscription is open.
    await waitUntil("the trace subscription to open", () => this.raw.includes(": tracing"), { timeoutMs: 5000 });
    return response;
  }

  private onEvent(block: string): void {
    let event = "message";
    let data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data += line.slice(6);
    }
    if (event === "trace") this.lines.push(JSON.parse(data) as TraceLine);
  }

  texts(clientId?: number): string[] {
    return this.lines.filter((l) => clientId === undefined || l.clientId === clientId).map((l) => l.text);
  }

  async waitFor(what: string, predicate: (texts: string[]) => boolean): Promise<void> {
    await waitUntil(what, () => predicate(this.texts()), {
      timeoutMs: 5000,
      detail: () => `trace so far:\n${this.texts().join("\n")}`,
    });
  }

  async close(): Promise<void> {
    this.controller.abort();
    await this.done;
  }
}

describe("live protocol trace", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;
  let admin: AdminServer;
  let tracer: Tracer;

  beforeAll(async () => {
    server = await testPostgres();
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 2 } });
    admin = new AdminServer({ pooler: instance.pooler, port: 0, apiToken: TOKEN, processMetrics: false });
    await admin.start();
    const t = admin.tracer();
    if (t === null) {
      throw new Error(
        "Pooler.tracer is missing: the trace hooks (pooler.ts: `readonly tracer = new Tracer(this.clients)`, " +
          "client-session.ts: `trace` and its record() calls) are not wired into the engine yet",
      );
    }
    tracer = t;
  });

  afterAll(async () => {
    await admin?.close();
    await instance?.stop();
  });

  /** The pgmux client id of the connection with this application_name. */
  function clientId(applicationName: string): number {
    for (const c of instance.pooler.clients) if (c.params.get("application_name") === applicationName) return c.id;
    throw new Error(`no client named ${applicationName}`);
  }

  test("with no trace open, queries record nothing: the recorded-chunk count stays 0", async () => {
    expect(tracer.subscriptionCount).toBe(0);
    const before = tracer.chunksRecorded;
    expect(before).toBe(0);
    const c = await connect({ ...instance.params(), application_name: "untraced" });
    try {
      for (let i = 0; i < 50; i++) await c.query("SELECT $1::int AS i", [i]);
      await c.query("BEGIN");
      await c.query("SELECT pg_sleep(0)");
      await c.query("COMMIT");
    } finally {
      await c.end();
    }
    expect(tracer.chunksRecorded).toBe(0);
    expect(tracer.messagesSeen).toBe(0);
    const metrics = await (await fetch(`${admin.url}/metrics`)).text();
    expect(metrics).toMatch(/^pgmux_trace_chunks_recorded_total 0$/m);
  });

  test("a query through pgmux appears in the SSE stream with decoded fields, values masked", async () => {
    const sse = new SseReader();
    const other = await connect({ ...instance.params(), application_name: "bystander" });
    await sse.open(`${admin.url}/v1/trace?application_name=trace-me`);
    const c = await connect({ ...instance.params(), application_name: "trace-me" });
    try {
      expect(tracer.subscriptionCount).toBe(1);
      await c.query("SELECT 1 AS one");
      await c.query("SELECT $1::text AS v", ["secret-value"]);
      await other.query("SELECT 'not traced'");
      await sse.waitFor("the simple query and its result", (t) => t.includes("[B2F] CommandComplete {SELECT 1}"));
      const id = clientId("trace-me");
      const mine = sse.texts(id);
      const first = mine.indexOf("[F2B] Query {SELECT 1 AS one}");
      expect(first).toBeGreaterThanOrEqual(0);
      expect(mine.slice(first, first + 5)).toEqual([
        "[F2B] Query {SELECT 1 AS one}",
        "[B2F] RowDescription {fields: [one int4]}",
        "[B2F] DataRow {values: [<1 byte>]}",
        "[B2F] CommandComplete {SELECT 1}",
        "[B2F] ReadyForQuery {I}",
      ]);
      await sse.waitFor("the extended query", (t) => t.some((x) => x.startsWith("[F2B] Bind ")));
      const bind = sse.texts(id).find((x) => x.startsWith("[F2B] Bind "));
      expect(bind).toBe('[F2B] Bind {portal: "", statement: "", parameters: [<12 bytes>]}');
      expect(sse.texts(id)).toContain('[F2B] Parse {statement: "", query: SELECT $1::text AS v, parameterTypes: []}');
      expect(sse.raw).not.toContain("secret-value");
      // Only the chosen client is traced.
      expect(sse.lines.every((l) => l.clientId === id)).toBe(true);
      expect(sse.raw).not.toContain("not traced");
    } finally {
      await c.end();
      await other.end();
      await sse.close();
    }
    await waitUntil("the subscription closed with its stream", () => tracer.subscriptionCount === 0, {
      timeoutMs: 5000,
    });
    for (const client of instance.pooler.clients) expect((client as { trace?: unknown }).trace ?? null).toBeNull();
  });

  test("reveal=true (with the token) shows parameter values", async () => {
    const sse = new SseReader();
    const denied = await fetch(`${admin.url}/v1/trace?application_name=reveal-me&reveal=true`);
    expect(denied.status).toBe(401);
    await denied.body?.cancel();
    await sse.open(`${admin.url}/v1/trace?application_name=reveal-me&reveal=true`, {
      authorization: `Bearer ${TOKEN}`,
    });
    const c = await connect({ ...instance.params(), application_name: "reveal-me" });
    try {
      await c.query("SELECT $1::text AS v", ["shown-value"]);
      await sse.waitFor("the revealed query and its result", (t) => t.includes("[B2F] CommandComplete {SELECT 1}"));
      expect(sse.texts()).toContain('[F2B] Bind {portal: "", statement: "", parameters: ["shown-value"]}');
      expect(sse.texts()).toContain('[B2F] DataRow {values: ["shown-value"]}');
    } finally {
      await c.end();
      await sse.close();
    }
  });

  test("the text view lists the lines of a client traced by id for the seconds asked", async () => {
    const c = await connect({ ...instance.params(), application_name: "text-view" });
    const id = clientId("text-view");
    try {
      const response = await fetch(`${admin.url}/v1/trace.txt?client=${id}&seconds=2`);
      expect(response.headers.get("content-type")).toContain("text/plain");
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let text = decoder.decode((await reader.read()).value);
      expect(text).toMatch(/^# pgmux trace: client=\d+ for 2 s\n/);
      await c.query("SELECT 42 AS answer");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      expect(text).toMatch(
        new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z client=${id} \\[F2B\\] Query \\{SELECT 42 AS answer\\}$`, "m"),
      );
      expect(text).toContain(`client=${id} [B2F] CommandComplete {SELECT 1}`);
    } finally {
      await c.end();
    }
  });
});
