/**
 * Process-wide list of synchronous clean-ups run when the process ends: normal exit, an uncaught error (Node
 * emits 'exit' for those too), or SIGINT/SIGTERM/SIGHUP. SIGKILL cannot be caught; ClusterReaper covers it.
 *
 * The registry hangs off globalThis so the handlers are installed once per process even if this module is
 * evaluated twice (vitest may load a source and a built copy side by side).
 */
type Cleanup = () => void;

interface Registry {
  readonly cleanups: Set<Cleanup>;
}

const REGISTRY_KEY = Symbol.for("pgmux.test.cleanupOnExit");
const SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** Registers `cleanup` to run once at process end; returns a function that unregisters it. */
export function cleanupOnExit(cleanup: Cleanup): () => void {
  const registry = installOnce();
  registry.cleanups.add(cleanup);
  return () => {
    registry.cleanups.delete(cleanup);
  };
}

function installOnce(): Registry {
  const holder = globalThis as { [REGISTRY_KEY]?: Registry };
  const existing = holder[REGISTRY_KEY];
  if (existing) return existing;

  const registry: Registry = { cleanups: new Set() };
  holder[REGISTRY_KEY] = registry;

  const runAll = () => {
    for (const cleanup of [...registry.cleanups]) {
      registry.cleanups.delete(cleanup);
      try {
        cleanup();
      } catch (error) {
        // An exit path has no caller to throw to; say it on stderr so a leaked server can be traced.
        console.error("pgmux test cleanup failed:", error);
      }
    }
  };
  process.on("exit", runAll);
  for (const signal of SIGNALS) {
    const onSignal = () => {
      runAll();
      // Listening for a signal cancels Node's default "terminate". When nobody else handles it, re-raise it
      // so the process still dies and its exit status still says which signal ended it.
      if (process.listenerCount(signal) === 1) {
        process.off(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
  return registry;
}
