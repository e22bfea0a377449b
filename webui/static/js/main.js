// Boots the UI: theme, router, the report of otherwise unhandled errors, then the shell.
import { html, render } from "htm/preact";
import { App } from "./app.js";
import { watchRoute } from "./router.js";
import { watchTheme } from "./theme.js";
import { catchUnhandled } from "./ui/errors.js";

watchTheme();
watchRoute();
catchUnhandled();
const root = document.getElementById("app");
root.textContent = ""; // the boot message
render(html`<${App} />`, root);
