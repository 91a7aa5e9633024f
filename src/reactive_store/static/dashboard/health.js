// Health: the server's figures (the ones /metrics exports) now and over the last two
// minutes, sampled every second by the server and pushed over the sync protocol; and every
// function's calls, errors and latency percentiles.

import { count, dateTime, duration, empty, errorText, fill, h, problem, sparkline } from "./dom.js";

export function mount(container, ctx) {
  const cards = h("div", { class: "cards" }, h("div", { class: "loading" }, "Loading…"));
  const info = h("div", { class: "card info" });
  const fnBox = h("div", { class: "grid-wrap" });
  container.append(h("section", { class: "health" },
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Health"),
      h("div", { class: "muted" }, "This server process, sampled every second.")),
    h("div", { class: "actions" }, h("span", { class: "live-dot", title: "live" }))),
    cards, h("h2", {}, "Functions"), fnBox, h("h2", {}, "Server"), info));
  const stops = [
    ctx.client.onUpdate("_system/health:figures", {}, (figures) => {
      renderCards(cards, figures);
      renderInfo(info, figures);
    }, (error) => fill(cards, problem(errorText(error), "Health figures are unavailable"))),
    ctx.client.onUpdate("_system/functions:figures", {}, (rows) => renderFunctions(fnBox, rows),
      (error) => fill(fnBox, problem(errorText(error)))),
  ];
  return () => stops.forEach((stop) => stop());
}

const CARDS = [
  ["liveQueries", "Live queries", count, "distinct subscribed queries"],
  ["sockets", "Sockets", count, "sync WebSockets open"],
  ["executionsPerSec", "Executions / s", (v) => v.toFixed(1), "function calls finished"],
  ["errorsPerSec", "Errors / s", (v) => v.toFixed(1), "function calls failed"],
  ["commitLagMs", "Commit-stream lag", duration, "commit to processed, last commit"],
  ["schedulerLagMs", "Scheduler lag", duration, "due time to start, last job"],
  ["queryReruns", "Query runs", count, "live query executions since start"],
  ["transactions", "Transactions", count, "started since start"],
  ["poolInUse", "DB pool in use", count, "connections busy"],
  ["jobsRunning", "Jobs running", count, "scheduled functions now"],
  ["memoryMb", "Memory", (v) => `${v.toFixed(0)} MB`, "resident, this process"],
];

function renderCards(box, figures) {
  const series = figures.series.map((s) => ({ ...s, poolInUse: s.poolSize - s.poolIdle }));
  const now = { ...figures.now, poolInUse: figures.now.poolSize - figures.now.poolIdle };
  fill(box, CARDS.map(([key, label, format, hint]) => h("div", { class: "card stat-card", dataset: { stat: key } },
    h("div", { class: "stat-label" }, label),
    h("div", { class: "stat-value" }, format(now[key] ?? 0),
      key === "poolInUse" ? h("span", { class: "muted small" }, ` / ${count(now.poolSize)} open, ${count(now.poolMax)} max`) : ""),
    sparkline(series.map((s) => s[key] ?? 0)),
    h("div", { class: "muted small" }, hint))));
}

function renderInfo(box, figures) {
  const uptime = (Date.now() - figures.startedAt) / 1000;
  const rows = [["Database", figures.database || "—"], ["App", figures.app.folder],
    ["Functions / tables", `${figures.app.functions} / ${figures.app.tables}`],
    ["Started", `${dateTime(figures.startedAt)} (up ${uptimeText(uptime)})`],
    ["Newest commit processed", figures.processedTs],
    ["Executions kept", `${count(figures.executionsKept)} (${(figures.executionBytes / 1e6).toFixed(1)} MB of logs)`],
    ["Recording", figures.recording ? "on" : "off"], ["Python", figures.python], ["Process", `pid ${figures.pid}`]];
  fill(box, h("dl", { class: "figures-list" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
}

function uptimeText(seconds) {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

function renderFunctions(box, rows) {
  if (!rows.length) {
    fill(box, empty("No function has run since the server started."));
    return;
  }
  fill(box, h("table", { class: "grid functions-table" },
    h("thead", {}, h("tr", {}, ["Function", "Calls", "Errors", "p50", "p95", "p99", "Retries", "Recent"]
      .map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map((f) => h("tr", { class: "fn-row", dataset: { path: f.path } },
      h("td", { class: "mono" }, h("a", { href: `#/functions/${encodeURIComponent(f.path)}` }, f.path)),
      h("td", { class: "num" }, count(f.calls)),
      h("td", { class: `num${f.errors ? " bad" : ""}` }, `${count(f.errors)} (${((100 * f.errors) / f.calls).toFixed(1)}%)`),
      h("td", { class: "num" }, duration(f.p50)), h("td", { class: "num" }, duration(f.p95)),
      h("td", { class: "num" }, duration(f.p99)), h("td", { class: "num" }, count(f.retries)),
      h("td", {}, sparkline(f.recent.map(([, d]) => d), { width: 120, height: 24 })))))));
}
