import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AdminServer } from "@pgmux/admin";
import { DEFAULT_SETTINGS, envOverrides, KNOWN_KEYS, loadPgmuxYaml, type PgmuxConfig, Pooler } from "@pgmux/core";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DEPLOY = join(ROOT, "deploy");

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are checked field by field below.
type K8s = any;

function documents(file: string): K8s[] {
  return parseAllDocuments(readFileSync(file, "utf8")).map((d) => {
    expect(d.errors, `${file}: ${d.errors.map((e) => e.message).join("; ")}`).toEqual([]);
    return d.toJS();
  });
}

/** A pgmux.yaml embedded in a manifest, through the real loader: unknown keys and bad values fail here. */
function loadEmbeddedConfig(text: string, where: string, env: Record<string, string> = {}): PgmuxConfig {
  const file = `/deploy-check/${where.replace(/[^a-z0-9.]+/gi, "_")}/pgmux.yaml`;
  const read = (p: string) => {
    if (p === file) return text;
    if (p.endsWith("userlist.txt")) return '"app" "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"\n';
    throw Object.assign(new Error(`ENOENT: ${p}`), { code: "ENOENT" });
  };
  return loadPgmuxYaml(file, read, envOverrides(env, read)).config;
}

/** Environment variables a manifest sets must name real settings (PGMUX_<KEY>[_FILE]) or be DATABASE_URL. */
function checkEnvNames(env: { name: string }[] | undefined, where: string): void {
  for (const { name } of env ?? []) {
    if (name === "DATABASE_URL" || name === "DATABASE_URL_FILE" || !name.startsWith("PGMUX_")) continue;
    const key = name
      .slice("PGMUX_".length)
      .toLowerCase()
      .replace(/_file$/, "");
    const known = KNOWN_KEYS.pgmux.includes(key) || KNOWN_KEYS.pgmux.includes(`${key}_file`) || key === "userlist";
    expect(known, `${where}: ${name} names no pgmux setting`).toBe(true);
  }
}

describe("deploy/ is consistent with the code", () => {
  let admin: AdminServer;
  let metricNames: Set<string>;
  let labelsOf: Map<string, string[]>;

  beforeAll(() => {
    const pooler = new Pooler({ settings: DEFAULT_SETTINGS, log: pino({ level: "silent" }) });
    admin = new AdminServer({ pooler, port: 0, processMetrics: false });
    metricNames = new Set();
    labelsOf = new Map();
    for (const m of admin.registry.getMetricsAsArray() as unknown as { name: string; labelNames?: string[] }[]) {
      metricNames.add(m.name);
      labelsOf.set(m.name, m.labelNames ?? []);
    }
  });

  afterAll(async () => {
    await admin.app.close();
  });

  async function probePathExists(path: string): Promise<boolean> {
    const r = await admin.app.inject({ method: "GET", url: path });
    return r.statusCode !== 404;
  }

  /** Checks one pod template: probes on real paths and declared ports, config keys, ports matching the config. */
  async function checkPod(spec: K8s, configs: Map<string, string>, where: string): Promise<void> {
    const containers = [...(spec.initContainers ?? []), ...spec.containers].filter((c: K8s) =>
      String(c.image).includes("pgmux"),
    );
    expect(containers.length, `${where}: a pgmux container`).toBe(1);
    const c = containers[0];
    expect(c.lifecycle?.preStop, `${where}: drain needs no preStop hook`).toBeUndefined();
    const ports = new Map<string, number>((c.ports ?? []).map((p: K8s) => [p.name, p.containerPort]));
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      const get = c[probe]?.httpGet;
      expect(get, `${where}: ${probe}`).toBeDefined();
      expect(await probePathExists(get.path), `${where}: ${probe} path ${get.path} exists in @pgmux/admin`).toBe(true);
      expect(ports.has(get.port), `${where}: ${probe} port ${get.port} is declared`).toBe(true);
    }
    checkEnvNames(c.env, where);
    const mount = (c.volumeMounts ?? []).find(
      (m: K8s) => m.mountPath === "/etc/pgmux" || m.mountPath.startsWith("/etc/pgmux/config"),
    );
    const volume = spec.volumes.find((v: K8s) => v.name === mount?.name);
    const text = configs.get(volume?.configMap?.name);
    expect(text, `${where}: its ConfigMap holds a pgmux.yaml`).toBeDefined();
    // The container's environment counts (DATABASE_URL from a Secret gets a stand-in value).
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = String(e.value);
      else if (e.name === "DATABASE_URL") env[e.name] = "postgres://app:stand-in@db.internal:5432/app";
    }
    const config = loadEmbeddedConfig(text!, where, env);
    expect(String(c.args?.[0]).startsWith(mount.mountPath), `${where}: args name the mounted file`).toBe(true);
    expect(ports.get("admin")).toBe(config.pgmux.admin_listen_port);
    if (ports.has("postgres")) expect(ports.get("postgres")).toBe(config.pgmux.listen_port);
    const grace = spec.terminationGracePeriodSeconds ?? 30;
    expect(
      config.pgmux.shutdown_delay + config.pgmux.shutdown_timeout,
      `${where}: shutdown_delay + shutdown_timeout fit in terminationGracePeriodSeconds`,
    ).toBeLessThan(grace);
    expect(c.securityContext?.runAsNonRoot ?? spec.securityContext?.runAsNonRoot).toBe(true);
  }

  function configMaps(docs: K8s[]): Map<string, string> {
    const out = new Map<string, string>();
    for (const d of docs.filter((x) => x.kind === "ConfigMap")) out.set(d.metadata.name, d.data["pgmux.yaml"]);
    return out;
  }

  function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
    return Object.entries(selector).every(([k, v]) => labels[k] === v);
  }

  test("the native sidecar: an initContainer with restartPolicy Always and a startupProbe, no preStop", async () => {
    const docs = documents(join(DEPLOY, "kubernetes/sidecar.yaml"));
    const deployment = docs.find((d) => d.kind === "Deployment");
    const spec = deployment.spec.template.spec;
    const sidecar = spec.initContainers.find((c: K8s) => c.name === "pgmux");
    expect(sidecar.restartPolicy).toBe("Always");
    expect(sidecar.startupProbe.httpGet.path).toBe("/startupz");
    await checkPod(spec, configMaps(docs), "sidecar.yaml");
  });

  test("the standalone Deployment, Service, PodDisruptionBudget and ServiceMonitor fit together", async () => {
    const docs = documents(join(DEPLOY, "kubernetes/standalone.yaml"));
    const kinds = docs.map((d) => d.kind).sort();
    expect(kinds).toEqual(["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceMonitor"]);
    const deployment = docs.find((d) => d.kind === "Deployment");
    const pod = deployment.spec.template;
    await checkPod(pod.spec, configMaps(docs), "standalone.yaml");
    const portNames = new Set(pod.spec.containers[0].ports.map((p: K8s) => p.name));
    const service = docs.find((d) => d.kind === "Service");
    expect(matches(service.spec.selector, pod.metadata.labels)).toBe(true);
    for (const p of service.spec.ports)
      expect(portNames.has(p.targetPort), `Service targetPort ${p.targetPort}`).toBe(true);
    const pdb = docs.find((d) => d.kind === "PodDisruptionBudget");
    expect(matches(pdb.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
    const monitor = docs.find((d) => d.kind === "ServiceMonitor");
    expect(matches(monitor.spec.selector.matchLabels, service.metadata.labels)).toBe(true);
    const servicePorts = new Set(service.spec.ports.map((p: K8s) => p.name));
    for (const e of monitor.spec.endpoints) {
      expect(servicePorts.has(e.port)).toBe(true);
      expect(await probePathExists(e.path)).toBe(true);
      expect(e.path).toBe("/metrics");
    }
  });

  test("the Helm chart: values hold a valid config, templates use only values that exist, checksum annotation", async () => {
    const chart = join(DEPLOY, "helm/pgmux");
    const values = parse(readFileSync(join(chart, "values.yaml"), "utf8"));
    const config = loadEmbeddedConfig(
      stringify({ ...values.config, pgmux: { ...values.config.pgmux, auth_file: "/etc/pgmux/users/userlist.txt" } }),
      "helm values",
    );
    expect(values.probes.startup.path).toBe("/startupz");
    for (const p of Object.values(values.probes) as { path: string }[])
      expect(await probePathExists(p.path)).toBe(true);
    expect(config.pgmux.shutdown_delay + config.pgmux.shutdown_timeout).toBeLessThan(
      values.terminationGracePeriodSeconds,
    );
    checkEnvNames(values.extraEnv, "values.yaml extraEnv");

    const templates = readdirSync(join(chart, "templates")).map((f) =>
      readFileSync(join(chart, "templates", f), "utf8"),
    );
    const all = templates.join("\n");
    for (const m of all.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
      let v: unknown = values;
      for (const part of m[1]!.slice(1).split(".")) v = (v as Record<string, unknown> | undefined)?.[part];
      expect(v, `values.yaml has ${m[0]}`).not.toBeUndefined();
    }
    expect(all).toContain("checksum/config:");
    expect(all).toContain("existingSecret");
    expect(all).toMatch(/containerPort: \{\{ \.Values\.config\.pgmux\.listen_port \}\}/);
    expect(all).toMatch(/containerPort: \{\{ \.Values\.config\.pgmux\.admin_listen_port \}\}/);

    // With helm on the machine, the chart is rendered and its Deployment checked like the plain manifests.
    const helm = ["/usr/local/bin/helm", "/usr/bin/helm"].find((p) => existsSync(p));
    if (helm !== undefined) {
      const rendered = execFileSync(helm, ["template", "t", chart, "--set", "users.existingSecret=users"], {
        encoding: "utf8",
      });
      const docs = parseAllDocuments(rendered).map((d) => d.toJS());
      const deployment = docs.find((d) => d?.kind === "Deployment");
      await checkPod(deployment.spec.template.spec, configMaps(docs.filter(Boolean)), "helm template");
    }
  });

  test("the Grafana dashboard queries only metrics (and labels) that /metrics exports", () => {
    const dashboard = JSON.parse(readFileSync(join(DEPLOY, "grafana/pgmux-dashboard.json"), "utf8"));
    const exprs: string[] = dashboard.panels.flatMap((p: K8s) => p.targets.map((t: K8s) => t.expr));
    expect(exprs.length).toBeGreaterThan(10);
    for (const expr of exprs) {
      for (const m of expr.matchAll(/\b(pgmux_[a-z_]+)/g)) {
        const name = m[1]!.replace(/_(bucket|sum|count)$/, "");
        expect(metricNames.has(name), `${name} (in ${expr}) is a pgmux metric`).toBe(true);
        const labels = new Set([...(labelsOf.get(name) ?? []), "le", "instance", "job"]);
        const by = /by \(([^)]*)\)/.exec(expr)?.[1];
        for (const label of by?.split(",").map((s) => s.trim()) ?? []) {
          expect(labels.has(label), `${name} has the label ${label} (in ${expr})`).toBe(true);
        }
      }
    }
  });

  test("the Dockerfile: multi-stage, Node LTS slim, non-root, pgmux entrypoint, /livez healthcheck, real settings", () => {
    const text = readFileSync(join(DEPLOY, "Dockerfile"), "utf8");
    const froms = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toMatch(/^node:\$\{NODE_VERSION\}-\w+-slim$/);
    const nodeVersion = /ARG NODE_VERSION=(\d+)\./.exec(text)?.[1];
    expect(Number(nodeVersion) % 2, "an even (LTS) Node major").toBe(0);
    const user = /^USER (\S+)/m.exec(text)?.[1];
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(0|root)(:|$)/);
    expect(text).toMatch(/^ENTRYPOINT \["pgmux"\]/m);
    expect(text).toMatch(/^HEALTHCHECK[\s\S]*\/livez/m);
    const env = [...text.matchAll(/\b(PGMUX_[A-Z_]+)=/g)].map((m) => ({ name: m[1]! }));
    checkEnvNames(env, "Dockerfile");
    const exposed = /^EXPOSE (.+)$/m.exec(text)?.[1]?.split(/\s+/).map(Number);
    expect(exposed).toEqual([
      Number(/PGMUX_LISTEN_PORT=(\d+)/.exec(text)?.[1]),
      Number(/PGMUX_ADMIN_LISTEN_PORT=(\d+)/.exec(text)?.[1]),
    ]);
  });

  test("the example configurations load, and deploy/README.md describes every file", () => {
    loadEmbeddedConfig(readFileSync(join(DEPLOY, "examples/pgmux.yaml"), "utf8"), "examples");
    const readme = readFileSync(join(DEPLOY, "README.md"), "utf8");
    const files = (dir: string): string[] =>
      readdirSync(join(DEPLOY, dir), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
      );
    for (const f of files(".").filter((f) => f !== "README.md" && !f.includes("templates/"))) {
      expect(readme, `deploy/README.md mentions ${f}`).toContain(f);
    }
    const unit = readFileSync(join(DEPLOY, "systemd/pgmux.service"), "utf8");
    expect(unit).toMatch(/^ExecStart=.*dist\/main\.js/m);
    expect(unit).toMatch(/^ExecReload=.*-HUP/m);
  });
});
