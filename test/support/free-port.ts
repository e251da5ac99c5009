import { createServer } from "node:net";

/**
 * A TCP port on `host` that was free a moment ago: the kernel picks it when we bind port 0, and we release it
 * at once. Another process may take it before the caller binds it, so callers that can retry should.
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error(`could not read the port bound on ${host}`));
        return;
      }
      server.close((error) => (error ? reject(error) : resolve(address.port)));
    });
  });
}
