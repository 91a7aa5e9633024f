// Tiny DOM helpers shared by the app's modules (no framework).

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

export const $ = (selector, root = document) => root.querySelector(selector);

/** "just now", "5 min ago", "3 h ago", else a date. */
export function timeAgo(ms) {
  const seconds = Math.max(0, (Date.now() - ms) / 1000);
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(ms).toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

export function clockTime(ms) {
  return new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

/** A readable message for an error from the server (ConvexError data or message). */
export function errorText(error) {
  const data = error?.data;
  if (typeof data === "string") return data;
  if (data && typeof data === "object") {
    return data.message ?? data.error ?? Object.entries(data)
      .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
  }
  return String(error?.message ?? error)
    .replace(/^\[CONVEX [^\]]*\] /, "")      // the official client's "[CONVEX M(path)] "
    .replace(/^\[Request ID: [^\]]*\] /, "")
    .replace(/\s*Called by client$/, "")
    .replace(/^Uncaught \w+: /, "");
}

/** Show `text` in an inline error element (or hide it when text is empty). */
export function showError(el, text) {
  el.textContent = text ?? "";
  el.hidden = !text;
}

/** Query results may be a bare array or a pagination result {page, isDone, continueCursor}. */
export function items(result) {
  if (Array.isArray(result)) return result;
  return result?.page ?? [];
}
