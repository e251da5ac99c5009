import { Buffer } from "node:buffer";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "./protocol-error.js";
import { scramPassword } from "./saslprep.js";
import {
  buildScramVerifier,
  deriveScramKeys,
  formatScramVerifier,
  mockScramVerifier,
  parseScramVerifier,
  SCRAM_MAX_MESSAGE_BYTES,
  type ScramChannelBinding,
  type ScramChannelBindingData,
  ScramClient,
  ScramError,
  ScramMechanism,
  ScramServer,
  type ScramVerifier,
} from "./scram.js";

// RFC 7677 section 3.
const RFC = {
  password: "pencil",
  clientNonce: "rOprNGfwEbeRWgbNEkqO",
  serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  salt: Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64"),
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal:
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
  // What PostgreSQL stores for that password, salt and iteration count (computed independently with Python).
  verifier:
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
} as const;

function rfcVerifier(): ScramVerifier {
  const verifier = parseScramVerifier(RFC.verifier);
  if (verifier === null) throw new Error("RFC verifier does not parse");
  return verifier;
}

/** A finished exchange between our two roles; returns what the server decided. */
async function exchange(
  password: string | Uint8Array,
  verifier: ScramVerifier,
  client: Partial<ConstructorParameters<typeof ScramClient>[0]> = {},
  server: ConstructorParameters<typeof ScramServer>[0] = {},
) {
  const scramClient = new ScramClient({ credentials: { password }, ...client });
  const scramServer = new ScramServer({ mechanism: scramClient.mechanism, ...server });
  const serverFirst = scramServer.serverFirst(scramClient.clientFirst(), verifier);
  const clientFinal = await scramClient.clientFinal(serverFirst);
  return { result: scramServer.serverFinal(clientFinal), scramClient, clientFinal, serverFirst };
}

/** Runs the server role up to the client-final-message, so a test can alter that message. */
async function serverAwaitingFinal(password = "secret", verifier?: ScramVerifier) {
  const v = verifier ?? parseScramVerifier(await buildScramVerifier("secret", { iterations: 1 }));
  if (v === null) throw new Error("verifier");
  const client = new ScramClient({ credentials: { password } });
  const server = new ScramServer();
  const serverFirst = server.serverFirst(client.clientFirst(), v);
  return { server, clientFinal: await client.clientFinal(serverFirst) };
}

describe("RFC 7677 test vector", () => {
  it("the client role produces exactly the RFC's client-final-message and accepts its server-final-message", async () => {
    const client = new ScramClient({
      credentials: { password: RFC.password },
      username: "user",
      nonce: RFC.clientNonce,
    });
    expect(client.clientFirst()).toBe(RFC.clientFirst);
    expect(await client.clientFinal(RFC.serverFirst)).toBe(RFC.clientFinal);
    expect(() => client.verifyServerFinal(RFC.serverFinal)).not.toThrow();
  });

  it("the server role answers the RFC's messages with the RFC's server messages", async () => {
    const verifier = parseScramVerifier(
      await buildScramVerifier(RFC.password, { salt: RFC.salt, iterations: 4096 }),
    ) as ScramVerifier;
    const server = new ScramServer({ nonce: RFC.serverNonce });
    expect(server.serverFirst(RFC.clientFirst, verifier)).toBe(RFC.serverFirst);
    const result = server.serverFinal(RFC.clientFinal);
    expect(result).toMatchObject({ ok: true, serverFinalMessage: RFC.serverFinal });
  });

  it("the server role accepts the RFC's messages as bytes too", () => {
    const server = new ScramServer({ nonce: RFC.serverNonce });
    expect(server.serverFirst(Buffer.from(RFC.clientFirst), rfcVerifier())).toBe(RFC.serverFirst);
    expect(server.serverFinal(Buffer.from(RFC.clientFinal)).ok).toBe(true);
  });

  it("the client role can log in with ClientKey and ServerKey instead of the password", async () => {
    const keys = await deriveScramKeys(RFC.password, RFC.salt, 4096);
    const client = new ScramClient({ credentials: keys, username: "user", nonce: RFC.clientNonce });
    client.clientFirst();
    expect(await client.clientFinal(RFC.serverFirst)).toBe(RFC.clientFinal);
    client.verifyServerFinal(RFC.serverFinal);
  });
});

describe("verifiers", () => {
  it("builds the verifier PostgreSQL stores for a password, salt and iteration count", async () => {
    expect(await buildScramVerifier(RFC.password, { salt: RFC.salt, iterations: 4096 })).toBe(RFC.verifier);
  });

  it("round-trips a PostgreSQL verifier through parse and format", () => {
    const verifier = rfcVerifier();
    expect(verifier.iterations).toBe(4096);
    expect(verifier.salt).toEqual(RFC.salt);
    expect(verifier.storedKey).toHaveLength(32);
    expect(formatScramVerifier(verifier)).toBe(RFC.verifier);
  });

  it("builds with PostgreSQL's defaults: 4096 iterations and a fresh 16-byte salt", async () => {
    const a = parseScramVerifier(await buildScramVerifier("pw"));
    const b = parseScramVerifier(await buildScramVerifier("pw"));
    expect(a?.iterations).toBe(4096);
    expect(a?.salt).toHaveLength(16);
    expect(a?.salt.equals(b?.salt ?? Buffer.alloc(0))).toBe(false);
  });

  it("refuses iteration counts a verifier cannot hold", async () => {
    await expect(buildScramVerifier("pw", { iterations: 0 })).rejects.toThrow(RangeError);
    await expect(buildScramVerifier("pw", { iterations: 1.5 })).rejects.toThrow(RangeError);
    await expect(buildScramVerifier("pw", { salt: new Uint8Array(0) })).rejects.toThrow(RangeError);
  });

  const [, , keys = ""] = RFC.verifier.split("$");
  it.each([
    ["an MD5 secret", "md53175bce1d3201d16594cebf9d7eb3f9d"],
    ["a plaintext password", "pencil"],
    ["another mechanism", RFC.verifier.replace("SCRAM-SHA-256", "SCRAM-SHA-1")],
    ["zero iterations", `SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$${keys}`],
    ["a leading zero", `SCRAM-SHA-256$04096:W22ZaJ0SNY7soEsUEjb6gQ==$${keys}`],
    ["iterations beyond a 32-bit int", `SCRAM-SHA-256$2147483648:W22ZaJ0SNY7soEsUEjb6gQ==$${keys}`],
    ["a signed count", `SCRAM-SHA-256$+4096:W22ZaJ0SNY7soEsUEjb6gQ==$${keys}`],
    ["an empty salt", `SCRAM-SHA-256$4096:$${keys}`],
    ["a salt that is not base64", `SCRAM-SHA-256$4096:W22ZaJ0S*Y7soEsUEjb6gQ==$${keys}`],
    ["non-canonical base64", `SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gR==$${keys}`],
    ["a short StoredKey", RFC.verifier.replace("WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=", "WG5d8oPm")],
    ["a missing ServerKey", RFC.verifier.slice(0, RFC.verifier.lastIndexOf(":"))],
    ["trailing text", `${RFC.verifier}$`],
    ["surrounding space", ` ${RFC.verifier}`],
  ])("parse returns null for %s", (_case, text) => {
    expect(parseScramVerifier(text)).toBeNull();
  });
});

describe("the client role", () => {
  async function clientAfterFirst(nonce = "abc") {
    const client = new ScramClient({ credentials: { password: "pw" }, nonce });
    client.clientFirst();
    return client;
  }

  it("sends no username and no channel binding by default, with a fresh 24-character nonce", () => {
    const first = new ScramClient({ credentials: { password: "pw" } }).clientFirst();
    const second = new ScramClient({ credentials: { password: "pw" } }).clientFirst();
    expect(first).toMatch(/^n,,n=,r=[A-Za-z0-9+/]{24}$/);
    expect(first).not.toBe(second);
  });

  it("escapes ',' and '=' in the username", () => {
    const client = new ScramClient({ credentials: { password: "pw" }, username: "a,b=c", nonce: "x" });
    expect(client.clientFirst()).toBe("n,,n=a=2Cb=3Dc,r=x");
  });

  it("names SCRAM-SHA-256-PLUS and sends the p= header when it binds the channel", () => {
    const client = new ScramClient({
      credentials: { password: "pw" },
      channelBinding: { flag: "p", type: "tls-server-end-point", data: Buffer.from("cert-hash") },
      nonce: "x",
    });
    expect(client.mechanism).toBe(ScramMechanism.ScramSha256Plus);
    expect(client.clientFirst()).toBe("p=tls-server-end-point,,n=,r=x");
  });

  it.each([
    ["a nonce that does not start with ours", "r=xyz123,s=c2FsdA==,i=1"],
    ["a nonce that adds nothing to ours", "r=abc,s=c2FsdA==,i=1"],
    ["a nonce with a space", "r=abc d,s=c2FsdA==,i=1"],
    ["an empty salt", "r=abcdef,s=,i=1"],
    ["a salt that is not base64", "r=abcdef,s=c2Fsd!==,i=1"],
    ["zero iterations", "r=abcdef,s=c2FsdA==,i=0"],
    ["more iterations than the limit", "r=abcdef,s=c2FsdA==,i=10000001"],
    ["iterations that are not a number", "r=abcdef,s=c2FsdA==,i=lots"],
    ["a mandatory extension", "m=ext,r=abcdef,s=c2FsdA==,i=1"],
    ["attributes out of order", "s=c2FsdA==,r=abcdef,i=1"],
    ["a missing iteration count", "r=abcdef,s=c2FsdA=="],
    ["a malformed extension", "r=abcdef,s=c2FsdA==,i=1,junk"],
    ["an over-long message", `r=abc${"d".repeat(SCRAM_MAX_MESSAGE_BYTES)},s=c2FsdA==,i=1`],
  ])("refuses a server-first-message with %s", async (_case, serverFirst) => {
    const client = await clientAfterFirst();
    await expect(client.clientFinal(serverFirst)).rejects.toThrow(ProtocolError);
  });

  it("honours a lower iteration limit", async () => {
    const client = new ScramClient({ credentials: { password: "pw" }, nonce: "abc", maxIterations: 100 });
    client.clientFirst();
    await expect(client.clientFinal("r=abcdef,s=c2FsdA==,i=101")).rejects.toThrow(/between 1 and 100/);
  });

  it("ignores extensions it does not know in server-first-message", async () => {
    const client = await clientAfterFirst();
    await expect(client.clientFinal("r=abcdef,s=c2FsdA==,i=1,x=future")).resolves.toMatch(/^c=biws,r=abcdef,p=/);
  });

  it("surfaces a server error as ScramError carrying the server's e= value", async () => {
    const client = await clientAfterFirst();
    await client.clientFinal("r=abcdef,s=c2FsdA==,i=1");
    let caught: unknown;
    try {
      client.verifyServerFinal("e=invalid-proof");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ScramError);
    expect((caught as ScramError).serverError).toBe("invalid-proof");
  });

  it("rejects a server signature that does not prove knowledge of the password", async () => {
    const client = new ScramClient({
      credentials: { password: "not pencil" },
      username: "user",
      nonce: RFC.clientNonce,
    });
    client.clientFirst();
    await client.clientFinal(RFC.serverFirst);
    expect(() => client.verifyServerFinal(RFC.serverFinal)).toThrow(ScramError);
  });

  it("rejects a malformed server-final-message as a protocol violation", async () => {
    for (const serverFinal of ["", "v=", "v=c2FsdA==", "x=1", "v=!!!"]) {
      const client = await clientAfterFirst();
      await client.clientFinal("r=abcdef,s=c2FsdA==,i=1");
      expect(() => client.verifyServerFinal(serverFinal)).toThrow(ProtocolError);
    }
  });

  it("refuses to run its steps out of order", async () => {
    const client = new ScramClient({ credentials: { password: "pw" } });
    await expect(client.clientFinal("r=a,s=c2FsdA==,i=1")).rejects.toThrow(/out of order/);
    client.clientFirst();
    expect(() => client.clientFirst()).toThrow(/out of order/);
    expect(() => client.verifyServerFinal(RFC.serverFinal)).toThrow(/out of order/);
  });

  it("refuses keys that are not 32 bytes and a nonce it could not send", () => {
    const short = Buffer.alloc(31);
    expect(() => new ScramClient({ credentials: { clientKey: short, serverKey: short } })).toThrow(RangeError);
    expect(() => new ScramClient({ credentials: { password: "pw" }, nonce: "a,b" })).toThrow(RangeError);
  });
});

describe("the server role", () => {
  it("accepts the right password and lets the client verify the server", async () => {
    const { result, scramClient } = await exchange(RFC.password, rfcVerifier());
    expect(result.ok).toBe(true);
    if (result.ok) scramClient.verifyServerFinal(result.serverFinalMessage);
  });

  it("rejects a wrong password", async () => {
    const { result } = await exchange("pencil2", rfcVerifier());
    expect(result).toEqual({ ok: false });
  });

  it("returns the client's ClientKey, with which pgmux can log in to a server holding the same verifier", async () => {
    const verifier = rfcVerifier();
    const { result } = await exchange(RFC.password, verifier);
    if (!result.ok) throw new Error("login failed");
    const passthrough = new ScramClient({
      credentials: { clientKey: result.clientKey, serverKey: verifier.serverKey },
    });
    const upstream = new ScramServer();
    const serverFirst = upstream.serverFirst(passthrough.clientFirst(), verifier);
    const upstreamResult = upstream.serverFinal(await passthrough.clientFinal(serverFirst));
    expect(upstreamResult.ok).toBe(true);
    if (upstreamResult.ok) passthrough.verifyServerFinal(upstreamResult.serverFinalMessage);
  });

  it("rejects a tampered proof", async () => {
    const { server, clientFinal } = await serverAwaitingFinal();
    const proofAt = clientFinal.indexOf(",p=") + 3;
    const proof = Buffer.from(clientFinal.slice(proofAt), "base64");
    proof[0] = (proof[0] ?? 0) ^ 1;
    expect(server.serverFinal(clientFinal.slice(0, proofAt) + proof.toString("base64"))).toEqual({ ok: false });
  });

  it("rejects a tampered nonce", async () => {
    const { server, clientFinal } = await serverAwaitingFinal();
    expect(server.serverFinal(clientFinal.replace(",r=", ",r=X"))).toEqual({ ok: false });
  });

  it("rejects tampered channel binding as a protocol violation", async () => {
    const { server, clientFinal } = await serverAwaitingFinal();
    expect(() => server.serverFinal(clientFinal.replace("c=biws", "c=eSws"))).toThrow(ProtocolError);
  });

  it("rejects a proof that is not 32 bytes as a protocol violation", async () => {
    const { server, clientFinal } = await serverAwaitingFinal();
    expect(() => server.serverFinal(clientFinal.replace(/p=.*$/, "p=c2FsdA=="))).toThrow(ProtocolError);
  });

  it.each([
    ["an escaped username and an extension", "n,,n=someone=2Celse,r=abc,x=ext"],
    ["the '*' username some drivers send", "n,,n=*,r=abc"],
    ["an unescaped '=' in the username, which PostgreSQL tolerates", "n,,n=a=b,r=abc"],
  ])("ignores %s in client-first-message", (_case, message) => {
    const server = new ScramServer({ nonce: "S" });
    expect(server.serverFirst(message, rfcVerifier())).toBe(`r=abcS,s=${RFC.salt.toString("base64")},i=4096`);
  });

  it.each([
    ["an unknown channel binding flag", "x,,n=,r=abc"],
    ["an authorization identity", "n,a=admin,n=,r=abc"],
    ["a mandatory extension", "n,,m=ext,n=,r=abc"],
    ["a missing nonce", "n,,n="],
    ["an empty nonce", "n,,n=,r="],
    ["a nonce with a space", "n,,n=,r=a b"],
    ["a nonce over 1024 characters", `n,,n=,r=${"a".repeat(1025)}`],
    ["attributes out of order", "n,,r=abc,n="],
    ["a NUL byte", "n,,n=,r=ab\0c"],
    ["a lone surrogate", "n,,n=\uD800,r=abc"],
    ["a message over the size limit", `n,,n=${"u".repeat(SCRAM_MAX_MESSAGE_BYTES)},r=abc`],
    ["nothing", ""],
  ])("refuses a client-first-message with %s", (_case, message) => {
    expect(() => new ScramServer().serverFirst(message, rfcVerifier())).toThrow(ProtocolError);
  });

  it("refuses a client-first-message that is not UTF-8", () => {
    const message = Buffer.concat([Buffer.from("n,,n="), Buffer.of(0xff), Buffer.from(",r=abc")]);
    expect(() => new ScramServer().serverFirst(message, rfcVerifier())).toThrow(ProtocolError);
  });

  it("refuses to run its steps out of order", () => {
    const server = new ScramServer();
    expect(() => server.serverFinal(RFC.clientFinal)).toThrow(/out of order/);
    server.serverFirst(RFC.clientFirst, rfcVerifier());
    expect(() => server.serverFirst(RFC.clientFirst, rfcVerifier())).toThrow(/out of order/);
  });
});

describe("channel binding", () => {
  const tls: ScramChannelBindingData = { type: "tls-server-end-point", data: Buffer.from("server-cert-hash") };
  const verifierFor = async (password: string) =>
    parseScramVerifier(await buildScramVerifier(password, { iterations: 1 })) as ScramVerifier;

  it("succeeds when both sides bind to the same TLS channel", async () => {
    const { result, clientFinal } = await exchange(
      "pw",
      await verifierFor("pw"),
      {
        channelBinding: { flag: "p", ...tls },
      },
      { channelBinding: tls },
    );
    expect(
      clientFinal.startsWith(
        `c=${Buffer.concat([Buffer.from("p=tls-server-end-point,,"), tls.data]).toString("base64")},`,
      ),
    ).toBe(true);
    expect(result.ok).toBe(true);
  });

  it("fails when the client saw a different certificate (a man in the middle)", async () => {
    const verifier = await verifierFor("pw");
    await expect(
      exchange(
        "pw",
        verifier,
        { channelBinding: { flag: "p", type: tls.type, data: Buffer.from("other") } },
        {
          channelBinding: tls,
        },
      ),
    ).rejects.toThrow(ProtocolError);
  });

  it("refuses a client that says 'y' to a server that offered SCRAM-SHA-256-PLUS", async () => {
    const verifier = await verifierFor("pw");
    await expect(exchange("pw", verifier, { channelBinding: { flag: "y" } }, { channelBinding: tls })).rejects.toThrow(
      /negotiation/,
    );
  });

  it("accepts 'y' from a client when the server did not offer SCRAM-SHA-256-PLUS", async () => {
    const { result, clientFinal } = await exchange("pw", await verifierFor("pw"), { channelBinding: { flag: "y" } });
    expect(clientFinal.startsWith("c=eSws,")).toBe(true);
    expect(result.ok).toBe(true);
  });

  it("refuses channel binding under the plain SCRAM-SHA-256 mechanism, and its absence under -PLUS", () => {
    const plain = new ScramServer({ channelBinding: tls });
    expect(() => plain.serverFirst("p=tls-server-end-point,,n=,r=abc", rfcVerifier())).toThrow(ProtocolError);
    const plus = new ScramServer({ mechanism: ScramMechanism.ScramSha256Plus, channelBinding: tls });
    expect(() => plus.serverFirst("n,,n=,r=abc", rfcVerifier())).toThrow(ProtocolError);
  });

  it("refuses a channel binding type other than tls-server-end-point", () => {
    const plus = new ScramServer({ mechanism: ScramMechanism.ScramSha256Plus, channelBinding: tls });
    expect(() => plus.serverFirst("p=tls-unique,,n=,r=abc", rfcVerifier())).toThrow(/unsupported/);
  });

  it("cannot be configured for SCRAM-SHA-256-PLUS without channel binding data", () => {
    expect(() => new ScramServer({ mechanism: ScramMechanism.ScramSha256Plus })).toThrow(/channel binding/);
  });
});

describe("unknown users", () => {
  it("go through the same exchange and fail at the proof, like a wrong password", async () => {
    const { result, serverFirst } = await exchange("any password", mockScramVerifier("ghost", "process secret"));
    expect(serverFirst).toMatch(/^r=[A-Za-z0-9+/]{48},s=[A-Za-z0-9+/]{22}==,i=4096$/);
    expect(result).toEqual({ ok: false });
  });

  it("see the same salt and iteration count on every attempt", () => {
    expect(mockScramVerifier("ghost", "secret")).toEqual(mockScramVerifier("ghost", "secret"));
  });

  it("see different salts for different users and different process secrets", () => {
    const ghost = mockScramVerifier("ghost", "secret");
    expect(ghost.salt.equals(mockScramVerifier("phantom", "secret").salt)).toBe(false);
    expect(ghost.salt.equals(mockScramVerifier("ghost", "other secret").salt)).toBe(false);
  });

  it("cannot be mocked without a secret", () => {
    expect(() => mockScramVerifier("ghost", "")).toThrow(RangeError);
  });
});

describe("properties", () => {
  const channelBindings = fc.constantFrom<"n" | "y" | "p">("n", "y", "p");

  it("client and server interoperate for any password, and fail when the passwords differ", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "binary", maxLength: 24 }),
        fc.option(fc.string({ unit: "binary", maxLength: 24 }), { nil: undefined }),
        fc.integer({ min: 1, max: 64 }),
        fc.uint8Array({ minLength: 1, maxLength: 32 }),
        channelBindings,
        async (password, otherPassword, iterations, salt, flag) => {
          const verifier = parseScramVerifier(await buildScramVerifier(password, { iterations, salt }));
          if (verifier === null) throw new Error("built verifier does not parse");
          const data = Buffer.from(salt).reverse();
          const tls: ScramChannelBindingData = { type: "tls-server-end-point", data };
          const binding: ScramChannelBinding = flag === "p" ? { flag, ...tls } : { flag };
          const attempt = otherPassword ?? password;
          const { result, scramClient } = await exchange(
            attempt,
            verifier,
            { channelBinding: binding },
            flag === "p" ? { channelBinding: tls } : {},
          );
          const samePassword = scramPassword(attempt).equals(scramPassword(password));
          expect(result.ok).toBe(samePassword);
          if (result.ok) scramClient.verifyServerFinal(result.serverFinalMessage);
        },
      ),
      { numRuns: 1000 },
    );
  });

  /** Random edits of a valid message, to reach deeper into the parser than random text does. */
  const mutationsOf = (valid: string) =>
    fc
      .array(
        fc.tuple(
          fc.nat(),
          fc.constantFrom("insert", "delete", "replace"),
          fc.string({ unit: "binary", minLength: 1, maxLength: 3 }),
        ),
        {
          minLength: 1,
          maxLength: 4,
        },
      )
      .map((edits) =>
        edits.reduce((text, [position, edit, inserted]) => {
          const at = text.length === 0 ? 0 : position % text.length;
          if (edit === "insert") return text.slice(0, at) + inserted + text.slice(at);
          if (edit === "delete") return text.slice(0, at) + text.slice(at + 1);
          return text.slice(0, at) + inserted + text.slice(at + 1);
        }, valid),
      );
  const garbage = (valid: string) =>
    fc.oneof(
      fc.string({ unit: "binary", maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }),
      mutationsOf(valid),
      mutationsOf(valid).map((text) => Buffer.from(text)),
    );

  function onlyProtocolErrors(run: () => unknown): void {
    try {
      run();
    } catch (error) {
      expect(error).toBeInstanceOf(ProtocolError);
    }
  }

  it("the server role meets any client-first-message with an answer or a ProtocolError", () => {
    fc.assert(
      fc.property(garbage(RFC.clientFirst), (message) => {
        onlyProtocolErrors(() => new ScramServer().serverFirst(message, rfcVerifier()));
      }),
      { numRuns: 3000 },
    );
  });

  it("the server role meets any client-final-message with a verdict or a ProtocolError", () => {
    const verifier = rfcVerifier();
    fc.assert(
      fc.property(garbage(RFC.clientFinal), (message) => {
        const server = new ScramServer({ nonce: RFC.serverNonce });
        server.serverFirst(RFC.clientFirst, verifier);
        onlyProtocolErrors(() => server.serverFinal(message));
      }),
      { numRuns: 3000 },
    );
  });

  it("the client role meets any server-first-message with an answer or a ProtocolError", async () => {
    const keys = await deriveScramKeys(RFC.password, RFC.salt, 4096);
    await fc.assert(
      fc.asyncProperty(garbage(RFC.serverFirst), async (message) => {
        const client = new ScramClient({ credentials: keys, nonce: RFC.clientNonce });
        client.clientFirst();
        try {
          await client.clientFinal(message);
        } catch (error) {
          expect(error).toBeInstanceOf(ProtocolError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("the client role meets any server-final-message with a ScramError or a ProtocolError", async () => {
    const keys = await deriveScramKeys(RFC.password, RFC.salt, 4096);
    await fc.assert(
      fc.asyncProperty(garbage(RFC.serverFinal), async (message) => {
        const client = new ScramClient({ credentials: keys, username: "user", nonce: RFC.clientNonce });
        client.clientFirst();
        await client.clientFinal(RFC.serverFirst);
        try {
          client.verifyServerFinal(message);
        } catch (error) {
          expect(error instanceof ProtocolError || error instanceof ScramError).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
