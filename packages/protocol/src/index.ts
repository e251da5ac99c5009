export * from "./buffer-reader.js";
export * from "./buffer-writer.js";
export * from "./constants.js";
export * from "./frame-reader.js";
export * from "./protocol-error.js";
