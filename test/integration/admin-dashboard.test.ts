/**
 * The dashboard page in headless Chromium (Debian's `chromium`, driven by playwright-core): it shows the
 * pools of a running pgmux and keeps updating while load runs. A screenshot is kept under test/artifacts/.
 * Skipped, loudly, when /usr/bin/chromium is not installed (scripts/system-deps.sh installs it for CI).
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { AdminServer } from "@pgmux/admin";
import pg from "pg";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type TestPostgres, testPostgres, waitUntil } from "../support/index.js";
import { type PoolerInstance, startPooler } from "../support/pooler-instance.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(import.meta.dirname, "..", "artifacts");
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    `\n*** ${CHROMIUM} is not installed: SKIPPING the dashboard tests (apt-get install chromium; scripts/system-deps.sh does it for CI) ***\n`,
  );
}

async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** Clients running short transactions until stopped. */
function runLoad(instance: PoolerInstance, clients: number) {
  let running = true;
  const done = (async () => {
    const conns = await Promise.all(
      Array.from({ length: clients }, () => connect({ ...instance.params(), application_name: "dashboard-load" })),
    );
    await Promise.all(
      conns.map(async (c) => {
        while (running) {
          await c.query("BEGIN");
          await c.query("SELECT pg_sleep(0.002)");
          await c.query("COMMIT");
        }
        await c.end();
      }),
    );
  })();
  return {
    stop: async () => {
      running = false;
      await done;
    },
  };
}

async function cellNumber(page: Page, selector: string): Promise<number> {
  const text = await page.locator(selector).first().textContent();
  return Number(text ?? Number.NaN);
}

describe.skipIf(!haveChromium)("the dashboard page", () => {
  let server: TestPostgres;
  let instance: PoolerInstance;
  let admin: AdminServer;
  let browser: Browser;
  let page: Page;
  let poolName: string;

  beforeAll(async () => {
    server = await testPostgres();
    instance = await startPooler({ postgres: server, settings: { defaultPoolSize: 3 } });
    admin = new AdminServer({ pooler: instance.pooler, port: 0, processMetrics: false });
    await admin.start();
    // A pool to show before the page opens.
    const first = await connect(instance.params());
    await first.query("SELECT 1");
    await first.end();
    poolName = `${server.database}/${server.user}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await admin?.close();
    await instance?.stop();
  });

  test("shows the pools of a running pgmux and updates while load runs", async () => {
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(admin.url);
    const row = `#pools tbody tr[data-pool="${poolName}"]`;
    await page.waitForSelector(row, { timeout: 15_000 });
    expect(await page.locator(`${row} td`).nth(0).textContent()).toBe(server.database);
    expect(await page.locator(`${row} td`).nth(1).textContent()).toBe(server.user);
    const before = await cellNumber(page, `${row} td.transactions`);
    expect(before).toBeGreaterThanOrEqual(1);

    const load = runLoad(instance, 6);
    try {
      // The page re-reads the API every second: the count it shows climbs while the load runs.
      await waitUntil(
        "the dashboard's transaction count to climb",
        async () => (await cellNumber(page, `${row} td.transactions`)) >= before + 50,
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      await waitUntil(
        "the load's clients in the clients table",
        async () => (await page.locator("#clients tbody tr").count()) >= 6,
        { timeoutMs: 10_000, intervalMs: 200 },
      );
      const refreshes = Number(await page.locator("body").getAttribute("data-refreshes"));
      await waitUntil(
        "another refresh",
        async () => Number(await page.locator("body").getAttribute("data-refreshes")) > refreshes,
        { timeoutMs: 5000, intervalMs: 100 },
      );
      // The charts have lines for the pool.
      expect(await page.locator("#charts svg polyline").count()).toBeGreaterThanOrEqual(4);
      expect(Number(await page.locator("#server-count").textContent())).toBeGreaterThan(0);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "admin-dashboard.png"), fullPage: true });
    } finally {
      await load.stop();
    }
    expect(errors).toEqual([]);
    expect(await page.locator("#ready").textContent()).toBe("ready");
  }, 60_000);

  test("a client pinned by LISTEN shows its pin in the clients table, and its pool one pinned client", async () => {
    const c = await connect({ ...instance.params(), application_name: "dashboard-pins" });
    try {
      await c.query("LISTEN dashboard_pins");
      const id = [...instance.pooler.clients].find((x) => x.params.get("application_name") === "dashboard-pins")?.id;
      expect(id).toBeDefined();
      const pins = `#clients tbody tr[data-client="${id}"] td.pins`;
      await waitUntil("the pin on the page", async () => (await page.locator(pins).textContent()) === "listen 1", {
        timeoutMs: 10_000,
        intervalMs: 100,
      });
      expect(await cellNumber(page, `#pools tbody tr[data-pool="${poolName}"] td.pinned`)).toBe(1);
      const byReason = await page.locator("#pins tbody tr").allTextContents();
      expect(byReason).toContain("listen1");
      await page.screenshot({ path: join(ARTIFACTS, "admin-dashboard-pins.png"), fullPage: true });
    } finally {
      await c.end();
    }
  }, 60_000);

  test("the trace viewer shows a traced client's messages (needs the engine's trace hooks)", async () => {
    expect(admin.tracer(), "Pooler.tracer is not wired into the engine yet").not.toBeNull();
    await page.fill('#trace-form input[name="application_name"]', "dashboard-trace");
    await page.click("#trace-start");
    await waitUntil("the trace subscription to open", () => admin.tracer()!.subscriptionCount > 0, {
      timeoutMs: 5000,
    });
    const c = await connect({ ...instance.params(), application_name: "dashboard-trace" });
    try {
      await c.query("SELECT 'from the dashboard' AS note");
      await waitUntil(
        "the traced query on the page",
        async () => ((await page.locator("#trace").textContent()) ?? "").includes("[B2F] CommandComplete {SELECT 1}"),
        { timeoutMs: 10_000, intervalMs: 100 },
      );
      const text = (await page.locator("#trace").textContent()) ?? "";
      expect(text).toContain("[F2B] Query {SELECT 'from the dashboard' AS note}");
      expect(text).toContain("[B2F] RowDescription {fields: [note text]}");
      await page.screenshot({ path: join(ARTIFACTS, "admin-dashboard-trace.png"), fullPage: true });
    } finally {
      await c.end();
      await page.click("#trace-stop");
    }
  }, 60_000);
});
