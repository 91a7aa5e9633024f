// DOM, formatting and chart helpers shared by the dashboard's pages (no framework).

/** h("div", {class: "x", onclick: fn, dataset: {id: 1}}, "text", child, [more]) -> Element */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element with attributes. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) if (child) el.append(child);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---- formatting -------------------------------------------------------------------------

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** 14:03:22.123 */
export function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Nov 30, 14:03:22 */
export function dateTime(ms) {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  const day = d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  return `${day}, ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "in 5 min", "3 s ago", "2 h ago" */
export function relative(ms) {
  if (ms === null || ms === undefined) return "—";
  const seconds = (ms - Date.now()) / 1000;
  const abs = Math.abs(seconds);
  if (abs < 1) return "just now";
  const [s, min, hours] = [Math.round(abs), Math.round(abs / 60), Math.round(abs / 3600)];
  const text = s < 60 ? `${s} s` : min < 60 ? `${min} min` : hours < 24 ? `${hours} h`
    : `${Math.round(abs / 86400)} d`;
  return seconds > 0 ? `in ${text}` : `${text} ago`;
}

/** 0.42 ms, 12 ms, 1.3 s */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

export function count(n) {
  return Number(n ?? 0).toLocaleString("en-US", { maximumFractionDigits: 1 });
}

export function bytes(n) {
  const value = Number(n ?? 0);
  if (value < 1024) return `${value} B`;
  if (value < 1024 ** 2) return `${(value / 1024).toFixed(1)} KiB`;
  if (value < 1024 ** 3) return `${(value / 1024 ** 2).toFixed(1)} MiB`;
  return `${(value / 1024 ** 3).toFixed(2)} GiB`;
}

/** The message of an error from the server or the client, for people. */
export function errorText(error) {
  if (error === null || error === undefined) return "Something went wrong";
  const message = String(error.message ?? error)
    .replace(/^\[CONVEX [^\]]*\] /, "")      // the official client's "[CONVEX M(path)] "
    .replace(/^\[Request ID: [^\]]*\] /, "")
    .replace(/\s*Called by client$/, "");
  return message || "Something went wrong";
}

// ---- small components ---------------------------------------------------------------------

const KIND_LETTER = { query: "Q", mutation: "M", action: "A", httpAction: "H" };

export function kindBadge(kind) {
  return h("span", { class: `kind kind-${kind}`, title: kind }, KIND_LETTER[kind] ?? "?");
}

export function stateBadge(state) {
  return h("span", { class: `state state-${state}` }, state);
}

/** A box that says what went wrong, in place of what could not be shown. */
export function problem(text, title = "Could not load this") {
  return h("div", { class: "problem", role: "alert" },
    h("strong", {}, title), h("span", {}, text));
}

export function empty(text) {
  return h("div", { class: "empty" }, text);
}

/** JSON text with strings, numbers and keys marked for color. */
export function jsonView(text) {
  const pre = h("pre", { class: "json" });
  const pattern = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    pre.append(text.slice(last, match.index));
    const [whole, str, colon, word, num] = match;
    if (str) {
      pre.append(h("span", { class: colon ? "j-key" : "j-str" }, str));
      if (colon) pre.append(colon);
    } else if (word) pre.append(h("span", { class: "j-lit" }, word));
    else if (num) pre.append(h("span", { class: "j-num" }, num));
    last = match.index + whole.length;
  }
  pre.append(text.slice(last));
  return pre;
}

/** A line chart of `values` (numbers; null leaves a gap) as a small SVG. */
export function sparkline(values, { width = 240, height = 48, className = "" } = {}) {
  const svg = s("svg", { class: `spark ${className}`, viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "none", role: "img" });
  const points = values.map((v, i) => [i, v]).filter(([, v]) => v !== null && v !== undefined);
  if (points.length < 2) {
    svg.append(s("line", { x1: 0, y1: height - 1, x2: width, y2: height - 1, class: "spark-base" }));
    return svg;
  }
  const max = Math.max(...points.map(([, v]) => v), 1e-9);
  const x = (i) => (i / (values.length - 1)) * width;
  const y = (v) => height - 2 - (v / max) * (height - 6);
  const line = points.map(([i, v], n) => `${n ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
  const area = `${line}L${x(points[points.length - 1][0]).toFixed(1)},${height}L${x(points[0][0]).toFixed(1)},${height}Z`;
  svg.append(s("path", { d: area, class: "spark-area" }), s("path", { d: line, class: "spark-line" }));
  return svg;
}

/** Dots of recent call durations (ok: accent, failed: red) on a time axis. */
export function latencyChart(recent, { width = 520, height = 120 } = {}) {
  const svg = s("svg", { class: "latency", viewBox: `0 0 ${width} ${height}`, role: "img" });
  if (!recent.length) return svg;
  const times = recent.map(([t]) => t);
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const max = Math.max(...recent.map(([, d]) => d), 0.001);
  const x = (t) => (t1 === t0 ? width / 2 : 8 + ((t - t0) / (t1 - t0)) * (width - 16));
  const y = (d) => height - 14 - (d / max) * (height - 26);
  svg.append(s("line", { x1: 0, y1: height - 12, x2: width, y2: height - 12, class: "axis" }));
  svg.append(s("text", { x: 4, y: 10, class: "axis-label" }, document.createTextNode(duration(max))));
  for (const [t, d, ok] of recent) {
    const dot = s("circle", { cx: x(t).toFixed(1), cy: y(d).toFixed(1), r: 3, class: ok ? "dot" : "dot dot-fail" });
    dot.append(s("title", {}, document.createTextNode(`${duration(d)} · ${clock(t)}`)));
    svg.append(dot);
  }
  return svg;
}

const PLACEHOLDER = { string: "", number: 0.0, bigint: 0, boolean: false, null: null,
  array: [], object: {}, record: {}, any: null, id: "" };

/** A value to start typing from, for one validator's JSON. */
function placeholderOf(validator) {
  if (validator?.type === "literal") return validator.value;
  if (validator?.type === "union") return placeholderOf(validator.value[0]);
  if (validator?.type === "object") return skeletonOf(validator);
  return PLACEHOLDER[validator?.type] ?? null;
}

/** A placeholder object for a table's or a function's fields, from a validator's JSON. */
export function skeletonOf(validator) {
  const out = {};
  if (validator?.type !== "object") return out;
  for (const [name, spec] of Object.entries(validator.value)) {
    if (!spec.optional) out[name] = placeholderOf(spec.fieldType);
  }
  return out;
}
