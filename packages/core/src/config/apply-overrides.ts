import type { BuildContext, RawConfig } from "./build-config.js";
import { ConfigError } from "./config-error.js";
import { type ConfigOverride, type ConfigOverrides, entrySettings } from "./config-overrides.js";
import { parseUserlist } from "./userlist.js";

/**
 * Lays the environment's and the flags' settings over what the file said (see config-overrides.ts), in
 * their order, recording each one's origin so that a problem with it names where it came from. The user
 * list is left to applyUserlistOverrides, which runs after auth_file is read so that its entries win.
 */
export function applySettingOverrides(raw: RawConfig, ctx: BuildContext, set: ConfigOverrides): void {
  ctx.problems.push(...set.problems);
  for (const o of set.overrides) {
    const section = String(o.path[0]);
    if (section === "pgmux") {
      const key = String(o.path[1]);
      raw.pgmux[key] = o.value;
      if (o.secret && typeof o.value === "string") ctx.secrets.add(o.value);
      ctx.sources.set(o.path, { file: o.origin });
    } else if (section === "databases" || section === "users" || section === "peers") {
      applyEntry(raw, ctx, section, o);
    }
  }
}

function applyEntry(
  raw: RawConfig,
  ctx: BuildContext,
  section: "databases" | "users" | "peers",
  o: ConfigOverride,
): void {
  const name = String(o.path[1]);
  const entries = raw[section];
  if (o.path.length === 2) {
    const parsed = entrySettings(section, o);
    if (!parsed.ok) {
      ctx.problems.push(parsed.problem);
      return;
    }
    if (typeof parsed.settings.password === "string") ctx.secrets.add(parsed.settings.password);
    // A whole entry replaces the file's, as a later [databases] line does.
    entries[name] = parsed.settings;
    ctx.sources.forget([section, name]);
    ctx.sources.set([section, name], { file: o.origin });
    return;
  }
  const key = String(o.path[2]);
  entries[name] ??= {};
  entries[name][key] = o.value;
  if (o.secret && typeof o.value === "string") ctx.secrets.add(o.value);
  if (!ctx.sources.has([section, name])) ctx.sources.set([section, name], { file: o.origin });
  ctx.sources.set([section, name, key], { file: o.origin });
}

/** User list entries from the environment or flags, over auth_file's (or the YAML userlist's). */
export function applyUserlistOverrides(raw: RawConfig, ctx: BuildContext, set: ConfigOverrides): void {
  for (const o of set.overrides) {
    const section = String(o.path[0]);
    if (section === "auth" && typeof o.value === "string") {
      const user = String(o.path[1]);
      raw.auth[user] = o.value;
      ctx.secrets.add(o.value);
      ctx.sources.set(["auth", user], { file: o.origin });
      ctx.inlineUserlist = true;
    } else if (section === "userlist" && typeof o.value === "string") {
      ctx.inlineUserlist = true;
      try {
        for (const [user, entry] of parseUserlist(o.value, o.origin)) {
          raw.auth[user] = entry.secret;
          ctx.secrets.add(entry.secret);
          ctx.sources.set(["auth", user], { file: o.origin, line: entry.line });
        }
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        ctx.problems.push(...err.problems);
      }
    }
  }
}
