import { describe, expect, test } from "vitest";
import { parseCliArgs } from "./args.js";

describe("pgmux's command line", () => {
  test("FILE or --config FILE, repeatable --set, -v counted, -q", () => {
    expect(parseCliArgs(["pgmux.yaml"])).toMatchObject({ command: "run", file: "pgmux.yaml", set: [], verbosity: 0 });
    expect(
      parseCliArgs(["--config", "a.ini", "-s", "listen_port=1", "--set", "databases.x=host=y", "-vv"]),
    ).toMatchObject({ command: "run", file: "a.ini", set: ["listen_port=1", "databases.x=host=y"], verbosity: 2 });
    expect(parseCliArgs(["-q"])).toMatchObject({ command: "run", file: undefined, verbosity: -1 });
  });

  test("check FILE, --print-config, -V and -h", () => {
    expect(parseCliArgs(["check", "a.ini"])).toMatchObject({ command: "check", file: "a.ini" });
    expect(parseCliArgs(["--print-config", "a.ini"])).toMatchObject({ command: "run", printConfig: true });
    expect(parseCliArgs(["-V"]).command).toBe("version");
    expect(parseCliArgs(["-h"]).command).toBe("help");
  });

  test("refuses two files and unknown options", () => {
    expect(() => parseCliArgs(["a.ini", "b.ini"])).toThrow(/one configuration file only/);
    expect(() => parseCliArgs(["--config", "a.ini", "b.ini"])).toThrow(/either --config FILE or FILE/);
    expect(() => parseCliArgs(["--frobnicate"])).toThrow();
  });
});
