import { defineConfig } from "vitest/config";

// Workspace packages resolve to their TypeScript sources under test (the "pgmux-source" export condition),
// so a test never runs against a stale dist/.
const resolve = { conditions: ["pgmux-source"] };

export default defineConfig({
  resolve,
  ssr: { resolve: { conditions: ["pgmux-source"], externalConditions: ["pgmux-source"] } },
  test: {
    projects: [
      {
        resolve,
        ssr: { resolve: { conditions: ["pgmux-source"] } },
        test: {
          name: "unit",
          include: ["packages/*/src/**/*.test.ts"],
        },
      },
      {
        resolve,
        ssr: { resolve: { conditions: ["pgmux-source"] } },
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          // Starts the run's shared PostgreSQL once, in the main process; files reach it via testPostgres().
          globalSetup: ["test/support/global-setup.ts"],
          // One PostgreSQL per run, shared: files run one after another, never in parallel.
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
