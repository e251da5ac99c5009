/**
 * The `key=value key='quoted value'` strings of PgBouncer's [databases], [users] and [peers] sections.
 *
 * Rules, matching PgBouncer's reader with libpq's escapes added where they cannot change a PgBouncer file's
 * meaning in practice:
 * - pairs are separated by spaces or tabs; spaces around `=` are allowed; a later duplicate key wins;
 * - a value runs to the next space, or is single-quoted; a quoted value may contain spaces, `''` (PgBouncer)
 *   or `\'` (libpq) for a quote, and `\\` for a backslash. Any other backslash is kept as written, and so is
 *   every backslash in an unquoted value, because PgBouncer never treated them as escapes there and
 *   unquoted passwords with backslashes exist in the wild;
 * - a value may not be missing (`host=` at the end); `''` is an explicitly empty value.
 *
 * Error messages name keys but never repeat values, since a value may be a password.
 */

export type ConnectionStringResult =
  | { readonly ok: true; readonly values: ReadonlyMap<string, string> }
  | { readonly ok: false; readonly key: string; readonly message: string };

function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t";
}

/**
 * `knownKeys`, when given, lets an unknown key right after an unquoted password be reported as a quoting
 * mistake without naming it (it is probably the rest of the password); other unknown keys are left for the
 * caller to report.
 */
export function parseConnectionString(text: string, knownKeys?: readonly string[]): ConnectionStringResult {
  const values = new Map<string, string>();
  let i = 0;
  // Set after an unquoted password: a stray word that follows is most likely the rest of a password that
  // needed quotes, so it must not be quoted back in an error message.
  let afterBarePassword = false;

  const skipSpaces = () => {
    while (isSpace(text[i])) i++;
  };
  const fail = (key: string, message: string): ConnectionStringResult => ({ ok: false, key, message });
  const strayText = (key: string): ConnectionStringResult =>
    afterBarePassword
      ? fail(
          "password",
          "the text after the password is not a key=value setting (quote a password that contains spaces: password='...')",
        )
      : fail(key, `"${key}" has no = after it (write ${key}=value; quote values that contain spaces)`);

  skipSpaces();
  while (i < text.length) {
    const keyStart = i;
    while (i < text.length && text[i] !== "=" && !isSpace(text[i])) i++;
    const key = text.slice(keyStart, i);
    skipSpaces();
    if (text[i] !== "=") return strayText(key);
    if (key === "") return fail("", "a setting has no name before = (write key=value)");
    if (afterBarePassword && knownKeys !== undefined && !knownKeys.includes(key)) return strayText(key);
    i++;
    skipSpaces();

    let value = "";
    let quoted = false;
    if (text[i] === "'") {
      quoted = true;
      i++;
      let closed = false;
      while (i < text.length) {
        const c = text[i]!;
        if (c === "\\" && (text[i + 1] === "'" || text[i + 1] === "\\")) {
          value += text[i + 1];
          i += 2;
        } else if (c === "'" && text[i + 1] === "'") {
          value += "'";
          i += 2;
        } else if (c === "'") {
          closed = true;
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) return fail(key, "the quoted value has no closing ' (end it with ')");
      if (i < text.length && !isSpace(text[i])) {
        return fail(key, "text follows the closing ' directly (put a space between settings)");
      }
    } else {
      const valueStart = i;
      while (i < text.length && !isSpace(text[i])) i++;
      value = text.slice(valueStart, i);
      if (value === "") return fail(key, "has no value (give it one, write '' for an empty value, or remove it)");
    }
    values.set(key, value);
    afterBarePassword = key === "password" && !quoted;
    skipSpaces();
  }
  return { ok: true, values };
}
