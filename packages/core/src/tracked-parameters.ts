/**
 * Session parameters that belong to the client, not to whichever server it is lent: set in its startup
 * packet or changed later, they are re-applied with SET when the client lands on a server whose values
 * differ. Names are matched case-insensitively, as PostgreSQL matches GUC names, and kept in the spelling
 * ParameterStatus uses.
 */
const CANONICAL = new Map<string, string>(
  [
    "application_name",
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "standard_conforming_strings",
    "search_path",
    "extra_float_digits",
  ].map((name) => [name.toLowerCase(), name]),
);

/**
 * Parameters PostgreSQL does not report with ParameterStatus (before version 18 for search_path): pgmux
 * knows a server's value only if it set it itself, and resets them when the next client has none.
 */
const UNREPORTED = new Set(["search_path", "extra_float_digits"]);

/** The canonical name of a tracked parameter, or undefined if pgmux does not track it. */
export function trackedParameterName(name: string): string | undefined {
  return CANONICAL.get(name.toLowerCase());
}

export function isReportedParameter(canonicalName: string): boolean {
  return !UNREPORTED.has(canonicalName);
}

/** An E'' literal: backslash and quote escaped, so it means the same whatever standard_conforming_strings is. */
export function quoteLiteral(value: string): string {
  return `E'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/**
 * The SQL that brings a server's session parameters to the client's, or "" when they already agree.
 * `client` holds the client's values (startup packet over the pool's defaults); `server` what the server
 * reported or pgmux set on it.
 */
export function parameterSyncQuery(client: ReadonlyMap<string, string>, server: ReadonlyMap<string, string>): string {
  let sql = "";
  for (const name of CANONICAL.values()) {
    const want = client.get(name);
    const have = server.get(name);
    if (want === have) continue;
    if (want === undefined) {
      // Only an unreported parameter can be missing on the client side: a previous client set it.
      sql += `RESET ${name};`;
    } else {
      // set_config reads the value as a startup packet or postgresql.conf would: "a, b" stays a list.
      sql += `SELECT pg_catalog.set_config('${name}', ${quoteLiteral(want)}, false);`;
    }
  }
  return sql;
}

/** Records on the server's side what a successful parameterSyncQuery(client, server) has done. */
export function recordParameterSync(client: ReadonlyMap<string, string>, server: Map<string, string>): void {
  for (const name of CANONICAL.values()) {
    const want = client.get(name);
    if (want === undefined) server.delete(name);
    else server.set(name, want);
  }
}

/**
 * The spelling the server would report for a value a client gave in its startup packet, for the cases
 * drivers commonly send differently (client_encoding "utf8"/"UTF-8"/"unicode"): the client then sees the
 * value it will get, and its server needs no SET for a difference of spelling only.
 */
export function normalizeParameterValue(canonicalName: string, value: string): string {
  if (canonicalName === "client_encoding") {
    const upper = value.trim().toUpperCase().replace(/-/g, "");
    return upper === "UNICODE" ? "UTF8" : upper;
  }
  return value;
}
