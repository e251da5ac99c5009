import { defineConfig } from "vitest/config";
import type { Reporter } from "vitest/node";

/** Ends the run with one plain "N passed, N failed, N skipped" line, which CI reads as the test count. */
const countLine: Reporter = {
  onTestRunEnd(testModules) {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const m of testModules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === "passed") counts.passed++;
        else if (state === "failed") counts.failed++;
        else counts.skipped++;
      }
    }
    console.log(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  },
};

// Workspace packages resolve to their TypeScript sources under test (the "pgmux-source" export condition),
// so a test never runs against a stale dist/.
const resolve = { conditions: ["pgmux-source"] };

export default defineConfig({
  resolve,
  ssr: { resolve: { conditions: ["pgmux-source"], externalConditions: ["pgmux-source"] } },
  test: {
    reporters: ["default", countLine],
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
