// Data: every table with its count, a table's documents newest first by any index range,
// one document as JSON, and insert / edit / delete (real mutations: validated against the
// schema and pushed to every subscriber; a refused edit shows the validator's message).

import { $$, count, dateTime, empty, errorText, fill, h, jsonView, problem,
  skeletonOf } from "./dom.js";

const OPS = [["", "any"], ["eq", "="], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"],
  ["between", "between"]];
const WIRE = { gt: ">", gte: ">=", lt: "<", lte: "<=" };

export function mount(container, ctx) {
  const page = new DataPage(container, ctx);
  return () => page.destroy();
}

export function update(route) {
  DataPage.current?.show(route.rest);
}

/** Filter text as the server wants it: JSON, or a bare word taken as a string. */
function asJson(text) {
  const trimmed = text.trim();
  try {
    JSON.parse(trimmed);
    return trimmed;
  } catch {
    return JSON.stringify(trimmed);
  }
}

class DataPage {
  static current = null;

  constructor(container, ctx) {
    DataPage.current = this;
    this.ctx = ctx;
    this.client = ctx.client;
    this.tables = null;
    this.table = null;
    this.pageSize = 50;
    this.cursors = [null];
    this.filter = { index: "by_creation_time", rows: {} };
    this.applied = null;  // {eq, lower, upper} sent to the server
    this.rows = [];
    this.selected = null;
    this.drawerMode = null;
    this.stopDocs = null;
    this.build(container);
    this.stopTables = this.client.onUpdate("_system/data:tables", {},
      (tables) => this.onTables(tables),
      (error) => fill(this.list, problem(errorText(error))));
    this.show(ctx.route.rest);
  }

  destroy() {
    this.stopTables();
    this.stopDocs?.();
    if (DataPage.current === this) DataPage.current = null;
  }

  build(container) {
    this.list = h("div", { class: "subnav-list" }, h("div", { class: "loading" }, "Loading tables…"));
    this.header = h("div", { class: "page-head" });
    this.filterBar = h("form", { class: "filter-bar", onsubmit: (e) => { e.preventDefault(); this.apply(); } });
    this.grid = h("div", { class: "grid-wrap" });
    this.pager = h("div", { class: "pager" });
    this.drawer = h("aside", { class: "drawer", hidden: true, "aria-label": "Document" });
    this.main = h("section", { class: "data-main" }, this.header, this.filterBar, this.grid,
      this.pager);
    container.append(h("div", { class: "split" },
      h("div", { class: "subnav" }, h("div", { class: "subnav-head" }, "Tables"), this.list),
      this.main, this.drawer));
  }

  // -- tables ------------------------------------------------------------------------------

  onTables(tables) {
    this.tables = tables;
    if (!tables.length) {
      fill(this.list, empty("This app has no tables yet."));
      fill(this.main, empty("Declare tables in schema/ and they appear here."));
      return;
    }
    fill(this.list, tables.map((t) => h("button", {
      class: `subnav-item${t.name === this.table?.name ? " active" : ""}`, type: "button",
      dataset: { table: t.name }, onclick: () => this.ctx.navigate(`#/data/${encodeURIComponent(t.name)}`),
    }, h("span", { class: "name" }, t.name),
    h("span", { class: "badge" }, `${count(t.count)}${t.more ? "+" : ""}`))));
    if (!this.table) {
      this.show(this.pending ?? "");
    } else {
      const fresh = tables.find((t) => t.name === this.table.name);
      if (fresh) {
        this.table = fresh;
        this.renderHeader();
      }
    }
  }

  show(name) {
    if (!this.tables) {
      this.pending = name;
      return;
    }
    const table = this.tables.find((t) => t.name === name) ?? (name ? null : this.tables[0]);
    if (!table) {
      fill(this.header, problem(`There is no table “${name}” in the schema.`, "Table not found"));
      return;
    }
    for (const el of $$(".subnav-item", this.list)) {
      el.classList.toggle("active", el.dataset.table === table.name);
    }
    if (this.table?.name === table.name) return;
    this.table = table;
    this.filter = { index: "by_creation_time", rows: {} };
    this.applied = { eq: [], lower: null, upper: null };
    this.cursors = [null];
    this.closeDrawer();
    this.renderHeader();
    this.renderFilter();
    this.subscribeDocs();
  }

  renderHeader() {
    const t = this.table;
    fill(this.header,
      h("div", {},
        h("h1", {}, t.name),
        h("div", { class: "muted" }, `${count(t.count)}${t.more ? "+" : ""} documents`),
        h("div", { class: "muted" }, h("code", { title: t.type }, t.type))),
      h("div", { class: "actions" },
        h("button", { id: "show-schema", type: "button", class: "ghost", onclick: () => this.openSchema() }, "Schema"),
        h("button", { id: "add-doc", type: "button", class: "primary", onclick: () => this.openInsert() }, "+ Add document")));
  }

  // -- filter ------------------------------------------------------------------------------

  renderFilter() {
    const index = this.table.indexes.find((i) => i.name === this.filter.index) ?? this.table.indexes[0];
    const select = h("select", { id: "index", "aria-label": "Index", onchange: (e) => {
      this.filter = { index: e.target.value, rows: {} };
      this.renderFilter();
    } }, this.table.indexes.map((i) => h("option", { value: i.name, selected: i.name === index.name },
      `${i.name} (${i.fields.join(", ")})`)));
    const rows = index.fields.map((field) => this.fieldRow(field));
    this.filterError = h("div", { id: "filter-error", class: "form-error", role: "alert", hidden: true });
    fill(this.filterBar,
      h("div", { class: "filter-index" }, h("label", {}, "Index"), select),
      h("div", { class: "filter-fields" }, rows),
      h("div", { class: "filter-actions" },
        h("button", { id: "apply-filter", type: "submit", class: "secondary" }, "Apply"),
        h("button", { id: "clear-filter", type: "button", class: "ghost", onclick: () => {
          this.filter = { index: "by_creation_time", rows: {} };
          this.renderFilter();
          this.apply();
        } }, "Clear")),
      this.filterError);
  }

  fieldRow(field) {
    const row = this.filter.rows[field] ?? { op: "", a: "", b: "" };
    this.filter.rows[field] = row;
    const second = h("input", { class: "val val-b", placeholder: "to (<)", value: row.b,
      hidden: row.op !== "between", oninput: (e) => { row.b = e.target.value; } });
    return h("div", { class: "filter-field", dataset: { field } },
      h("span", { class: "field-name" }, field),
      h("select", { class: "op", "aria-label": `${field} operator`, onchange: (e) => {
        row.op = e.target.value;
        second.hidden = row.op !== "between";
      } }, OPS.map(([value, label]) => h("option", { value, selected: value === row.op }, label))),
      h("input", { class: "val val-a", placeholder: "JSON value", value: row.a,
        oninput: (e) => { row.a = e.target.value; } }),
      second);
  }

  /** The filter as {index, eq, lower, upper}, or an error message. */
  compile() {
    const index = this.table.indexes.find((i) => i.name === this.filter.index);
    const eq = [];
    let lower = null;
    let upper = null;
    let ranged = null;
    for (const field of index.fields) {
      const { op, a, b } = this.filter.rows[field] ?? { op: "" };
      if (!op) continue;
      if (ranged !== null) {
        return `Only one range is allowed, on the field after the “=” fields (${ranged} has one).`;
      }
      if (index.fields.indexOf(field) !== eq.length) {
        return `Filter in index order: set “=” on ${index.fields[eq.length]} before ${field}.`;
      }
      if (op === "eq") {
        eq.push(asJson(a));
        continue;
      }
      ranged = field;
      if (op === "between") {
        lower = { op: ">=", value: asJson(a) };
        upper = { op: "<", value: asJson(b) };
      } else if (op === "gt" || op === "gte") {
        lower = { op: WIRE[op], value: asJson(a) };
      } else {
        upper = { op: WIRE[op], value: asJson(a) };
      }
    }
    return { index: index.name, eq, lower, upper };
  }

  apply() {
    const compiled = this.compile();
    if (typeof compiled === "string") {
      this.showFilterError(compiled);
      return;
    }
    this.showFilterError("");
    this.applied = compiled;
    this.cursors = [null];
    this.subscribeDocs();
  }

  showFilterError(text) {
    if (!this.filterError) return;
    this.filterError.textContent = text;
    this.filterError.hidden = !text;
  }

  // -- documents ---------------------------------------------------------------------------

  subscribeDocs() {
    this.stopDocs?.();
    const { index = "by_creation_time", eq = [], lower = null, upper = null } = this.applied ?? {};
    const args = { table: this.table.name, index, eq, numItems: this.pageSize,
      cursor: this.cursors[this.cursors.length - 1] };
    if (lower) args.lower = lower;
    if (upper) args.upper = upper;
    fill(this.grid, h("div", { class: "loading" }, "Loading documents…"));
    this.stopDocs = this.client.onUpdate("_system/data:documents", args,
      (result) => this.onDocs(result),
      (error) => {
        this.showFilterError(errorText(error));
        fill(this.grid, problem(errorText(error), "These documents cannot be shown"));
        fill(this.pager);
      });
  }

  onDocs(result) {
    this.showFilterError("");
    this.rows = result.page;
    this.renderGrid();
    this.renderPager(result);
    if (this.selected && this.drawerMode === "view") this.renderView();
  }

  columns() {
    const seen = new Set(this.table.fields);
    for (const row of this.rows) for (const key of Object.keys(row.fields)) seen.add(key);
    return [...seen];
  }

  renderGrid() {
    if (!this.rows.length) {
      const filtered = (this.applied?.eq?.length || this.applied?.lower || this.applied?.upper);
      fill(this.grid, empty(filtered ? "No documents match this filter." : "No documents in this table yet."));
      return;
    }
    const columns = this.columns();
    fill(this.grid, h("table", { class: "grid docs" },
      h("thead", {}, h("tr", {}, h("th", {}, "_id"), columns.map((c) => h("th", {}, c)),
        h("th", {}, "_creationTime"))),
      h("tbody", {}, this.rows.map((row) => h("tr", {
        class: `doc-row${row.id === this.selected ? " selected" : ""}`, dataset: { id: row.id },
        tabindex: "0", onclick: () => this.select(row.id),
        onkeydown: (e) => { if (e.key === "Enter") this.select(row.id); },
      }, h("td", { class: "mono id" }, row.id),
      columns.map((c) => h("td", { class: row.fields[c] === undefined ? "unset" : "" },
        row.fields[c] ?? "unset")),
      h("td", { class: "muted nowrap" }, dateTime(row.creationTime)))))));
  }

  renderPager(result) {
    const pageNo = this.cursors.length;
    fill(this.pager,
      h("button", { id: "newer", type: "button", class: "ghost", disabled: pageNo === 1, onclick: () => {
        this.cursors.pop();
        this.subscribeDocs();
      } }, "← Newer"),
      h("span", { class: "page-info muted" }, `Page ${pageNo} · ${this.rows.length} shown`),
      h("button", { id: "older", type: "button", class: "ghost", disabled: result.isDone, onclick: () => {
        this.cursors.push(result.continueCursor);
        this.subscribeDocs();
      } }, "Older →"),
      h("label", { class: "page-size muted" }, "Per page ",
        h("select", { id: "page-size", onchange: (e) => {
          this.pageSize = Number(e.target.value);
          this.cursors = [null];
          this.subscribeDocs();
        } }, [25, 50, 100].map((n) => h("option", { value: n, selected: n === this.pageSize }, n)))));
  }

  // -- the drawer --------------------------------------------------------------------------

  select(id) {
    this.selected = id;
    for (const el of $$(".doc-row", this.grid)) el.classList.toggle("selected", el.dataset.id === id);
    this.drawerMode = "view";
    this.renderView();
  }

  closeDrawer() {
    this.selected = null;
    this.drawerMode = null;
    this.drawer.hidden = true;
    for (const el of $$(".doc-row.selected", this.grid)) el.classList.remove("selected");
  }

  drawerShell(title, ...body) {
    this.drawer.hidden = false;
    fill(this.drawer, h("div", { class: "drawer-head" }, h("h2", {}, title),
      h("button", { class: "ghost icon-button", type: "button", "aria-label": "Close",
        onclick: () => this.closeDrawer() }, "×")), h("div", { class: "drawer-body" }, body));
  }

  renderView() {
    const row = this.rows.find((r) => r.id === this.selected);
    if (!row) {
      this.drawerShell("Document", empty("This document is not on this page any more (deleted, or moved by a filter)."));
      return;
    }
    this.drawerShell("Document",
      h("div", { class: "kv" }, h("span", {}, "_id"), h("code", { class: "doc-id" }, row.id),
        h("span", {}, "created"), h("span", {}, dateTime(row.creationTime))),
      jsonView(row.json),
      h("div", { class: "drawer-actions" },
        h("button", { id: "edit-doc", type: "button", class: "primary", onclick: () => this.openEdit(row) }, "Edit"),
        h("button", { id: "delete-doc", type: "button", class: "danger ghost", onclick: () => this.confirmDelete(row) }, "Delete")));
  }

  editor(title, text, save, label) {
    this.drawerMode = "edit";
    const area = h("textarea", { id: "doc-editor", class: "code", spellcheck: false, rows: 18 }, text);
    const error = h("div", { id: "doc-error", class: "form-error", role: "alert", hidden: true });
    const button = h("button", { id: "save-doc", type: "submit", class: "primary" }, label);
    const form = h("form", { class: "editor", onsubmit: async (e) => {
      e.preventDefault();
      button.disabled = true;
      error.hidden = true;
      try {
        await save(area.value);
      } catch (failure) {
        error.textContent = errorText(failure);
        error.hidden = false;
      } finally {
        button.disabled = false;
      }
    } }, h("p", { class: "muted small" }, "JSON: 5 is an int64, 5.0 a float64; ",
      h("code", {}, '{"$bytes": "…"}'), " for bytes. The schema validates it on save."),
    area, error, h("div", { class: "drawer-actions" }, button,
      h("button", { id: "cancel-edit", type: "button", class: "ghost", onclick: () => {
        if (this.selected) this.select(this.selected); else this.closeDrawer();
      } }, "Cancel")));
    this.drawerShell(title, form);
    area.focus();
  }

  openEdit(row) {
    this.editor("Edit document", row.editable, async (text) => {
      await this.client.mutation("_system/data:replace", { id: row.id, json: text });
      this.ctx.toast("Document saved");
      this.select(row.id);
    }, "Save");
  }

  openInsert() {
    this.selected = null;
    const validator = JSON.parse(this.table.validator);
    const skeleton = JSON.stringify(skeletonOf(validator), null, 2);
    this.editor(`New document in ${this.table.name}`, skeleton, async (text) => {
      const id = await this.client.mutation("_system/data:insert", { table: this.table.name, json: text });
      this.ctx.toast("Document added");
      this.select(id);
    }, "Insert");
  }

  confirmDelete(row) {
    this.drawerShell("Delete document",
      h("p", {}, "Delete ", h("code", {}, row.id), "? Subscribers see it go at once; this cannot be undone."),
      h("div", { class: "drawer-actions" },
        h("button", { id: "confirm-delete", type: "button", class: "danger", onclick: async (e) => {
          e.target.disabled = true;
          try {
            await this.client.mutation("_system/data:delete", { ids: [row.id] });
            this.ctx.toast("Document deleted");
            this.closeDrawer();
          } catch (error) {
            this.ctx.toast(errorText(error), "error");
            e.target.disabled = false;
          }
        } }, "Delete"),
        h("button", { type: "button", class: "ghost", onclick: () => this.select(row.id) }, "Keep it")));
  }

  openSchema() {
    this.selected = null;
    this.drawerMode = "schema";
    const t = this.table;
    this.drawerShell(`Schema of ${t.name}`,
      h("h3", {}, "Document"), h("code", { class: "type" }, t.type),
      h("h3", {}, "Indexes"),
      h("table", { class: "grid compact" }, h("tbody", {}, t.indexes.map((i) =>
        h("tr", {}, h("td", { class: "mono" }, i.name), h("td", {}, i.fields.join(", ")))))),
      h("h3", {}, "Validator"), jsonView(t.validator));
  }
}
