import { type PgmuxConfig, redactConfig } from "@pgmux/core";
import { stringify } from "yaml";

/**
 * The effective configuration as a pgmux.yaml, secrets replaced by "********": what `--print-config`
 * shows, so a person can see what the file, the environment and the flags add up to.
 */
export function renderConfig(config: PgmuxConfig, origin: string): string {
  const safe = redactConfig(config);
  // A file mode reads best, and loads back the same, in octal.
  const pgmux = { ...safe.pgmux, unix_socket_mode: `0${safe.pgmux.unix_socket_mode.toString(8)}` };
  const doc: Record<string, unknown> = { pgmux, databases: safe.databases };
  if (Object.keys(safe.users).length > 0) doc.users = safe.users;
  if (Object.keys(safe.peers).length > 0) doc.peers = safe.peers;
  // The user list came from auth_file when that is set; printing it inline too would load as a conflict.
  if (Object.keys(safe.auth).length > 0 && safe.pgmux.auth_file === undefined) doc.userlist = safe.auth;
  const header = `# pgmux effective configuration (${origin}); secrets are shown as ********\n`;
  return header + stringify(doc, { lineWidth: 0 });
}
