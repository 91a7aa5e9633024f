// Logs: a live tail of function executions (newest first), filtered by function, outcome,
// level and text; one execution in full (every line, the error and its traceback, what it
// read and wrote). The tail is a subscription, re-run by the server when executions finish.

import { $$, bytes, clock, count, dateTime, duration, empty, errorText, fill, h, kindBadge,
  problem } from "./dom.js";

const LEVELS = ["DEBUG", "INFO", "LOG", "WARN", "ERROR"];

export function mount(container, ctx) {
  const page = new LogsPage(container, ctx);
  return () => page.destroy();
}

export function update(route) {
  LogsPage.current?.route(route);
}

class LogsPage {
  static current = null;

  constructor(container, ctx) {
    LogsPage.current = this;
    this.ctx = ctx;
    this.client = ctx.client;
    this.filters = { function: "", outcome: "", level: "", text: "" };
    this.paused = false;
    this.latest = null;
    this.selected = null;
    this.stopTail = null;
    this.stopDetail = null;
    this.build(container);
    this.stopCatalog = this.client.onUpdate("_system/functions:catalog", {},
      (catalog) => this.onCatalog(catalog), () => {});
    this.route(ctx.route);
  }

  destroy() {
    this.stopTail?.();
    this.stopDetail?.();
    this.stopCatalog();
    clearTimeout(this.typing);
    if (LogsPage.current === this) LogsPage.current = null;
  }

  build(container) {
    this.functionSelect = h("select", { id: "log-function", "aria-label": "Function",
      onchange: (e) => this.setFilter("function", e.target.value) },
    h("option", { value: "" }, "All functions"));
    const outcome = h("select", { id: "log-outcome", "aria-label": "Outcome",
      onchange: (e) => this.setFilter("outcome", e.target.value) },
    h("option", { value: "" }, "Any outcome"), h("option", { value: "success" }, "Success"),
    h("option", { value: "failure" }, "Failure"));
    const level = h("select", { id: "log-level", "aria-label": "Level",
      onchange: (e) => this.setFilter("level", e.target.value) },
    h("option", { value: "" }, "Any level"), LEVELS.map((l) => h("option", { value: l }, `has ${l}`)));
    const text = h("input", { id: "log-text", type: "search", placeholder: "Search path, message, error",
      oninput: (e) => {
        clearTimeout(this.typing);
        this.typing = setTimeout(() => this.setFilter("text", e.target.value), 250);
      } });
    this.pauseButton = h("button", { id: "log-pause", type: "button", class: "ghost",
      onclick: () => this.togglePause() }, "Pause");
    this.summary = h("span", { class: "muted small tail-summary" });
    this.table = h("div", { class: "grid-wrap logs-wrap" }, h("div", { class: "loading" }, "Waiting for executions…"));
    this.drawer = h("aside", { class: "drawer wide", hidden: true, "aria-label": "Execution" });
    this.controls = { outcome, level, text };
    container.append(h("div", { class: "split logs-split" },
      h("section", { class: "logs-main" },
        h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Logs"),
          h("div", { class: "muted" }, "Every function execution, live. ", this.summary)),
        h("div", { class: "actions" }, h("span", { class: "live-dot", title: "live" }), this.pauseButton)),
        h("div", { class: "filter-bar logs-filter" }, this.functionSelect, outcome, level, text),
        this.table),
      this.drawer));
  }

  onCatalog(catalog) {
    const current = this.filters.function;
    fill(this.functionSelect, h("option", { value: "" }, "All functions"),
      catalog.map((fn) => h("option", { value: fn.path, selected: fn.path === current }, fn.path)));
    if (current && !catalog.some((fn) => fn.path === current)) {
      this.functionSelect.append(h("option", { value: current, selected: true }, current));
    }
  }

  route(route) {
    const fn = route.params.get("function") ?? "";
    if (fn !== this.filters.function || !this.stopTail) {
      this.filters.function = fn;
      this.functionSelect.value = fn;
      this.subscribeTail();
    }
    if (route.rest) this.open(route.rest); else this.close(false);
  }

  setFilter(name, value) {
    this.filters[name] = value;
    this.subscribeTail();
  }

  subscribeTail() {
    this.stopTail?.();
    const args = { limit: 200 };
    for (const [key, value] of Object.entries(this.filters)) if (value) args[key] = value;
    this.stopTail = this.client.onUpdate("_system/logs:recent", args,
      (value) => {
        this.latest = value;
        if (!this.paused) this.render(value);
      },
      (error) => fill(this.table, problem(errorText(error), "The log cannot be shown")));
  }

  togglePause() {
    this.paused = !this.paused;
    this.pauseButton.textContent = this.paused ? "Resume" : "Pause";
    this.pauseButton.classList.toggle("active", this.paused);
    if (!this.paused && this.latest) this.render(this.latest);
  }

  render(value) {
    const rows = value.executions;
    this.summary.textContent = value.enabled
      ? `${count(value.kept)} kept in memory of ${count(value.recorded)} recorded since start.`
      : "Recording is off on this server.";
    if (!rows.length) {
      const filtered = Object.values(this.filters).some(Boolean);
      fill(this.table, empty(filtered ? "No execution matches these filters yet."
        : "No function has run since the server started. Call one and it appears here."));
      return;
    }
    fill(this.table, h("table", { class: "grid logs" },
      h("thead", {}, h("tr", {}, ["Time", "", "", "Function", "Caller", "Duration", "Message"]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.map((ex) => this.row(ex)))));
  }

  row(ex) {
    const message = ex.error ?? (ex.firstLine ? ex.firstLine.message : "");
    return h("tr", { class: `log-row ${ex.ok ? "ok" : "failed"}${ex.id === this.selected ? " selected" : ""}`,
      dataset: { id: ex.id, path: ex.path }, tabindex: "0",
      onclick: () => this.ctx.navigate(`#/logs/${encodeURIComponent(ex.id)}${this.query()}`),
      onkeydown: (e) => { if (e.key === "Enter") e.target.click(); } },
    h("td", { class: "mono nowrap muted" }, clock(ex.finished)),
    h("td", {}, h("span", { class: `outcome ${ex.ok ? "outcome-ok" : "outcome-fail"}`,
      title: ex.ok ? "success" : "failure" }, ex.ok ? "✓" : "✕")),
    h("td", {}, kindBadge(ex.kind)),
    h("td", { class: "mono fn-cell" }, ex.path),
    h("td", { class: "muted small nowrap" }, ex.caller, ex.identity ? ` · ${ex.identity}` : ""),
    h("td", { class: "nowrap num" }, duration(ex.durationMs)),
    h("td", { class: "message-cell" },
      ex.error ? h("span", { class: "error-text" }, message)
        : ex.firstLine ? [h("span", { class: `level level-${ex.firstLine.level}` }, ex.firstLine.level), " ", message] : "",
      ex.lineCount > 1 ? h("span", { class: "more muted" }, ` +${ex.lineCount - 1} lines`) : ""));
  }

  query() {
    const fn = this.filters.function;
    return fn ? `?function=${encodeURIComponent(fn)}` : "";
  }

  open(id) {
    if (this.selected === id) return;
    this.selected = id;
    for (const el of $$(".log-row", this.table)) el.classList.toggle("selected", el.dataset.id === id);
    this.stopDetail?.();
    this.drawer.hidden = false;
    fill(this.drawer, h("div", { class: "loading" }, "Loading…"));
    this.stopDetail = this.client.onUpdate("_system/logs:execution", { id },
      (ex) => this.renderDetail(ex, id),
      (error) => fill(this.drawer, problem(errorText(error))));
  }

  close(navigate = true) {
    this.selected = null;
    this.stopDetail?.();
    this.stopDetail = null;
    this.drawer.hidden = true;
    for (const el of $$(".log-row.selected", this.table)) el.classList.remove("selected");
    if (navigate) this.ctx.navigate(`#/logs${this.query()}`);
  }

  renderDetail(ex, id) {
    const head = h("div", { class: "drawer-head" },
      h("h2", { class: "mono" }, ex ? ex.path : id),
      h("button", { class: "ghost icon-button", type: "button", "aria-label": "Close", onclick: () => this.close() }, "×"));
    if (!ex) {
      fill(this.drawer, head, empty("This execution is no longer in the server's memory (the log keeps the newest ones)."));
      return;
    }
    const figures = [["Outcome", ex.ok ? "success" : "failure"], ["Started", dateTime(ex.started)],
      ["Duration", duration(ex.durationMs)], ["Kind", ex.kind], ["Caller", ex.caller],
      ["Identity", ex.identity ?? "anonymous"], ["Conflict retries", count(ex.retries)],
      ["Documents read", `${count(ex.documentsRead)} (${bytes(ex.bytesRead)})`],
      ["Documents written", `${count(ex.documentsWritten)} (${bytes(ex.bytesWritten)})`],
      ["Execution", ex.id], ["Called by", ex.parent ?? "—"]];
    fill(this.drawer, head, h("div", { class: "drawer-body" },
      h("div", { class: `run-status ${ex.ok ? "run-ok" : "run-error"}` }, h("strong", {}, ex.ok ? "Succeeded" : "Failed"),
        h("span", { class: "muted" }, ` in ${duration(ex.durationMs)}`)),
      ex.error ? h("div", { class: "error-box" }, h("div", { class: "error-message" }, ex.error),
        ex.traceback ? h("pre", { class: "traceback" }, ex.traceback) : null) : null,
      h("h3", {}, `Log lines (${ex.lines.length}${ex.droppedLines ? ` + ${ex.droppedLines} dropped` : ""})`),
      ex.lines.length ? h("ul", { class: "log-lines detail-lines" }, ex.lines.map((line) =>
        h("li", { dataset: { level: line.level } }, h("span", { class: "mono muted" }, clock(line.timestamp)),
          h("span", { class: `level level-${line.level}` }, line.level),
          h("span", { class: "message" }, line.message, line.truncated ? h("em", { class: "muted" }, " (truncated)") : ""))))
        : h("p", { class: "muted small" }, "Nothing was logged."),
      h("h3", {}, "Figures"),
      h("dl", { class: "figures-list" }, figures.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))));
  }
}
