/**
 * Source addresses for client connections. All of 127.0.0.0/8 is loopback on Linux, and each source address
 * has its own range of ephemeral ports (about 28,000 by default), so 50,000 connections to one pooler port
 * need several; handing out a fresh address for each batch also keeps earlier runs' TIME_WAIT sockets out
 * of the way. Addresses are never handed out twice in a run.
 */
export const CONNECTIONS_PER_ADDRESS = 20_000;

export class LocalAddresses {
  #next = 0;

  /** The next unused address, 127.0.1.1 onwards (skipping .0 and .255 host bytes). */
  take(): string {
    for (;;) {
      const n = 256 + this.#next++;
      const b2 = (n >> 16) & 0xff;
      const b3 = (n >> 8) & 0xff;
      const b4 = n & 0xff;
      if (b4 === 0 || b4 === 255) continue;
      return `127.${b2}.${b3}.${b4}`;
    }
  }

  /** Enough fresh addresses for `connections`. */
  takeFor(connections: number, perAddress = CONNECTIONS_PER_ADDRESS): string[] {
    return Array.from({ length: Math.max(1, Math.ceil(connections / perAddress)) }, () => this.take());
  }
}
