import { LOG_LEVELS, type LogLevel } from "@pgmux/core";
import { type DestinationStream, type Logger, pino } from "pino";

export type LogFormat = "json" | "text";

/**
 * Field names whose values are never written, at any depth pino's redaction reaches: passwords, secrets,
 * tokens, a request's Authorization header, the user list of a configuration object.
 */
export const REDACTED_LOG_PATHS = [
  "password",
  "*.password",
  "secret",
  "*.secret",
  "token",
  "*.token",
  "admin_api_token",
  "*.admin_api_token",
  "auth_ldap_options",
  "*.auth_ldap_options",
  "authorization",
  "req.headers.authorization",
  "headers.authorization",
  "config.auth",
  "*.userlist",
];

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly format: LogFormat;
  /** Where lines go (default: stdout). */
  readonly destination?: { write(line: string): unknown };
}

/**
 * The root logger: pino JSON on stdout, the level as a word (`"level":"info"`), the time in ISO 8601,
 * secrets redacted; or, with format `text`, PgBouncer-style lines for a person reading a terminal. Every
 * pool, client and server logs through a child of it with fixed fields (pool, client, remote, server).
 */
export function createLogger(options: LoggerOptions): Logger {
  const out = options.destination ?? process.stdout;
  const destination: DestinationStream =
    options.format === "text" ? { write: (line: string) => out.write(textLine(line)) } : (out as DestinationStream);
  return pino(
    {
      level: options.level,
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_LOG_PATHS, censor: "********" },
    },
    destination,
  );
}

/** Whether `level` is one pino knows, for the admin API's log-level action. */
export function isLogLevel(level: unknown): level is LogLevel {
  return typeof level === "string" && (LOG_LEVELS as readonly string[]).includes(level);
}

const TEXT_LEVELS: Record<string, string> = {
  trace: "NOISE",
  debug: "DEBUG",
  info: "LOG",
  warn: "WARNING",
  error: "ERROR",
  fatal: "FATAL",
};

/** Fields that make up a line's prefix, PgBouncer-like: `C-12 app/alice@10.0.0.5:5555`. */
const PREFIX_FIELDS = new Set(["client", "server", "pool", "database", "user", "remote"]);
const FIXED_FIELDS = new Set(["level", "time", "pid", "hostname", "msg"]);

function scalar(v: unknown): string {
  if (typeof v === "string") return /[\s"=]/.test(v) || v === "" ? JSON.stringify(v) : v;
  return JSON.stringify(v) ?? String(v);
}

/** One JSON log line as PgBouncer-style text: `time [pid] LOG C-3 app/alice@1.2.3.4:5: msg key=value`. */
export function textLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const level = TEXT_LEVELS[String(o.level)] ?? String(o.level).toUpperCase();
  const ids: string[] = [];
  if (o.client !== undefined) ids.push(`C-${o.client}`);
  if (o.server !== undefined) ids.push(`S-${o.server}`);
  let who = "";
  const db = o.database ?? (typeof o.pool === "string" ? o.pool.split("/")[0] : undefined);
  const user = o.user ?? (typeof o.pool === "string" ? o.pool.split("/").slice(1).join("/") : undefined);
  if (db !== undefined || user !== undefined) who = `${db ?? "?"}/${user ?? "?"}`;
  if (o.remote !== undefined) who += `@${o.remote}`;
  const prefix = [...ids, who].filter((p) => p !== "").join(" ");
  const rest = Object.entries(o)
    .filter(([k]) => !PREFIX_FIELDS.has(k) && !FIXED_FIELDS.has(k))
    .map(([k, v]) => `${k}=${scalar(v)}`)
    .join(" ");
  return `${o.time} [${o.pid}] ${level} ${prefix === "" ? "" : `${prefix}: `}${o.msg ?? ""}${rest === "" ? "" : ` ${rest}`}\n`;
}
