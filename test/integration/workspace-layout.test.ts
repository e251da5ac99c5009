import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";

/**
 * The dependency direction cli → admin → core → protocol, as the packages declare it. `tsc -b` enforces it
 * through project references (an import outside them does not resolve); this keeps the declarations honest.
 */
const root = join(import.meta.dirname, "..", "..");
const allowed: Record<string, string[]> = {
  protocol: [],
  core: ["protocol"],
  admin: ["core"],
  cli: ["admin", "core"],
};

function json(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(root, path), "utf8")) as Record<string, unknown>;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.startsWith("testing/"))
    .map((f) => join(dir, f));
}

describe("workspace layout", () => {
  for (const [name, deps] of Object.entries(allowed)) {
    test(`@pgmux/${name} depends on and references only ${deps.length ? deps.join(", ") : "no other package"}`, () => {
      const pkg = json(`packages/${name}/package.json`);
      const declared = Object.keys((pkg.dependencies as Record<string, string>) ?? {});
      expect(declared.filter((d) => d.startsWith("@pgmux/")).sort()).toEqual(deps.map((d) => `@pgmux/${d}`).sort());
      const tsconfig = json(`packages/${name}/tsconfig.json`);
      const refs = ((tsconfig.references as { path: string }[]) ?? []).map((r) => r.path.replace("../", ""));
      expect(refs.sort()).toEqual([...deps].sort());
      for (const file of sourceFiles(`packages/${name}/src`)) {
        const text = readFileSync(join(root, file), "utf8");
        for (const m of text.matchAll(/from "(@pgmux\/[a-z]+)/g)) {
          expect(
            deps.map((d) => `@pgmux/${d}`),
            `${file} imports ${m[1]}`,
          ).toContain(m[1]);
        }
      }
    });
  }

  test("@pgmux/protocol has no npm dependencies and imports only node built-ins", () => {
    const pkg = json("packages/protocol/package.json");
    expect(Object.keys((pkg.dependencies as Record<string, string>) ?? {})).toEqual([]);
    for (const file of sourceFiles("packages/protocol/src")) {
      const text = readFileSync(join(root, file), "utf8");
      for (const m of text.matchAll(/from "([^".][^"]*)"/g)) expect(m[1], file).toMatch(/^node:/);
    }
  });
});
