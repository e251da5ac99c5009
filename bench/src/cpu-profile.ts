/**
 * Reading a V8 .cpuprofile (what `node --cpu-prof` writes): self time per function, from the samples and
 * their time deltas — each sample's node is charged the time until the next sample, as DevTools does —
 * added up over every node with the same function and position. Positions in built files are mapped back
 * to the TypeScript source through the .js.map beside them when there is one.
 */
import { existsSync, readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  /** 0-based. */
  readonly lineNumber: number;
  /** 0-based. */
  readonly columnNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  /** Microseconds. */
  readonly timeDeltas: readonly number[];
}

export interface SelfTime {
  readonly functionName: string;
  /** file:line (1-based), relative to `root`, in the TypeScript source when a source map says so. */
  readonly location: string;
  readonly selfMs: number;
  /** Of the busy time: everything but (idle). */
  readonly percent: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly idleMs: number;
  readonly busyMs: number;
  readonly top: readonly SelfTime[];
  /** Self time by file (package sources, node internals, native), largest first. */
  readonly byFile: readonly { readonly file: string; readonly selfMs: number; readonly percent: number }[];
}

export function summarizeProfile(profile: CpuProfile, root: string, limit = 20): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const selfUs = new Map<number, number>();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const next = i + 1 < timeDeltas.length ? timeDeltas[i + 1]! : 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, next));
  }

  const maps = new SourceMaps(root);
  const byFunction = new Map<string, { functionName: string; location: string; us: number }>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) continue;
    totalUs += us;
    if (frame.functionName === "(idle)") idleUs += us;
    const location = maps.locate(frame);
    const functionName = frame.functionName || "(anonymous)";
    const key = `${functionName}@${location}`;
    const entry = byFunction.get(key) ?? { functionName, location, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
  }
  const busyUs = totalUs - idleUs;
  const top = [...byFunction.values()]
    .filter((e) => e.functionName !== "(idle)")
    .sort((a, b) => b.us - a.us)
    .slice(0, limit)
    .map((e) => ({
      functionName: e.functionName,
      location: e.location,
      selfMs: e.us / 1000,
      percent: busyUs > 0 ? (e.us / busyUs) * 100 : Number.NaN,
    }));
  const files = new Map<string, number>();
  for (const e of byFunction.values()) {
    if (e.functionName === "(idle)") continue;
    const file = e.location.replace(/:\d+$/, "");
    files.set(file, (files.get(file) ?? 0) + e.us);
  }
  const byFile = [...files.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([file, us]) => ({ file, selfMs: us / 1000, percent: busyUs > 0 ? (us / busyUs) * 100 : Number.NaN }));
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, busyMs: busyUs / 1000, top, byFile };
}

export function readProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
}

class SourceMaps {
  readonly #maps = new Map<string, SourceMap | null>();

  constructor(private readonly root: string) {}

  locate(frame: CallFrame): string {
    if (frame.url === "") return "(native)";
    if (!frame.url.startsWith("file://")) return `${frame.url}:${frame.lineNumber + 1}`;
    const file = fileURLToPath(frame.url);
    const map = this.#map(file);
    const entry = map?.findEntry(frame.lineNumber, frame.columnNumber);
    if (entry && "originalSource" in entry && entry.originalSource) {
      const source = entry.originalSource.startsWith("file://")
        ? fileURLToPath(entry.originalSource)
        : entry.originalSource;
      return `${this.#shorten(source)}:${entry.originalLine + 1}`;
    }
    return `${this.#shorten(file)}:${frame.lineNumber + 1}`;
  }

  #shorten(file: string): string {
    const rel = relative(this.root, file);
    return rel.startsWith("..") ? file : rel;
  }

  #map(file: string): SourceMap | null {
    let map = this.#maps.get(file);
    if (map !== undefined) return map;
    map = null;
    const mapFile = `${file}.map`;
    if (existsSync(mapFile)) {
      try {
        const payload = JSON.parse(readFileSync(mapFile, "utf8")) as { sources: string[]; sourceRoot?: string };
        // Make the sources absolute (they are relative to the map) so they shorten to repository paths.
        const base = new URL(".", `file://${mapFile}`);
        payload.sources = payload.sources.map((s) => new URL(`${payload.sourceRoot ?? ""}${s}`, base).href);
        delete payload.sourceRoot;
        map = new SourceMap(payload as ConstructorParameters<typeof SourceMap>[0]);
      } catch {
        map = null;
      }
    }
    this.#maps.set(file, map);
    return map;
  }
}
