import net from "node:net";
import { encodeCancelRequest } from "@pgmux/protocol";

/**
 * Sends a CancelRequest with a server's own pid and key on a new connection to that server, and reports
 * when PostgreSQL has closed it (it signals the backend before closing), or after `timeoutMs` at most.
 */
export function forwardCancel(
  host: string,
  port: number,
  pid: number,
  key: Buffer,
  timeoutMs: number,
  done: (error: string | null) => void,
): void {
  const socket = host.startsWith("/") ? net.connect({ path: `${host}/.s.PGSQL.${port}` }) : net.connect({ host, port });
  let finished = false;
  const finish = (error: string | null): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.destroy();
    done(error);
  };
  const timer = setTimeout(() => finish("cancel request timed out"), timeoutMs);
  timer.unref();
  socket.on("connect", () => socket.write(encodeCancelRequest({ processId: pid, secretKey: key })));
  socket.on("error", (err) => finish(err.message));
  socket.on("close", () => finish(null));
  socket.resume();
}
