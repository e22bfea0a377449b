// Light and dark themes: the saved choice ("light", "dark" or "system") in this browser; "system"
// follows prefers-color-scheme, live. The page's <head> applies it before first paint too.
import { signal } from "@preact/signals";

const THEME_STORAGE = "appliance.theme";
const media = window.matchMedia("(prefers-color-scheme: dark)");

/** The user's choice: "system", "light" or "dark". */
export const themeChoice = signal(readChoice());

function readChoice() {
  try {
    const saved = localStorage.getItem(THEME_STORAGE);
    return saved === "light" || saved === "dark" ? saved : "system";
  } catch { return "system"; }
}

function apply() {
  const choice = themeChoice.value;
  const dark = choice === "dark" || (choice === "system" && media.matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}

export function setTheme(choice) {
  themeChoice.value = choice;
  if (choice === "system") localStorage.removeItem(THEME_STORAGE); else localStorage.setItem(THEME_STORAGE, choice);
  apply();
}

export function watchTheme() {
  media.addEventListener("change", apply);
  apply();
}
