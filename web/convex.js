// The official Convex browser client (npm `convex` 1.48.0, pinned in web/package-lock.json).
//
// The server serves the package's own browser bundle at /_convex/browser.bundle.js: one classic
// script that defines the global `convex` (index.html loads it before the app's modules, so no
// bundler and no import map are needed). This module hands its classes to the app as imports.

const bundle = globalThis.convex;
if (!bundle?.ConvexClient) {
  const text = "The Convex client did not load (/_convex/browser.bundle.js): run scripts/setup.";
  const banner = document.getElementById("conn-banner");
  if (banner) {
    banner.hidden = false;
    banner.textContent = text;
  }
  throw new Error(text);
}

export const { ConvexClient, ConvexHttpClient } = bundle;
