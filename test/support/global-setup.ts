import type { TestProject } from "vitest/node";
import { PostgresCluster } from "./postgres-cluster.js";

/**
 * vitest globalSetup for the integration project. It runs once per run in the vitest main process, before any
 * test file, and starts the shared cluster there. Each test file runs in a fresh worker process, so the
 * cluster cannot live in a worker; files reach it through testPostgres(), which reads the descriptor provided
 * here. The returned teardown destroys it after the last file; the exit handlers and the reaper cover a main
 * process that dies first.
 *
 * With PG_TEST_URL set nothing is started: testPostgres() uses that server directly.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  if (process.env.PG_TEST_URL) return undefined;
  const cluster = await PostgresCluster.start();
  project.provide("pgmuxPostgres", cluster.descriptor());
  return async () => {
    await cluster.destroy();
  };
}
