// Functions: the catalog (public and internal), each function's figures with a latency
// chart, and running it with JSON arguments, optionally as an identity: the result, the
// log lines and the duration are shown; bad JSON and failures get a message, never a blank.

import { $$, count, duration, empty, errorText, fill, h, jsonView, kindBadge, latencyChart,
  problem } from "./dom.js";

export function mount(container, ctx) {
  const page = new FunctionsPage(container, ctx);
  return () => page.destroy();
}

export function update(route) {
  FunctionsPage.current?.show(route.rest);
}

const KIND_VERB = { query: "Run query", mutation: "Run mutation", action: "Run action" };

class FunctionsPage {
  static current = null;

  constructor(container, ctx) {
    FunctionsPage.current = this;
    this.ctx = ctx;
    this.client = ctx.client;
    this.catalog = null;
    this.figures = new Map();
    this.path = null;
    this.search = "";
    this.drafts = new Map();  // path -> {args, identity} typed but not run
    this.list = h("div", { class: "subnav-list" }, h("div", { class: "loading" }, "Loading functions…"));
    this.detail = h("section", { class: "fn-main" });
    const searchBox = h("input", { id: "fn-search", type: "search", placeholder: "Filter functions",
      oninput: (e) => { this.search = e.target.value.toLowerCase(); this.renderList(); } });
    container.append(h("div", { class: "split" },
      h("div", { class: "subnav" }, h("div", { class: "subnav-head" }, "Functions"), searchBox, this.list),
      this.detail));
    this.stops = [
      this.client.onUpdate("_system/functions:catalog", {}, (c) => this.onCatalog(c),
        (error) => fill(this.list, problem(errorText(error)))),
      this.client.onUpdate("_system/functions:figures", {}, (rows) => {
        this.figures = new Map(rows.map((r) => [r.path, r]));
        this.renderFigures();
      }, () => {}),
    ];
    this.pending = ctx.route.rest;
  }

  destroy() {
    for (const stop of this.stops) stop();
    if (FunctionsPage.current === this) FunctionsPage.current = null;
  }

  onCatalog(catalog) {
    this.catalog = catalog;
    this.renderList();
    if (this.path === null || !catalog.some((f) => f.path === this.path)) {
      this.show(this.pending || this.path || catalog[0]?.path || "");
    }
  }

  renderList() {
    if (!this.catalog) return;
    if (!this.catalog.length) {
      fill(this.list, empty("No functions yet: add some under functions/."));
      return;
    }
    const modules = new Map();
    for (const fn of this.catalog) {
      if (this.search && !fn.path.toLowerCase().includes(this.search)) continue;
      if (!modules.has(fn.module)) modules.set(fn.module, []);
      modules.get(fn.module).push(fn);
    }
    fill(this.list, modules.size ? [...modules].map(([module, fns]) => h("div", { class: "module" },
      h("div", { class: "module-name" }, module),
      fns.map((fn) => h("button", { type: "button", class: `subnav-item fn-item${fn.path === this.path ? " active" : ""}`,
        dataset: { path: fn.path }, onclick: () => this.ctx.navigate(`#/functions/${encodeURIComponent(fn.path)}`) },
      kindBadge(fn.kind), h("span", { class: "name" }, fn.name),
      fn.internal ? h("span", { class: "internal", title: "internal: only the admin, functions and the scheduler can call it" }, "internal") : null))))
      : empty("No function matches."));
  }

  show(path) {
    this.pending = path;
    if (!this.catalog) return;
    const fn = this.catalog.find((f) => f.path === path);
    if (!fn) {
      fill(this.detail, path ? problem(`There is no function “${path}” in this app.`, "Function not found")
        : empty("Pick a function on the left."));
      return;
    }
    this.path = path;
    for (const el of $$(".fn-item", this.list)) el.classList.toggle("active", el.dataset.path === path);
    this.renderDetail(fn);
  }

  renderDetail(fn) {
    const draft = this.drafts.get(fn.path) ?? { args: fn.skeleton, identity: "" };
    this.drafts.set(fn.path, draft);
    this.figuresBox = h("div", { class: "card figures" });
    this.result = h("div", { class: "run-result", hidden: true });
    const args = h("textarea", { id: "fn-args", class: "code", rows: 7, spellcheck: false,
      oninput: (e) => { draft.args = e.target.value; } }, draft.args);
    const identity = h("textarea", { id: "fn-identity", class: "code", rows: 3, spellcheck: false,
      placeholder: '{"subject": "user-1", "name": "Ada"}',
      oninput: (e) => { draft.identity = e.target.value; } }, draft.identity);
    const argsError = h("div", { id: "args-error", class: "form-error", role: "alert", hidden: true });
    const run = h("button", { id: "run-fn", type: "submit", class: "primary" }, KIND_VERB[fn.kind] ?? "Run");
    const form = h("form", { class: "card run-form", onsubmit: (e) => {
      e.preventDefault();
      this.run(fn, draft, run, argsError);
    } },
    h("h2", {}, "Run"),
    h("label", { for: "fn-args" }, "Arguments ", h("span", { class: "muted" }, fn.argsType)),
    args, argsError,
    h("details", { class: "identity", open: Boolean(draft.identity) },
      h("summary", {}, "Act as an identity (optional)"),
      h("p", { class: "muted small" }, "The function sees this as ctx.auth.get_user_identity(); leave empty to run as the admin."),
      identity),
    h("div", { class: "form-actions" }, run,
      h("span", { class: "muted small" }, fn.kind === "query" ? "Reads only." : "This writes for real."),
      fn.kind === "query" ? null : this.scheduleControls(fn, draft, argsError)));
    fill(this.detail,
      h("div", { class: "page-head" },
        h("div", {}, h("h1", { class: "mono" }, fn.path),
          h("div", { class: "muted" }, kindBadge(fn.kind), ` ${fn.kind} · ${fn.internal ? "internal" : "public"}`)),
        h("div", { class: "actions" }, h("a", { class: "button ghost", href: `#/logs?function=${encodeURIComponent(fn.path)}` }, "View logs"))),
      fn.doc ? h("p", { class: "doc" }, fn.doc) : null,
      h("div", { class: "card signature" },
        h("div", {}, h("span", { class: "muted" }, "args "), h("code", {}, fn.argsType)),
        h("div", {}, h("span", { class: "muted" }, "returns "), h("code", {}, fn.returnsType))),
      this.figuresBox, form, this.result);
    this.renderFigures();
  }

  scheduleControls(fn, draft, argsError) {
    const delay = h("input", { id: "fn-delay", type: "number", min: "0", step: "1", value: "60",
      "aria-label": "Delay in seconds" });
    const button = h("button", { id: "schedule-fn", type: "button", class: "ghost", onclick: async () => {
      argsError.hidden = true;
      button.disabled = true;
      try {
        const id = await this.client.mutation("_system/functions:schedule",
          { path: fn.path, args: draft.args, delaySeconds: Number(delay.value || 0) });
        this.ctx.toast(`Scheduled ${fn.path} (${id}): see Schedules`);
      } catch (error) {
        argsError.textContent = errorText(error);
        argsError.hidden = false;
      } finally {
        button.disabled = false;
      }
    } }, "Schedule");
    return h("span", { class: "schedule-controls" }, h("span", { class: "muted small" }, "or in"), delay,
      h("span", { class: "muted small" }, "seconds"), button);
  }

  renderFigures() {
    if (!this.figuresBox || !this.path) return;
    const f = this.figures.get(this.path);
    if (!f) {
      fill(this.figuresBox, h("h2", {}, "Performance"), empty("Not called since the server started."));
      return;
    }
    const rate = f.calls ? (100 * f.errors) / f.calls : 0;
    fill(this.figuresBox, h("h2", {}, "Performance ", h("span", { class: "muted small" }, `last ${f.window} calls`)),
      h("div", { class: "stats" },
        stat("Calls", count(f.calls)), stat("Errors", `${count(f.errors)} (${rate.toFixed(1)}%)`, f.errors ? "bad" : ""),
        stat("p50", duration(f.p50)), stat("p95", duration(f.p95)), stat("p99", duration(f.p99)),
        stat("Retries", count(f.retries)), stat("Docs read", count(f.documentsRead)),
        stat("Docs written", count(f.documentsWritten))),
      latencyChart(f.recent));
  }

  async run(fn, draft, button, argsError) {
    button.disabled = true;
    argsError.hidden = true;
    fill(this.result, h("div", { class: "loading" }, "Running…"));
    this.result.hidden = false;
    try {
      const outcome = await this.client.action("_system/functions:run",
        { path: fn.path, args: draft.args, identity: draft.identity || null });
      if (outcome.input) {
        argsError.textContent = outcome.error;
        argsError.hidden = false;
        this.result.hidden = true;
        return;
      }
      this.renderResult(outcome);
    } catch (error) {
      fill(this.result, problem(errorText(error), "The dashboard could not run it"));
    } finally {
      button.disabled = false;
    }
  }

  renderResult(outcome) {
    fill(this.result,
      h("div", { class: `run-status ${outcome.ok ? "run-ok" : "run-error"}` },
        h("strong", {}, outcome.ok ? "Success" : "Failed"),
        h("span", { class: "muted" }, ` in ${duration(outcome.durationMs)}`)),
      outcome.ok ? jsonView(outcome.value)
        : h("div", { class: "error-box" }, h("div", { class: "error-message" }, outcome.error),
          outcome.errorData ? jsonView(outcome.errorData) : null),
      h("h3", {}, `Logs (${outcome.logLines.length})`),
      outcome.logLines.length ? h("ul", { class: "run-logs log-lines" }, outcome.logLines.map(logLine))
        : h("p", { class: "muted small" }, "Nothing was logged."));
  }
}

function stat(label, value, tone = "") {
  return h("div", { class: `stat ${tone}` }, h("span", { class: "stat-label" }, label),
    h("span", { class: "stat-value" }, value));
}

/** "[LEVEL] message" as sent to clients -> a list item. */
export function logLine(text) {
  const match = /^\[(\w+)\] ([\s\S]*)$/.exec(text);
  const level = match ? match[1] : "LOG";
  const message = match ? match[2] : text;
  return h("li", { dataset: { level } }, h("span", { class: `level level-${level}` }, level),
    h("span", { class: "message" }, message));
}
