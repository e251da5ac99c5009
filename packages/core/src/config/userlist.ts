import { ConfigError, type ConfigProblem, configProblem } from "./config-error.js";

/**
 * PgBouncer's auth_file ("userlist.txt"): one user per line as `"name" "secret"`, each field in double
 * quotes with `""` standing for a quote inside it; anything after the second field is ignored (mkauth-style
 * files carry a third). Lines starting with `;` or `#` are comments.
 *
 * The secret is kept exactly as written: plain text, `md5` followed by md5(password || username) in hex, or
 * a SCRAM-SHA-256 verifier. Errors name the file, the line and, once read, the user; never the secret.
 */

export const SecretKind = {
  Plain: "plain",
  Md5: "md5",
  ScramSha256: "scram-sha-256",
} as const;
export type SecretKind = (typeof SecretKind)[keyof typeof SecretKind];

const MD5_SECRET = /^md5[0-9a-f]{32}$/;
const SCRAM_PREFIX = "SCRAM-SHA-256$";
const BASE64 = "[A-Za-z0-9+/]+={0,2}";
const SCRAM_SECRET = new RegExp(`^SCRAM-SHA-256\\$[1-9][0-9]*:${BASE64}\\$${BASE64}:${BASE64}$`);

/** Which kind of secret a userlist entry holds, decided the way PostgreSQL decides it for rolpassword. */
export function userlistSecretKind(secret: string): SecretKind {
  if (MD5_SECRET.test(secret)) return SecretKind.Md5;
  if (secret.startsWith(SCRAM_PREFIX)) return SecretKind.ScramSha256;
  return SecretKind.Plain;
}

export interface UserlistEntry {
  readonly secret: string;
  readonly line: number;
}

/** Reads one `"…"` field starting at `text[start]` (which must be the opening quote). */
function readQuoted(text: string, start: number): { value: string; end: number } | undefined {
  let value = "";
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      if (text[i + 1] === '"') {
        value += '"';
        i++;
        continue;
      }
      return { value, end: i + 1 };
    }
    value += c;
  }
  return undefined;
}

/**
 * Parses a userlist. Returns user name → secret (a later line for the same user wins, as in PgBouncer);
 * throws ConfigError listing every malformed line.
 */
export function parseUserlist(text: string, file: string): Map<string, UserlistEntry> {
  const users = new Map<string, UserlistEntry>();
  const problems: ConfigProblem[] = [];
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const at = { file, line: n + 1 };
    let line = lines[n]!;
    if (n === 0 && line.startsWith("\uFEFF")) line = line.slice(1);
    line = line.trim();
    if (line === "" || line.startsWith(";") || line.startsWith("#")) continue;

    if (!line.startsWith('"')) {
      problems.push(
        configProblem(
          at,
          "auth_file",
          'expected "user" "secret" (put both in double quotes, or start a comment with ;)',
        ),
      );
      continue;
    }
    const user = readQuoted(line, 0);
    if (user === undefined) {
      problems.push(configProblem(at, "auth_file", 'the user name has no closing " (write "user" "secret")'));
      continue;
    }
    const key = `userlist.${user.value}`;
    let i = user.end;
    while (line[i] === " " || line[i] === "\t") i++;
    if (line[i] !== '"') {
      problems.push(
        configProblem(at, key, 'expected the secret in double quotes after the user name (write "user" "secret")'),
      );
      continue;
    }
    const secret = readQuoted(line, i);
    if (secret === undefined) {
      problems.push(configProblem(at, key, 'the secret has no closing " (end it with "; write "" for a quote inside)'));
      continue;
    }
    if (user.value === "") {
      problems.push(configProblem(at, "auth_file", 'the user name is empty (write "user" "secret")'));
      continue;
    }
    if (secret.value.startsWith(SCRAM_PREFIX) && !SCRAM_SECRET.test(secret.value)) {
      problems.push(
        configProblem(
          at,
          key,
          "the SCRAM-SHA-256 secret is malformed (copy the whole rolpassword value: SCRAM-SHA-256$<iterations>:<salt>$<storedkey>:<serverkey>)",
        ),
      );
      continue;
    }
    users.set(user.value, { secret: secret.value, line: at.line });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return users;
}
