// Schedules: scheduled functions by state (a pending one can be canceled), and crons with
// their schedule, last and next run and recent runs. Both read the system tables through
// live queries, so jobs starting, finishing or being canceled show at once.

import { $$, dateTime, empty, errorText, fill, h, problem, relative, stateBadge } from "./dom.js";

const STATES = [["pending", "Pending"], ["inProgress", "In progress"], ["success", "Succeeded"],
  ["failed", "Failed"], ["canceled", "Canceled"], ["", "All"]];

export function mount(container, ctx) {
  const page = new SchedulesPage(container, ctx);
  return () => page.destroy();
}

export function update(route) {
  SchedulesPage.current?.show(route.rest);
}

class SchedulesPage {
  static current = null;

  constructor(container, ctx) {
    SchedulesPage.current = this;
    this.ctx = ctx;
    this.client = ctx.client;
    this.state = "pending";
    this.stop = null;
    this.tabs = h("div", { class: "tabs", role: "tablist" },
      h("a", { class: "tab", href: "#/schedules", dataset: { tab: "jobs" } }, "Scheduled functions"),
      h("a", { class: "tab", href: "#/schedules/crons", dataset: { tab: "crons" } }, "Crons"));
    this.body = h("div", { class: "schedules-body" });
    container.append(h("section", { class: "schedules" },
      h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Schedules"),
        h("div", { class: "muted" }, "Functions scheduled with ctx.scheduler, and the crons of functions/crons.py."))),
      this.tabs, this.body));
    this.show(ctx.route.rest);
  }

  destroy() {
    this.stop?.();
    if (SchedulesPage.current === this) SchedulesPage.current = null;
  }

  show(rest) {
    const tab = rest === "crons" ? "crons" : "jobs";
    for (const el of $$(".tab", this.tabs)) el.classList.toggle("active", el.dataset.tab === tab);
    this.stop?.();
    if (tab === "crons") this.showCrons(); else this.showJobs();
  }

  // -- jobs --------------------------------------------------------------------------------

  showJobs() {
    this.chips = h("div", { class: "chips" }, STATES.map(([state, label]) => h("button", {
      type: "button", class: `chip${state === this.state ? " active" : ""}`, dataset: { state },
      onclick: () => { this.state = state; this.showJobs(); } }, label)));
    this.jobs = h("div", { class: "grid-wrap" }, h("div", { class: "loading" }, "Loading…"));
    fill(this.body, this.chips, this.jobs);
    this.stop?.();
    const args = this.state ? { state: this.state, limit: 200 } : { limit: 200 };
    this.stop = this.client.onUpdate("_system/schedules:jobs", args, (jobs) => this.renderJobs(jobs),
      (error) => fill(this.jobs, problem(errorText(error))));
  }

  renderJobs(jobs) {
    if (!jobs.length) {
      fill(this.jobs, empty(this.state === "pending" ? "Nothing is waiting to run."
        : "No scheduled function in this state."));
      return;
    }
    fill(this.jobs, h("table", { class: "grid jobs" },
      h("thead", {}, h("tr", {}, ["Function", "State", "Scheduled for", "Finished", "Arguments", ""]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, jobs.map((job) => h("tr", { class: "job-row", dataset: { id: job.id, state: job.state } },
        h("td", { class: "mono" }, job.name, job.cron ? h("span", { class: "muted small" }, ` · cron ${job.cron}`) : ""),
        h("td", {}, stateBadge(job.state), job.error ? h("div", { class: "error-text small" }, job.error) : ""),
        h("td", { class: "nowrap", title: dateTime(job.scheduledTime) },
          relative(job.scheduledTime), h("div", { class: "muted small" }, dateTime(job.scheduledTime))),
        h("td", { class: "nowrap muted" }, job.completedTime ? relative(job.completedTime) : "—"),
        h("td", { class: "mono small args" }, job.args),
        h("td", { class: "row-actions" }, job.state === "pending" ? this.cancelButton(job) : ""))))));
  }

  cancelButton(job) {
    const cell = h("span", { class: "cancel-cell" });
    const ask = h("button", { type: "button", class: "ghost danger small cancel-job", onclick: () => {
      fill(cell, h("span", { class: "small" }, "Cancel it? "),
        h("button", { type: "button", class: "danger small confirm-cancel", onclick: async (e) => {
          e.target.disabled = true;
          try {
            await this.client.mutation("_system/schedules:cancel", { id: job.id });
            this.ctx.toast(`Canceled ${job.name}`);
          } catch (error) {
            this.ctx.toast(errorText(error), "error");
            fill(cell, ask);
          }
        } }, "Yes, cancel"),
        h("button", { type: "button", class: "ghost small", onclick: () => fill(cell, ask) }, "No"));
    } }, "Cancel");
    cell.append(ask);
    return cell;
  }

  // -- crons -------------------------------------------------------------------------------

  showCrons() {
    const box = h("div", { class: "grid-wrap" }, h("div", { class: "loading" }, "Loading…"));
    fill(this.body, box);
    this.stop = this.client.onUpdate("_system/schedules:crons", {}, (crons) => {
      if (!crons.length) {
        fill(box, empty("No crons: declare them in functions/crons.py with Crons()."));
        return;
      }
      fill(box, h("table", { class: "grid crons" },
        h("thead", {}, h("tr", {}, ["Name", "Schedule", "Function", "Last run", "Next run", "Recent runs"]
          .map((t) => h("th", {}, t)))),
        h("tbody", {}, crons.map((cron) => h("tr", { class: "cron-row", dataset: { name: cron.name } },
          h("td", { class: "mono" }, cron.name),
          h("td", { class: "mono small" }, cron.schedule),
          h("td", { class: "mono" }, cron.function, h("div", { class: "muted small" }, cron.args)),
          h("td", { class: "nowrap" }, cron.lastRun ? relative(cron.lastRun) : "never"),
          h("td", { class: "nowrap", title: dateTime(cron.nextRun) }, relative(cron.nextRun)),
          h("td", {}, cron.history.length ? h("div", { class: "history" }, cron.history.map((run) =>
            h("span", { class: `history-dot state-${run.state}`, title: `${run.state} · ${dateTime(run.scheduledTime)}${run.error ? ` · ${run.error}` : ""}` })))
            : h("span", { class: "muted small" }, "no runs yet")))))));
    }, (error) => fill(box, problem(errorText(error))));
  }
}
