import type { PoolerErrorCode } from "./pooler-errors.js";

/**
 * Process-wide counters that are not per pool: errors by SQLSTATE (the server's and pgmux's own) and
 * refused connections by reason. Plain maps of numbers, read by the admin side at scrape time.
 */
export class PoolerStats {
  readonly serverErrorsBySqlState = new Map<string, number>();
  readonly poolerErrors = new Map<PoolerErrorCode, number>();
  readonly refusedConnections = new Map<string, number>();
  clientsAccepted = 0;
  serversOpened = 0;

  /** Counts a server ErrorResponse by its SQLSTATE, read straight from the body's 'C' field. */
  countServerError(body: Buffer, start: number, end: number): void {
    let pos = start;
    let code = "unknown";
    while (pos < end && body[pos] !== 0) {
      const field = body[pos]!;
      const nul = body.indexOf(0, pos + 1);
      if (nul < 0 || nul >= end) break;
      if (field === 0x43 /* C */) {
        code = body.toString("latin1", pos + 1, nul);
        break;
      }
      pos = nul + 1;
    }
    this.serverErrorsBySqlState.set(code, (this.serverErrorsBySqlState.get(code) ?? 0) + 1);
  }

  countPoolerError(code: PoolerErrorCode): void {
    this.poolerErrors.set(code, (this.poolerErrors.get(code) ?? 0) + 1);
  }

  countRefused(reason: string): void {
    this.refusedConnections.set(reason, (this.refusedConnections.get(reason) ?? 0) + 1);
  }
}
