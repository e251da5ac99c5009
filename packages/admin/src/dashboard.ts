/**
 * The dashboard page served at `/`: one static HTML document and one script, no build step and nothing
 * fetched from elsewhere. The script reads the JSON API every second and draws pools (with line charts of
 * client/server counts and wait time, pinned clients and prepared-statement counters), clients (with
 * their pins), servers, errors and pins by reason, and a live-trace viewer (server-sent events from
 * /v1/trace). It writes every value with textContent: nothing from the API becomes markup.
 */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pgmux</title>
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f8f9fb; --ok: #137333; --bad: #b3261e; --warn: #a15c00; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; gap: 12px; align-items: baseline; padding: 12px 20px; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { margin: 0; font-size: 18px; }
  #status { margin-left: auto; color: var(--muted); }
  .badge { padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; }
  .badge.ok { background: #e6f4ea; color: var(--ok); }
  .badge.bad { background: #fce8e6; color: var(--bad); }
  .badge.warn { background: #fef3e0; color: var(--warn); }
  main { padding: 12px 20px 40px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; margin-bottom: 14px; }
  h2 { font-size: 14px; margin: 0 0 8px; }
  h3 { font-size: 12px; margin: 0 0 4px; color: var(--muted); font-weight: 600; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { color: var(--muted); font-weight: 600; font-size: 12px; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .totals { display: flex; gap: 24px; margin-bottom: 8px; color: var(--muted); }
  .totals b { color: var(--fg); font-variant-numeric: tabular-nums; }
  .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 12px; margin-top: 10px; }
  .chart { border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; }
  .chart svg { width: 100%; height: 110px; display: block; }
  .legend { display: flex; gap: 10px; font-size: 11px; color: var(--muted); flex-wrap: wrap; }
  .legend i { display: inline-block; width: 10px; height: 3px; margin-right: 4px; vertical-align: middle; }
  .cols { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 16px; }
  .empty { color: var(--muted); font-style: italic; }
  .scroll { max-height: 320px; overflow: auto; }
  .wide { overflow-x: auto; }
  form { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; margin-bottom: 8px; }
  input { font: inherit; padding: 3px 6px; border: 1px solid var(--line); border-radius: 4px; width: 150px; }
  button { font: inherit; padding: 3px 10px; border: 1px solid #c9ced6; border-radius: 4px; background: #fff; cursor: pointer; }
  pre#trace { background: #0f1420; color: #d6deeb; padding: 8px; border-radius: 6px; height: 260px; overflow: auto; margin: 0; font: 12px/1.35 ui-monospace, Menlo, Consolas, monospace; }
</style>
</head>
<body>
<header>
  <h1>pgmux</h1>
  <span id="version"></span>
  <span id="ready" class="badge"></span>
  <span id="paused" class="badge"></span>
  <span id="status">loading…</span>
</header>
<main>
  <section>
    <h2>Pools</h2>
    <div class="totals" id="totals"></div>
    <div class="wide"><table id="pools">
      <thead><tr>
        <th>database</th><th>user</th><th>mode</th>
        <th class="num">clients active</th><th class="num">idle</th><th class="num">waiting</th>
        <th class="num">servers active</th><th class="num">idle</th><th class="num">used</th><th class="num">tested</th><th class="num">login</th>
        <th class="num">max wait</th><th class="num">transactions</th><th class="num">queries</th><th class="num">tx/s</th>
        <th class="num" title="clients pinned to their server now">pinned</th>
        <th class="num" title="prepared statements found on the server">stmt hits</th>
        <th class="num" title="prepared statements the server lacked">misses</th>
        <th class="num" title="prepared statements closed to stay within max_prepared_statements">evictions</th>
      </tr></thead>
      <tbody></tbody>
    </table></div>
    <div class="charts" id="charts"></div>
  </section>
  <section>
    <h2>Errors and pins</h2>
    <div class="cols">
      <div><h3>Server errors by SQLSTATE</h3><table id="server-errors"><tbody></tbody></table></div>
      <div><h3>pgmux errors</h3><table id="pooler-errors"><tbody></tbody></table></div>
      <div><h3>Refused connections</h3><table id="refused"><tbody></tbody></table></div>
      <div><h3>Pins by reason (since start)</h3><table id="pins"><tbody></tbody></table></div>
    </div>
  </section>
  <section>
    <h2>Clients <span id="client-count" class="badge"></span></h2>
    <div class="scroll"><table id="clients">
      <thead><tr><th class="num">id</th><th>user</th><th>database</th><th>state</th><th>application</th><th>address</th><th class="num">waiting</th><th class="num">owed</th><th class="num">server</th><th>pins</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section>
    <h2>Servers <span id="server-count" class="badge"></span></h2>
    <div class="scroll"><table id="servers">
      <thead><tr><th class="num">id</th><th>pool</th><th>state</th><th>status</th><th class="num">backend pid</th><th class="num">client</th><th>application</th><th>last used</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section>
    <h2>Live trace</h2>
    <form id="trace-form">
      <input name="client" placeholder="client id" inputmode="numeric">
      <input name="user" placeholder="user">
      <input name="database" placeholder="database">
      <input name="application_name" placeholder="application_name">
      <button type="submit" id="trace-start">Start</button>
      <button type="button" id="trace-stop">Stop</button>
      <span id="trace-status" class="empty">not tracing</span>
    </form>
    <pre id="trace"></pre>
  </section>
</main>
<script src="/dashboard.js"></script>
</body>
</html>
`;

export const DASHBOARD_JS = `"use strict";
(function () {
  var HISTORY = 120;
  var MAX_TRACE_LINES = 500;
  var COLORS = ["#2563eb", "#d97706", "#059669", "#9333ea", "#dc2626", "#0891b2"];
  var history = {};
  var previous = {};
  var refreshes = 0;
  var busy = false;

  function $(id) { return document.getElementById(id); }

  function cell(row, value, cls) {
    var td = document.createElement("td");
    td.textContent = value === null || value === undefined ? "" : String(value);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function seconds(s) {
    if (!s) return "0";
    if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
    if (s < 1) return (s * 1000).toFixed(1) + " ms";
    return s.toFixed(2) + " s";
  }

  function getJSON(path) {
    return fetch(path, { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error(path + " answered " + r.status);
      return r.json();
    });
  }

  function fillRecord(table, record, empty) {
    var tbody = table.tBodies[0];
    tbody.textContent = "";
    var keys = record ? Object.keys(record).sort() : [];
    if (keys.length === 0) {
      var tr = document.createElement("tr");
      cell(tr, empty, "empty");
      tbody.appendChild(tr);
      return;
    }
    keys.forEach(function (k) {
      var tr = document.createElement("tr");
      cell(tr, k);
      cell(tr, record[k], "num");
      tbody.appendChild(tr);
    });
  }

  var SVG = "http://www.w3.org/2000/svg";
  function svgEl(name, attrs) {
    var e = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }

  /** A line chart of several series over the same times, scaled to the largest value. */
  function drawChart(svg, times, series, format) {
    var W = 400, H = 110, left = 44, right = 6, top = 8, bottom = 16;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.textContent = "";
    var max = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v > max) max = v; }); });
    if (max <= 0) max = 1;
    var n = times.length;
    var t0 = n > 0 ? times[0] : 0, t1 = n > 1 ? times[n - 1] : t0 + 1;
    function x(t) { return left + ((t - t0) / (t1 - t0 || 1)) * (W - left - right); }
    function y(v) { return top + (1 - v / max) * (H - top - bottom); }
    svg.appendChild(svgEl("line", { x1: left, y1: y(0), x2: W - right, y2: y(0), stroke: "#c9ced6" }));
    svg.appendChild(svgEl("line", { x1: left, y1: y(max), x2: W - right, y2: y(max), stroke: "#eef0f3" }));
    var top1 = svgEl("text", { x: left - 4, y: y(max) + 4, "text-anchor": "end", "font-size": 10, fill: "#667085" });
    top1.textContent = format(max);
    svg.appendChild(top1);
    var zero = svgEl("text", { x: left - 4, y: y(0) + 3, "text-anchor": "end", "font-size": 10, fill: "#667085" });
    zero.textContent = "0";
    svg.appendChild(zero);
    var span = svgEl("text", { x: W - right, y: H - 2, "text-anchor": "end", "font-size": 10, fill: "#667085" });
    span.textContent = n > 1 ? "last " + Math.round((t1 - t0) / 1000) + " s" : "";
    svg.appendChild(span);
    series.forEach(function (s, i) {
      if (n === 0) return;
      var pts = s.values.map(function (v, j) { return x(times[j]).toFixed(1) + "," + y(v).toFixed(1); }).join(" ");
      svg.appendChild(svgEl("polyline", { points: pts, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.6 }));
    });
  }

  function chartBox(container, key, title, names) {
    var id = "chart-" + key;
    var box = document.getElementById(id);
    if (box) return box.querySelector("svg");
    box = document.createElement("div");
    box.className = "chart";
    box.id = id;
    var h = document.createElement("h3");
    h.textContent = title;
    box.appendChild(h);
    var legend = document.createElement("div");
    legend.className = "legend";
    names.forEach(function (name, i) {
      var span = document.createElement("span");
      var mark = document.createElement("i");
      mark.style.background = COLORS[i % COLORS.length];
      span.appendChild(mark);
      span.appendChild(document.createTextNode(name));
      legend.appendChild(span);
    });
    box.appendChild(legend);
    var svg = svgEl("svg", {});
    box.appendChild(svg);
    container.appendChild(box);
    return svg;
  }

  function remember(pool, now) {
    var h = history[pool.name];
    if (!h) h = history[pool.name] = { t: [], ca: [], cw: [], sa: [], si: [], mw: [], aw: [], tps: [] };
    var prev = previous[pool.name];
    var tps = 0, avgWait = 0;
    if (prev && now > prev.time) {
      var dt = (now - prev.time) / 1000;
      tps = Math.max(0, (pool.totals.transactions - prev.transactions) / dt);
      var waits = pool.totals.serverAssignments - prev.assignments;
      avgWait = waits > 0 ? Math.max(0, (pool.totals.waitSeconds - prev.waitSeconds) / waits) : 0;
    }
    previous[pool.name] = { time: now, transactions: pool.totals.transactions, assignments: pool.totals.serverAssignments, waitSeconds: pool.totals.waitSeconds };
    h.t.push(now); h.ca.push(pool.clients.active); h.cw.push(pool.clients.waiting);
    h.sa.push(pool.servers.active); h.si.push(pool.servers.idle + pool.servers.used);
    h.mw.push(pool.maxWaitSeconds); h.aw.push(avgWait); h.tps.push(tps);
    Object.keys(h).forEach(function (k) { if (h[k].length > HISTORY) h[k].shift(); });
    return tps;
  }

  function renderPools(pools, now) {
    var tbody = $("pools").tBodies[0];
    tbody.textContent = "";
    if (pools.length === 0) {
      var empty = document.createElement("tr");
      var td = cell(empty, "no pool yet: pools appear when a client logs in", "empty");
      td.colSpan = 19;
      tbody.appendChild(empty);
    }
    var charts = $("charts");
    pools.forEach(function (p) {
      var tps = remember(p, now);
      var tr = document.createElement("tr");
      tr.setAttribute("data-pool", p.name);
      cell(tr, p.database); cell(tr, p.user); cell(tr, p.mode);
      cell(tr, p.clients.active, "num clients-active"); cell(tr, p.clients.idle, "num"); cell(tr, p.clients.waiting, "num clients-waiting");
      cell(tr, p.servers.active, "num servers-active"); cell(tr, p.servers.idle, "num servers-idle"); cell(tr, p.servers.used, "num");
      cell(tr, p.servers.tested, "num"); cell(tr, p.servers.login, "num");
      cell(tr, seconds(p.maxWaitSeconds), "num");
      cell(tr, p.totals.transactions, "num transactions"); cell(tr, p.totals.queries, "num queries");
      cell(tr, tps.toFixed(1), "num tps");
      var ss = p.sessionState, ps = p.preparedStatements;
      cell(tr, ss ? ss.pinnedClients : "", "num pinned");
      cell(tr, ps ? ps.hits : "", "num prepared-hits"); cell(tr, ps ? ps.misses : "", "num prepared-misses");
      cell(tr, ps ? ps.evictions : "", "num prepared-evictions");
      tbody.appendChild(tr);
      var h = history[p.name];
      var key = p.name.replace(/[^A-Za-z0-9_-]/g, "_");
      drawChart(chartBox(charts, key + "-counts", p.name + ": connections", ["clients active", "clients waiting", "servers active", "servers idle"]),
        h.t, [{ values: h.ca }, { values: h.cw }, { values: h.sa }, { values: h.si }], function (v) { return String(Math.round(v)); });
      drawChart(chartBox(charts, key + "-wait", p.name + ": wait for a server", ["max wait", "average wait per assignment"]),
        h.t, [{ values: h.mw }, { values: h.aw }], seconds);
    });
  }

  /** "listen 2, advisory_lock 1" from { listen: 2, advisory_lock: 1 }; "" when none (or not tracked). */
  function pinText(pins) {
    if (!pins) return "";
    return Object.keys(pins).sort().map(function (k) { return k + " " + pins[k]; }).join(", ");
  }

  function nonZero(record) {
    var out = {};
    Object.keys(record || {}).forEach(function (k) { if (record[k]) out[k] = record[k]; });
    return out;
  }

  function renderClients(clients) {
    var tbody = $("clients").tBodies[0];
    tbody.textContent = "";
    $("client-count").textContent = String(clients.length);
    clients.slice(0, 300).forEach(function (c) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-client", String(c.id));
      cell(tr, c.id, "num"); cell(tr, c.user); cell(tr, c.database); cell(tr, c.state); cell(tr, c.applicationName);
      cell(tr, c.addr + (c.port ? ":" + c.port : "")); cell(tr, c.waitSeconds ? seconds(c.waitSeconds) : "", "num");
      cell(tr, c.owed, "num"); cell(tr, c.serverId === null ? "" : c.serverId, "num");
      cell(tr, pinText(c.pins), "pins");
      tbody.appendChild(tr);
    });
  }

  function renderServers(servers) {
    var tbody = $("servers").tBodies[0];
    tbody.textContent = "";
    $("server-count").textContent = String(servers.length);
    servers.slice(0, 300).forEach(function (s) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-server", String(s.id));
      cell(tr, s.id, "num"); cell(tr, s.pool); cell(tr, s.pgbouncerState); cell(tr, s.transactionStatus);
      cell(tr, s.backendPid, "num"); cell(tr, s.clientId === null ? "" : s.clientId, "num"); cell(tr, s.applicationName);
      cell(tr, new Date(s.lastUsedAt).toLocaleTimeString());
      tbody.appendChild(tr);
    });
  }

  function renderOverview(o) {
    $("version").textContent = "v" + o.version + " · console as PgBouncer " + o.pgbouncerCompatVersion;
    var ready = $("ready");
    ready.textContent = o.readiness.ready ? "ready" : "not ready: " + o.readiness.reasons.join("; ");
    ready.className = "badge " + (o.readiness.ready ? "ok" : "bad");
    var paused = $("paused");
    paused.textContent = o.draining ? "draining" : o.paused ? "paused" : "running";
    paused.className = "badge " + (o.draining || o.paused ? "warn" : "ok");
    var totals = $("totals");
    totals.textContent = "";
    [["transactions", o.totals.transactions], ["queries", o.totals.queries], ["received", o.totals.bytesFromClients + " B"],
     ["sent", o.totals.bytesFromServers + " B"], ["client wait", seconds(o.totals.waitSeconds)], ["clients accepted", o.totals.clientsAccepted],
     ["clients pinned", o.pins.pinnedClients], ["prepared hits", o.preparedStatements.hits], ["misses", o.preparedStatements.misses]]
      .forEach(function (pair) {
        var span = document.createElement("span");
        span.appendChild(document.createTextNode(pair[0] + " "));
        var b = document.createElement("b");
        b.textContent = String(pair[1]);
        span.appendChild(b);
        totals.appendChild(span);
      });
    fillRecord($("server-errors"), o.errors.serverBySqlState, "none");
    fillRecord($("pooler-errors"), o.errors.poolerByCode, "none");
    fillRecord($("refused"), o.errors.refusedByReason, "none");
    fillRecord($("pins"), nonZero(o.pins.byReason), "none");
  }

  function refresh() {
    if (busy) return;
    busy = true;
    Promise.all([getJSON("/v1/overview"), getJSON("/v1/pools"), getJSON("/v1/clients"), getJSON("/v1/servers")])
      .then(function (r) {
        var now = Date.now();
        renderOverview(r[0]);
        renderPools(r[1].pools, now);
        renderClients(r[2].clients);
        renderServers(r[3].servers);
        refreshes++;
        document.body.setAttribute("data-refreshes", String(refreshes));
        $("status").textContent = "updated " + new Date(now).toLocaleTimeString();
      })
      .catch(function (e) { $("status").textContent = "cannot reach pgmux: " + e.message; })
      .then(function () { busy = false; });
  }

  // ---- live trace ----
  var source = null;
  var traceLines = [];
  var traceDirty = false;
  function showTrace() {
    traceDirty = false;
    var pre = $("trace");
    var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = traceLines.join("\\n");
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }
  function addTraceLine(text) {
    traceLines.push(text);
    if (traceLines.length > MAX_TRACE_LINES) traceLines.splice(0, traceLines.length - MAX_TRACE_LINES);
    if (!traceDirty) { traceDirty = true; requestAnimationFrame(showTrace); }
  }
  function stopTrace() {
    if (source) { source.close(); source = null; }
    $("trace-status").textContent = "not tracing";
  }
  $("trace-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    stopTrace();
    var params = new URLSearchParams();
    ["client", "user", "database", "application_name"].forEach(function (name) {
      var v = ev.target.elements[name].value.trim();
      if (v) params.set(name, v);
    });
    if (Array.from(params.keys()).length === 0) { $("trace-status").textContent = "name a client, user, database or application_name"; return; }
    traceLines = [];
    showTrace();
    source = new EventSource("/v1/trace?" + params.toString());
    $("trace-status").textContent = "tracing " + params.toString();
    source.addEventListener("trace", function (e) {
      var line = JSON.parse(e.data);
      addTraceLine(new Date(line.time).toLocaleTimeString() + " client=" + line.clientId + " " + line.text);
    });
    source.addEventListener("dropped", function (e) {
      addTraceLine("… " + JSON.parse(e.data).dropped + " lines dropped so far");
    });
    source.onerror = function () {
      $("trace-status").textContent = "trace interrupted (retrying; Stop to end it)";
    };
  });
  $("trace-stop").addEventListener("click", stopTrace);

  refresh();
  setInterval(refresh, 1000);
})();
`;
