/** SQL text builders shared by the local and external handles. Identifiers and literals are always quoted. */

/** Group roles whose members the local cluster's pg_hba.conf sends to md5 and cleartext `password` auth. */
export const AUTH_GROUP_ROLES = {
  md5: "pgmux_md5_login",
  plain: "pgmux_password_login",
} as const;

export type RoleAuthMethod = "scram" | "md5" | "plain";

export interface CreateRoleOptions {
  /**
   * How the role authenticates over TCP: "scram" (SCRAM-SHA-256, the default), "md5" (an MD5-hashed stored
   * password and the md5 exchange), or "plain" (cleartext `password` auth; the secret is stored as SCRAM).
   */
  readonly method?: RoleAuthMethod;
  readonly superuser?: boolean;
  /** Also GRANT the role membership in these roles. */
  readonly inRoles?: readonly string[];
}

export interface CreateDatabaseOptions {
  readonly owner?: string;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(value: string): string {
  // standard_conforming_strings is on in every supported release, so only quotes need doubling.
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * CREATE ROLE for one of the auth methods. The stored secret's format follows password_encryption at the
 * time of the statement, so the SET comes first. `authGroups` is false for servers we did not set up, whose
 * pg_hba.conf knows nothing of our group roles.
 */
export function createRoleSql(name: string, password: string, options: CreateRoleOptions, authGroups: boolean): string {
  const method = options.method ?? "scram";
  const encryption = method === "md5" ? "md5" : "scram-sha-256";
  const groups = [...(options.inRoles ?? [])];
  if (authGroups && method !== "scram") groups.push(AUTH_GROUP_ROLES[method]);
  const inRoles = groups.length > 0 ? ` IN ROLE ${groups.map(quoteIdent).join(", ")}` : "";
  return [
    `SET password_encryption = ${quoteLiteral(encryption)};`,
    `CREATE ROLE ${quoteIdent(name)} LOGIN${options.superuser ? " SUPERUSER" : ""} PASSWORD ${quoteLiteral(password)}${inRoles};`,
    "RESET password_encryption;",
  ].join("\n");
}

export function createDatabaseSql(name: string, options: CreateDatabaseOptions): string {
  return `CREATE DATABASE ${quoteIdent(name)}${options.owner ? ` OWNER ${quoteIdent(options.owner)}` : ""};`;
}
