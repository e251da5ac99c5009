/**
 * Quick start's first command (scripts/dev.sh): a throwaway PostgreSQL cluster from the local binaries, and
 * pgmux in front of it, started from a generated pgbouncer.ini and userlist.txt exactly as a user would
 * start it. Prints the psql connection string; Ctrl-C stops both and removes the cluster.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PostgresCluster } from "../support/postgres-cluster.js";

const PREFERRED_PORT = 6432;

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen({ host: "127.0.0.1", port }, () => probe.close(() => resolve(true)));
  });
}

async function pickPort(): Promise<number> {
  if (await portIsFree(PREFERRED_PORT)) return PREFERRED_PORT;
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen({ host: "127.0.0.1", port: 0 }, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const cluster = await PostgresCluster.start();
const dir = mkdtempSync(join(tmpdir(), "pgmux-dev-"));
const port = await pickPort();
writeFileSync(join(dir, "userlist.txt"), `"${cluster.user}" "${cluster.password.replace(/"/g, '""')}"\n`, {
  mode: 0o600,
});
writeFileSync(
  join(dir, "pgbouncer.ini"),
  `; written by scripts/dev.sh: pgmux in front of a throwaway PostgreSQL
[databases]
* = host=${cluster.host} port=${cluster.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir = ${dir}
auth_type = scram-sha-256
auth_file = userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
; the admin console (psql -d pgbouncer) and the admin server (metrics, probes, dashboard at /)
admin_users = ${cluster.user}
admin_listen_port = 0
`,
);

const main = fileURLToPath(new URL("../../../packages/cli/dist/main.js", import.meta.url));
const child = spawn(process.execPath, [main, "--config", join(dir, "pgbouncer.ini")], { stdio: "inherit" });
const url = `postgres://${cluster.user}:${encodeURIComponent(cluster.password)}@127.0.0.1:${port}/${cluster.database}`;
console.log(`\npgmux dev: PostgreSQL ${cluster.url.replace(/:[^:@/]*@/, ":***@")} (data in ${cluster.dataDir})`);
console.log(`pgmux dev: config ${join(dir, "pgbouncer.ini")}`);
console.log(`pgmux dev: connect with\n\n  psql "${url}"\n\npgmux dev: Ctrl-C stops pgmux and PostgreSQL.\n`);

let stopping = false;
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (child.exitCode === null) {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
  await cluster.destroy();
  rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));
child.on("exit", (code) => void shutdown(code ?? 1));
