// The hash router: "#/<page>/<rest…>" picks a page from ROUTES, loaded on first visit (a page that
// fails to load shows its error, the others still work). Pages get the rest as `path` (an array).
import { signal } from "@preact/signals";

/** Every page, in the nav's order. `load` imports the page module (its default export renders it). */
export const ROUTES = [
  { id: "chat", label: "Chat", load: () => import("./pages/chat.js") },
  { id: "documents", label: "Documents", load: () => import("./pages/documents.js") },
  { id: "images", label: "Images", load: () => import("./pages/images.js") },
  { id: "audio", label: "Audio", load: () => import("./pages/audio.js") },
  { id: "models", label: "Models", load: () => import("./pages/models.js") },
  { id: "stores", label: "Stores", load: () => import("./pages/stores.js") },
  { id: "settings", label: "Settings", load: () => import("./pages/settings.js") },
  { id: "system", label: "System", load: () => import("./pages/system.js") },
];
export const DEFAULT_ROUTE = "chat";

/** Parse a location hash: {id, path} (unknown ids stay as given so the shell can say so). */
export function parseHash(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  return { id: parts[0] || DEFAULT_ROUTE, path: parts.slice(1) };
}

/** The current route, kept in step with location.hash. */
export const route = signal(parseHash(location.hash));

/** Go to `#/<id>/<path…>`. */
export function navigate(id, ...path) {
  location.hash = "#/" + [id, ...path].map(encodeURIComponent).join("/");
}

/** The href for a route, for links. */
export function href(id, ...path) {
  return "#/" + [id, ...path].map(encodeURIComponent).join("/");
}

export function watchRoute() {
  window.addEventListener("hashchange", () => { route.value = parseHash(location.hash); });
}
