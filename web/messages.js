// How a chat message looks: its role, text (highlighted in search results) and attachments
// (images as previews, other files as download links; a pending one as "Uploading…").

import { clockTime, h } from "./dom.js";
import { highlight } from "./search.js";

const ROLE_NAMES = { user: "User", assistant: "Assistant", system: "System" };

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10240 ? 1 : 0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export const FILE_ICON = () => {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "file-icon");
  svg.setAttribute("aria-hidden", "true");
  svg.innerHTML = '<path d="M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8z"/>' +
    '<path d="M14 3v5h5"/>';
  return svg;
};

/** Attachments of a message: images as previews, other files as download links. */
function renderAttachments(attachments) {
  if (!attachments?.length) return null;
  return h("div", { class: "attachments" }, attachments.map((a) => {
    if (!a.url) {
      return h("span", { class: "attachment-file missing", title: "This file was deleted" },
        FILE_ICON(), h("span", { class: "attachment-name" }, a.name),
        h("span", { class: "attachment-size" }, "deleted"));
    }
    if (a.contentType.startsWith("image/")) {
      return h("a", { class: "attachment-image", href: a.url, target: "_blank", rel: "noopener",
        title: `${a.name} · ${formatSize(a.size)}` },
      h("img", { src: a.url, alt: a.name, loading: "lazy" }));
    }
    return h("a", { class: "attachment-file", href: a.url, download: a.name, target: "_blank",
      rel: "noopener", title: `Download ${a.name}` },
    FILE_ICON(), h("span", { class: "attachment-name" }, a.name),
    h("span", { class: "attachment-size" }, formatSize(a.size)));
  }));
}

function pendingAttachments(files) {
  if (!files?.length) return null;
  return h("div", { class: "attachments" }, files.map((f) => h("span",
    { class: "attachment-file" }, FILE_ICON(), h("span", { class: "attachment-name" }, f.name),
    h("span", { class: "attachment-size" }, "uploading…"))));
}

function body(content) {
  return content ? h("div", { class: "message-body" }, content) : null;
}

/** One message; with `query`, the words it matches are highlighted (search results). */
export function renderMessage(m, query = "") {
  if (m.pending) {
    return h("li", { class: `message ${m.role} pending` },
      m.role === "system" ? null : h("span", { class: "avatar", "aria-hidden": "true" },
        m.role === "user" ? "U" : "AI"),
      h("div", { class: "message-main" },
        h("div", { class: "message-head" }, h("span", { class: "message-role" },
          m.files.length ? "Uploading…" : "Sending…")),
        body(m.content), pendingAttachments(m.files)));
  }
  const time = m.createdAt ?? m._creationTime;
  const text = query ? highlight(m.content, query) : m.content;
  if (m.role === "system") {
    return h("li", { class: "message system", dataset: { id: m._id } },
      h("div", { class: "message-body" }, text), renderAttachments(m.attachments),
      h("time", { title: new Date(time).toLocaleString() }, clockTime(time)));
  }
  return h("li", { class: `message ${m.role}`, dataset: { id: m._id } },
    h("span", { class: "avatar", "aria-hidden": "true" }, m.role === "user" ? "U" : "AI"),
    h("div", { class: "message-main" },
      h("div", { class: "message-head" },
        h("span", { class: "message-role" }, ROLE_NAMES[m.role] ?? m.role),
        h("time", { title: new Date(time).toLocaleString() }, clockTime(time))),
      body(text), renderAttachments(m.attachments)));
}
