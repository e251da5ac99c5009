/**
 * The live trace over HTTP: GET /v1/trace streams server-sent events (one `trace` event per line, JSON),
 * GET /v1/trace.txt streams plain text lines for a number of seconds. Each request opens its own
 * subscription, closed when the request ends; a slow reader is served from the subscription's bounded
 * ring (the oldest lines go first), never by buffering without limit.
 */

import type { ServerResponse } from "node:http";
import {
  formatTraceLine,
  type TraceFilter,
  type TraceLine,
  type Tracer,
  type TraceSubscription,
  type TraceSubscriptionOptions,
} from "@pgmux/core";
import { z } from "zod";

const HEARTBEAT_MS = 15_000;
export const DEFAULT_TRACE_SECONDS = 10;
export const MAX_TRACE_SECONDS = 300;

const digits = z.string().regex(/^\d+$/, { error: "must be a whole number" });
const selector = z.string().min(1, { error: "must not be empty" }).max(256);

/** The query of /v1/trace and /v1/trace.txt. */
export const TraceQuerySchema = z
  .strictObject({
    client: digits.transform(Number).optional(),
    user: selector.optional(),
    database: selector.optional(),
    application_name: selector.optional(),
    reveal: z.enum(["true", "false", "1", "0"]).optional(),
    seconds: digits
      .transform(Number)
      .refine((n) => n >= 1 && n <= MAX_TRACE_SECONDS, { error: `must be 1 to ${MAX_TRACE_SECONDS}` })
      .optional(),
  })
  .refine(
    (q) =>
      q.client !== undefined || q.user !== undefined || q.database !== undefined || q.application_name !== undefined,
    { error: "name what to trace: client, user, database or application_name" },
  );

export interface TraceRequest {
  readonly filter: TraceFilter;
  readonly reveal: boolean;
  readonly seconds: number;
}

export function traceRequest(q: z.output<typeof TraceQuerySchema>): TraceRequest {
  const filter: { -readonly [K in keyof TraceFilter]: TraceFilter[K] } = {};
  if (q.client !== undefined) filter.clientId = q.client;
  if (q.user !== undefined) filter.user = q.user;
  if (q.database !== undefined) filter.database = q.database;
  if (q.application_name !== undefined) filter.applicationName = q.application_name;
  return { filter, reveal: q.reveal === "true" || q.reveal === "1", seconds: q.seconds ?? DEFAULT_TRACE_SECONDS };
}

function describeFilter(f: TraceFilter): string {
  const parts: string[] = [];
  if (f.clientId !== undefined) parts.push(`client=${f.clientId}`);
  if (f.user !== undefined) parts.push(`user=${f.user}`);
  if (f.database !== undefined) parts.push(`database=${f.database}`);
  if (f.applicationName !== undefined) parts.push(`application_name=${f.applicationName}`);
  return parts.join(" ");
}

/**
 * Pumps a subscription's lines into a response until either ends; `end()` closes both. `format` turns lines
 * into the bytes to write. Writing stops while the socket is full and resumes on 'drain'.
 */
export class TraceStream {
  private readonly sub: TraceSubscription;
  private waitingForDrain = false;
  private ended = false;
  private reportedDropped = 0;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    tracer: Tracer,
    request: TraceRequest,
    private readonly res: ServerResponse,
    private readonly kind: "sse" | "text",
    private readonly onEnd: (stream: TraceStream) => void,
  ) {
    const options: TraceSubscriptionOptions = { reveal: request.reveal };
    this.sub = tracer.subscribe(request.filter, options);
    if (kind === "sse") {
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        "x-accel-buffering": "no",
        connection: "keep-alive",
      });
      // The first bytes say the subscription is open: a reader may start its traffic once it sees them.
      res.write(`retry: 3000\n: tracing ${describeFilter(request.filter)}\n\n`);
      const heartbeat = setInterval(() => this.write(": ping\n\n"), HEARTBEAT_MS);
      heartbeat.unref();
      this.timers.push(heartbeat);
    } else {
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-cache" });
      res.write(`# pgmux trace: ${describeFilter(request.filter)} for ${request.seconds} s\n`);
      const stop = setTimeout(() => this.end(), request.seconds * 1000);
      stop.unref();
      this.timers.push(stop);
    }
    this.sub.onLines = () => this.pump();
    res.on("close", () => this.end());
    res.on("drain", () => {
      this.waitingForDrain = false;
      this.pump();
    });
  }

  private write(text: string): boolean {
    if (this.ended) return false;
    return this.res.write(text);
  }

  private pump(): void {
    if (this.ended || this.waitingForDrain) return;
    const lines = this.sub.drain();
    let ok = true;
    for (const line of lines) ok = this.write(this.format(line)) && ok;
    if (this.sub.dropped > this.reportedDropped) {
      this.reportedDropped = this.sub.dropped;
      ok =
        this.write(
          this.kind === "sse"
            ? `event: dropped\ndata: ${JSON.stringify({ dropped: this.sub.dropped })}\n\n`
            : `# ${this.sub.dropped} lines dropped so far (rate limit or slow reader)\n`,
        ) && ok;
    }
    if (!ok) this.waitingForDrain = true;
  }

  private format(line: TraceLine): string {
    return this.kind === "sse"
      ? `id: ${line.seq}\nevent: trace\ndata: ${JSON.stringify(line)}\n\n`
      : `${formatTraceLine(line)}\n`;
  }

  /** Closes the subscription and the response. */
  end(): void {
    if (this.ended) return;
    if (!this.waitingForDrain) this.pump();
    this.ended = true;
    for (const t of this.timers) clearTimeout(t);
    this.sub.close();
    this.res.end();
    this.onEnd(this);
  }
}
