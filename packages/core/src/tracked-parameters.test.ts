import { describe, expect, test } from "vitest";
import {
  normalizeParameterValue,
  parameterSyncQuery,
  quoteLiteral,
  recordParameterSync,
  trackedParameterName,
} from "./tracked-parameters.js";

describe("tracked parameters", () => {
  test("matches names case-insensitively and returns ParameterStatus spelling", () => {
    expect(trackedParameterName("timezone")).toBe("TimeZone");
    expect(trackedParameterName("DATESTYLE")).toBe("DateStyle");
    expect(trackedParameterName("work_mem")).toBeUndefined();
  });

  test("agreeing values need no query; differing ones are set with startup-packet semantics", () => {
    const server = new Map([["TimeZone", "UTC"]]);
    expect(parameterSyncQuery(new Map([["TimeZone", "UTC"]]), server)).toBe("");
    expect(
      parameterSyncQuery(
        new Map([
          ["search_path", "a, b"],
          ["TimeZone", "UTC"],
        ]),
        server,
      ),
    ).toBe("SELECT pg_catalog.set_config('search_path', E'a, b', false);");
  });

  test("a value the previous client left and this one lacks is reset, and the record follows", () => {
    const server = new Map<string, string>();
    const own = new Map([["search_path", "own"]]);
    const plain = new Map<string, string>();
    recordParameterSync(own, server);
    expect(parameterSyncQuery(plain, server)).toBe("RESET search_path;");
    recordParameterSync(plain, server);
    expect(parameterSyncQuery(own, server)).toContain("set_config('search_path', E'own'");
  });

  test("quotes so that quotes and backslashes survive whatever standard_conforming_strings is", () => {
    expect(quoteLiteral(`it's a \\ test`)).toBe(`E'it''s a \\\\ test'`);
  });

  test("spells client_encoding as the server reports it", () => {
    expect(normalizeParameterValue("client_encoding", "utf-8")).toBe("UTF8");
    expect(normalizeParameterValue("client_encoding", "unicode")).toBe("UTF8");
    expect(normalizeParameterValue("application_name", "utf-8")).toBe("utf-8");
  });
});
