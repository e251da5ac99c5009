import type { PgmuxConfig } from "./config-schema.js";

export const REDACTED = "********";

/**
 * A copy of the configuration that is safe to log, print or serve from the admin API: database
 * passwords, userlist secrets and LDAP options (which can carry a bind password) become "********". User
 * names and everything else stay, because they are what a person debugging needs to see.
 */
export function redactConfig(config: PgmuxConfig): PgmuxConfig {
  const pgmux = structuredClone(config.pgmux);
  if (pgmux.auth_ldap_options !== undefined) pgmux.auth_ldap_options = REDACTED;
  if (pgmux.admin_api_token !== undefined) pgmux.admin_api_token = REDACTED;
  const databases: PgmuxConfig["databases"] = {};
  for (const [name, db] of Object.entries(config.databases)) {
    databases[name] = db.password === undefined ? { ...db } : { ...db, password: REDACTED };
  }
  const auth: PgmuxConfig["auth"] = {};
  for (const user of Object.keys(config.auth)) auth[user] = REDACTED;
  return {
    pgmux,
    databases,
    users: structuredClone(config.users),
    peers: structuredClone(config.peers),
    auth,
  };
}
