/**
 * Every error the admin HTTP API answers with, in one registry: a stable code, its HTTP status, and the
 * message given when the handler has nothing more specific. Bodies are `{"error":{"code","message"}}`.
 * docs/admin.md lists the same codes; a test keeps the two in step.
 */
import type { FastifyReply } from "fastify";

export const AdminApiErrors = {
  bad_request: { status: 400, message: "the request is not valid" },
  unauthorized: {
    status: 401,
    message: "missing or wrong bearer token: send Authorization: Bearer <admin_api_token>",
  },
  control_disabled: {
    status: 403,
    message: "control actions are off: set admin_api_token to enable them",
  },
  reveal_needs_token: {
    status: 403,
    message: "reveal=true shows parameter and row values: it needs admin_api_token set and sent as a bearer token",
  },
  not_found: { status: 404, message: "no such endpoint" },
  client_not_found: { status: 404, message: "no client has that id" },
  conflict: { status: 409, message: "the action does not apply in the current state" },
  too_many_traces: { status: 429, message: "too many live traces are open; close one first" },
  internal: { status: 500, message: "internal error in the admin server" },
  not_implemented: { status: 501, message: "this action is not available in this pgmux" },
} as const;

export type AdminApiErrorCode = keyof typeof AdminApiErrors;

export interface AdminApiErrorBody {
  readonly error: { readonly code: AdminApiErrorCode; readonly message: string };
}

export function errorBody(code: AdminApiErrorCode, message?: string): AdminApiErrorBody {
  return { error: { code, message: message ?? AdminApiErrors[code].message } };
}

export function sendError(reply: FastifyReply, code: AdminApiErrorCode, message?: string): FastifyReply {
  return reply.code(AdminApiErrors[code].status).type("application/json").send(errorBody(code, message));
}
