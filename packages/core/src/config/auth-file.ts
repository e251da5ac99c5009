import { dirname, resolve } from "node:path";
import type { BuildContext, RawConfig } from "./build-config.js";
import { ConfigError, configProblem } from "./config-error.js";
import { describeReadError, type ReadTextFile } from "./ini-parser.js";
import { parseUserlist } from "./userlist.js";

/** PgBouncer reads no user list for these: PAM asks the system, `any` asks nobody. */
const AUTH_TYPES_WITHOUT_USERLIST = ["pam", "any"];

/**
 * Reads the userlist named by `auth_file` into `raw.auth`, and makes `raw.pgmux.auth_file` absolute. A
 * relative path is taken from the directory of the file that set it (not the working directory), so the
 * same configuration loads the same users wherever pgmux is started.
 */
export function loadAuthFile(raw: RawConfig, ctx: BuildContext, readFile: ReadTextFile): void {
  const value = raw.pgmux.auth_file;
  if (typeof value !== "string" || value.trim() === "") return;
  const setAt = ctx.sources.locate(["pgmux", "auth_file"]);
  const path = resolve(dirname(setAt.file), value.trim());
  raw.pgmux.auth_file = path;

  const authType = typeof raw.pgmux.auth_type === "string" ? raw.pgmux.auth_type.trim().toLowerCase() : "md5";
  if (AUTH_TYPES_WITHOUT_USERLIST.includes(authType)) return;

  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    ctx.problems.push(
      configProblem(
        setAt,
        "auth_file",
        `cannot read ${path}: ${describeReadError(err)} (check the path; a relative one is taken from the directory of the file that sets it)`,
      ),
    );
    return;
  }
  ctx.sources.addFile(path);
  try {
    for (const [user, entry] of parseUserlist(text, path)) {
      raw.auth[user] = entry.secret;
      ctx.secrets.add(entry.secret);
      ctx.sources.set(["auth", user], { file: path, line: entry.line });
    }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    ctx.problems.push(...err.problems);
  }
}
