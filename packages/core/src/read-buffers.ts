/**
 * Server sockets read into a buffer of their own, reused from read to read, instead of a fresh allocation
 * per read (Node's `onread` option). Reuse is only safe while nothing refers to the buffer once the read is
 * handled: a client socket that could not send the bytes at once (or a trace recording them) keeps a
 * reference, and then the server takes a new buffer for its next read. Everything that handles a server's
 * bytes runs synchronously inside the read callback, so one flag, set by whoever keeps a reference and read
 * by the server right after, is enough.
 */
export const readBuffer = {
  /** Set during a server read when some of its bytes were kept beyond the read callback. */
  retained: false,
};

/** Size of each server's read buffer: libuv's own read size, so a read takes what one would. */
export const READ_BUFFER_BYTES = 64 * 1024;
