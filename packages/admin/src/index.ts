/**
 * @pgmux/admin: the HTTP admin server (Prometheus metrics, probes, JSON API, control actions, live trace,
 * dashboard). Start one beside the pooler:
 *
 *   const admin = new AdminServer({ pooler, log, port: 9127, apiToken });
 *   log.info({ url: await admin.start() }, "pgmux admin listening");
 */

export type { PoolerControl, ShutdownMode } from "@pgmux/core";
export { type AdminApiErrorBody, type AdminApiErrorCode, AdminApiErrors } from "./admin-errors.js";
export {
  AdminServer,
  type AdminServerOptions,
  DEFAULT_ADMIN_HOST,
  DEFAULT_ADMIN_PORT,
  type Readiness,
} from "./admin-server.js";
