import { describe, expect, it } from "vitest";
import { ErrorField, errorCode, errorFieldName, errorFields, errorMessage, errorSeverity } from "./error-fields.js";

describe("errorFields", () => {
  it("puts the severity in both S and V, then the SQLSTATE and the message", () => {
    expect([...errorFields({ severity: "ERROR", code: "53300", message: "too many clients" })]).toEqual([
      ["S", "ERROR"],
      ["V", "ERROR"],
      ["C", "53300"],
      ["M", "too many clients"],
    ]);
  });

  it("adds detail and hint only when given", () => {
    const fields = errorFields({ severity: "FATAL", code: "28P01", message: "m", hint: "h" });
    expect(fields.get(ErrorField.Hint)).toBe("h");
    expect(fields.has(ErrorField.Detail)).toBe(false);
  });

  it("refuses a code that is not a SQLSTATE", () => {
    expect(() => errorFields({ severity: "ERROR", code: "8P01", message: "m" })).toThrow(RangeError);
  });
});

describe("error field helpers", () => {
  it("prefer the non-localized severity when the server sent one", () => {
    expect(
      errorSeverity(
        new Map([
          ["S", "FEHLER"],
          ["V", "ERROR"],
        ]),
      ),
    ).toBe("ERROR");
    expect(errorSeverity(new Map([["S", "FEHLER"]]))).toBe("FEHLER");
  });

  it("report a missing code or message as undefined", () => {
    expect(errorCode(new Map())).toBeUndefined();
    expect(errorMessage(new Map())).toBeUndefined();
  });

  it("name the codes the docs list and no others", () => {
    expect(errorFieldName("C")).toBe("Code");
    expect(errorFieldName("p")).toBe("InternalPosition");
    expect(errorFieldName("z")).toBeUndefined();
  });
});
