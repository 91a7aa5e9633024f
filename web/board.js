// The work-order board of one session: columns by status, create, move, details.

import { $, errorText, h, items, showError, timeAgo } from "./dom.js";

// The status machine (functions/workOrders.py NEXT): only these moves are offered.
export const NEXT = {
  draft: ["submitted", "canceled"],
  submitted: ["accepted", "canceled"],
  accepted: ["running", "canceled"],
  running: ["succeeded", "failed", "canceled"],
  succeeded: [],
  failed: [],
  canceled: [],
};
export const STATUSES = Object.keys(NEXT);
const LABELS = {
  draft: "Draft", submitted: "Submitted", accepted: "Accepted", running: "Running",
  succeeded: "Succeeded", failed: "Failed", canceled: "Canceled",
};
const ACTIONS = {
  submitted: "Submit", accepted: "Accept", running: "Start", succeeded: "Succeeded",
  failed: "Failed", canceled: "Cancel",
};
const LINK_KINDS = { github_issue: "Issue", pr: "Pull request", commit: "Commit" };
const WORKFLOWS = ["code-change", "bugfix", "review", "research", "release"];

/** "key=value" lines -> {key: value}; throws with the line number on a malformed line. */
export function parseArgs(text) {
  const args = {};
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const eq = line.indexOf("=");
    const key = eq > 0 ? line.slice(0, eq).trim() : "";
    if (!key) throw new Error(`Args line ${index + 1}: expected key=value, got “${line}”`);
    if (key.startsWith("$")) throw new Error(`Args line ${index + 1}: a key may not start with $`);
    args[key] = line.slice(eq + 1).trim();
  });
  return args;
}

export class Board {
  constructor(client, root, { userId, onCount }) {
    this.client = client;
    this.root = root;
    this.userId = userId;
    this.onCount = onCount;
    this.sessionId = null;
    this.orders = null;
    this.pending = new Set();     // work order ids with a move in flight
    this.stop = null;
    this.detail = null;           // {id, stop, order}
    this.build();
  }

  build() {
    this.error = h("p", { class: "inline-error board-error", role: "alert", hidden: true });
    this.columns = h("div", { class: "board-columns" });
    this.createDialog = this.buildCreateDialog();
    this.detailDialog = h("dialog", { class: "sheet detail", onclose: () => this.closeDetail() });
    this.root.append(
      h("div", { class: "board-toolbar" },
        h("p", { class: "board-hint" }, "Move work orders through their lifecycle. "
          + "Only legal next steps are offered."),
        h("button", { class: "btn btn-primary", type: "button", id: "new-work-order",
          onclick: () => this.openCreate() }, "+ New work order")),
      this.error, this.columns, this.createDialog, this.detailDialog);
  }

  setSession(sessionId) {
    this.stop?.();
    this.stop = null;
    this.sessionId = sessionId;
    this.orders = null;
    showError(this.error, "");
    if (this.detailDialog.open) this.detailDialog.close();
    if (this.createDialog.open) this.createDialog.close();
    this.onCount(0);
    this.render();
    if (sessionId === null) return;
    this.stop = this.client.onUpdate("workOrders:listBySession", { sessionId },
      (result) => { this.orders = items(result); this.render(); },
      (error) => showError(this.error, `Could not load work orders: ${errorText(error)}`));
  }

  // ---- the board -------------------------------------------------------------------------

  render() {
    const orders = this.orders ?? [];
    const open = orders.filter((o) => NEXT[o.status]?.length).length;
    this.onCount(open);
    this.columns.classList.toggle("loading", this.orders === null);
    this.columns.replaceChildren(...STATUSES.map((status) => {
      const cards = orders.filter((o) => o.status === status)
        .sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0));
      return h("section", { class: `column status-${status}`, dataset: { status } },
        h("header", { class: "column-head" },
          h("span", { class: "status-dot", "aria-hidden": "true" }),
          h("h3", {}, LABELS[status]),
          h("span", { class: "column-count" }, String(cards.length))),
        cards.length
          ? h("ul", { class: "cards" }, cards.map((o) => this.renderCard(o)))
          : h("p", { class: "column-empty" }, this.orders === null ? "Loading…" : "Nothing here"));
    }));
    if (this.orders !== null && orders.length === 0) {
      this.columns.prepend(h("div", { class: "board-empty empty" },
        h("p", { class: "empty-title" }, "No work orders yet"),
        h("p", {}, "Create one to hand a task to a workflow; it starts as a draft.")));
    }
  }

  renderCard(order) {
    return h("li", { class: "card", dataset: { id: order._id, status: order.status } },
      h("button", { class: "card-open", type: "button", onclick: () => this.openDetail(order._id) },
        h("span", { class: "card-title" }, order.title || "Untitled"),
        h("span", { class: "card-meta" },
          h("span", { class: "chip" }, order.workflowType),
          h("span", {}, `${order.requestedBy} · ${timeAgo(order.updatedAt ?? order.createdAt)}`))),
      this.renderMoves(order, "card-actions"));
  }

  /** Buttons for the legal next statuses only (`big` in the details sheet). */
  renderMoves(order, cls, big = false) {
    const next = NEXT[order.status] ?? [];
    if (!next.length) return h("div", { class: `${cls} final` }, "Final status");
    const busy = this.pending.has(order._id);
    return h("div", { class: cls }, next.map((status, i) => h("button", {
      type: "button",
      class: `btn ${big ? "" : "btn-small"} ${status === "canceled" ? "btn-quiet"
        : big && i === 0 ? "btn-primary" : "btn-soft"} to-${status}`,
      dataset: { next: status },
      disabled: busy,
      title: `Move to ${LABELS[status]}`,
      onclick: (event) => { event.stopPropagation(); this.move(order, status); },
    }, big && status === "canceled" ? "Cancel work order" : ACTIONS[status])));
  }

  async move(order, status) {
    this.pending.add(order._id);
    this.render();
    this.renderDetail();
    showError(this.error, "");
    try {
      await this.client.mutation("workOrders:updateStatus", { workOrderId: order._id, status });
    } catch (error) {
      const text = `Couldn’t move “${order.title}” to ${LABELS[status]}: ${errorText(error)}`;
      showError(this.error, text);
      if (this.detail?.id === order._id) this.detail.error = text;
    } finally {
      this.pending.delete(order._id);
      this.render();
      this.renderDetail();
    }
  }

  // ---- create ----------------------------------------------------------------------------

  buildCreateDialog() {
    const field = (label, control, hint) => h("label", { class: "field" },
      h("span", { class: "field-label" }, label), control,
      hint ? h("span", { class: "field-hint" }, hint) : null);
    const form = h("form", { class: "sheet-body", method: "dialog", onsubmit: (e) => this.create(e) },
      h("header", { class: "sheet-head" }, h("h2", {}, "New work order"),
        h("button", { type: "button", class: "icon-btn", "aria-label": "Close",
          onclick: () => this.createDialog.close() }, "×")),
      field("Title", h("input", { name: "title", required: true, maxlength: "200",
        placeholder: "Fix flaky login test", autocomplete: "off" })),
      field("Workflow type", h("input", { name: "workflowType", required: true, list: "workflow-types",
        value: WORKFLOWS[0], autocomplete: "off" })),
      h("datalist", { id: "workflow-types" }, WORKFLOWS.map((w) => h("option", { value: w }))),
      field("Prompt", h("textarea", { name: "prompt", required: true, rows: "4",
        placeholder: "What should be done, and how do we know it is done?" })),
      h("div", { class: "field-row" },
        field("Target repo", h("input", { name: "targetRepo", placeholder: "org/repo",
          autocomplete: "off" }), "Optional"),
        field("Branch", h("input", { name: "targetBranch", placeholder: "main",
          autocomplete: "off" }), "Defaults to main")),
      field("Args", h("textarea", { name: "args", rows: "3", class: "mono",
        placeholder: "priority=high\nretries=2" }), "One key=value per line"),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "submit" }),
        "Submit right away (skip the draft)"),
      h("p", { class: "inline-error", hidden: true, role: "alert" }),
      h("footer", { class: "sheet-foot" },
        h("button", { type: "button", class: "btn btn-quiet",
          onclick: () => this.createDialog.close() }, "Cancel"),
        h("button", { type: "submit", class: "btn btn-primary" }, "Create work order")));
    return h("dialog", { class: "sheet create" }, form);
  }

  openCreate() {
    const form = $("form", this.createDialog);
    showError($(".inline-error", form), "");
    this.createDialog.showModal();
    form.title.focus();
  }

  async create(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const errorEl = $(".inline-error", form);
    const value = (name) => form[name].value.trim();
    let args;
    try {
      args = parseArgs(form.args.value);
    } catch (error) {
      showError(errorEl, error.message);
      return;
    }
    const request = {
      sessionId: this.sessionId, title: value("title"), workflowType: value("workflowType"),
      prompt: value("prompt"), requestedBy: this.userId(),
      status: form.submit.checked ? "submitted" : "draft",
    };
    if (Object.keys(args).length) request.args = args;
    if (value("targetRepo")) {
      request.target = { targetRepo: value("targetRepo"), targetBranch: value("targetBranch") || "main" };
    } else if (value("targetBranch")) {
      showError(errorEl, "A branch needs a target repo.");
      return;
    }
    const button = $("button[type=submit]", form);
    button.disabled = true;
    showError(errorEl, "");
    try {
      await this.client.mutation("workOrders:create", request);
      form.reset();
      form.workflowType.value = WORKFLOWS[0];
      this.createDialog.close();
    } catch (error) {
      showError(errorEl, `Could not create the work order: ${errorText(error)}`);
    } finally {
      button.disabled = false;
    }
  }

  // ---- details (workOrders:get, live while open) ------------------------------------------

  openDetail(id) {
    this.closeDetail();
    this.detail = { id, order: null, error: "", stop: null };
    this.detail.stop = this.client.onUpdate("workOrders:get", { workOrderId: id },
      (order) => { if (this.detail?.id === id) { this.detail.order = order; this.renderDetail(); } },
      (error) => {
        if (this.detail?.id !== id) return;
        this.detail.error = errorText(error);
        this.renderDetail();
      });
    this.renderDetail();
    if (!this.detailDialog.open) this.detailDialog.showModal();
  }

  closeDetail() {
    this.detail?.stop?.();
    this.detail = null;
    if (this.detailDialog.open) this.detailDialog.close();
  }

  renderDetail() {
    const detail = this.detail;
    if (!detail) return;
    const o = detail.order;
    const close = h("button", { type: "button", class: "icon-btn", "aria-label": "Close",
      onclick: () => this.closeDetail() }, "×");
    if (!o) {
      this.detailDialog.replaceChildren(h("div", { class: "sheet-body" },
        h("header", { class: "sheet-head" }, h("h2", {}, "Work order"), close),
        detail.error ? h("p", { class: "inline-error" }, detail.error) : h("p", { class: "muted" }, "Loading…")));
      return;
    }
    const args = Object.entries(o.args ?? {});
    const typed = $(".link-form", this.detailDialog);  // keep a half-typed link across updates
    const kept = typed ? { kind: typed.kind.value, value: typed.value.value } : null;
    this.detailDialog.replaceChildren(h("div", { class: "sheet-body" },
      h("header", { class: "sheet-head" },
        h("div", {},
          h("span", { class: `badge status-${o.status}` }, LABELS[o.status] ?? o.status),
          h("h2", {}, o.title || "Untitled")),
        close),
      h("dl", { class: "facts" },
        h("dt", {}, "Workflow"), h("dd", {}, h("span", { class: "chip" }, o.workflowType)),
        h("dt", {}, "Requested by"), h("dd", {}, o.requestedBy),
        h("dt", {}, "Created"), h("dd", {}, new Date(o.createdAt).toLocaleString()),
        h("dt", {}, "Updated"), h("dd", {}, timeAgo(o.updatedAt)),
        h("dt", {}, "Target"), h("dd", { class: "detail-target" }, o.target
          ? h("code", {}, `${o.target.targetRepo} @ ${o.target.targetBranch}`)
          : h("span", { class: "muted" }, "None"))),
      h("h3", { class: "sub" }, "Prompt"),
      h("p", { class: "prompt" }, o.prompt),
      h("h3", { class: "sub" }, "Args"),
      args.length
        ? h("table", { class: "args" }, h("tbody", {}, args.map(([k, v]) =>
          h("tr", {}, h("th", {}, k), h("td", {}, typeof v === "string" ? v : JSON.stringify(v,
            (_key, x) => (typeof x === "bigint" ? x.toString() : x)))))))
        : h("p", { class: "muted" }, "No args"),
      h("h3", { class: "sub" }, "Links"),
      this.renderLinks(o),
      detail.error ? h("p", { class: "inline-error", role: "alert" }, detail.error) : null,
      h("footer", { class: "sheet-foot moves" },
        h("span", { class: "moves-label" }, NEXT[o.status]?.length ? "Next step" : ""),
        this.renderMoves(o, "detail-actions", true))));
    const form = $(".link-form", this.detailDialog);
    if (kept && form) {
      form.kind.value = kept.kind;
      form.value.value = kept.value;
    }
  }

  renderLinks(o) {
    const links = o.links ?? [];
    const form = h("form", { class: "link-form", onsubmit: (e) => this.addLink(e, o._id) },
      h("select", { name: "kind", "aria-label": "Link kind" },
        Object.entries(LINK_KINDS).map(([k, label]) => h("option", { value: k }, label))),
      h("input", { name: "value", required: true, placeholder: "URL or commit SHA",
        autocomplete: "off" }),
      h("button", { class: "btn btn-small btn-soft", type: "submit" }, "Add"));
    const list = links.length
      ? h("ul", { class: "links" }, links.map((l) => h("li", {},
        h("span", { class: "chip" }, LINK_KINDS[l.kind] ?? l.kind),
        /^https?:\/\//.test(l.value)
          ? h("a", { href: l.value, target: "_blank", rel: "noopener noreferrer" }, l.value)
          : h("code", {}, l.value))))
      : h("p", { class: "muted" }, "No links yet");
    return h("div", {}, list, form);
  }

  async addLink(event, workOrderId) {
    event.preventDefault();
    const form = event.currentTarget;
    const value = form.value.value.trim();
    if (!value) return;
    try {
      await this.client.mutation("workOrderLinks:add", { workOrderId, kind: form.kind.value, value });
      form.reset();
      $(".link-form", this.detailDialog)?.reset();  // the sheet may have been re-rendered
    } catch (error) {
      if (this.detail) this.detail.error = `Could not add the link: ${errorText(error)}`;
      this.renderDetail();
    }
  }
}
