export * from "./client-session.js";
export * from "./pool.js";
export * from "./pooler.js";
export * from "./pooler-errors.js";
export * from "./pooler-settings.js";
export * from "./pooler-stats.js";
export * from "./server-connection.js";
