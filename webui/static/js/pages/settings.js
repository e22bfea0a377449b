// Settings: the API key kept in this browser and the theme.
import { html } from "htm/preact";
import { themeChoice, setTheme } from "../theme.js";
import { KeyForm } from "../ui/key.js";
import { PageHeader } from "../ui/widgets.js";

const THEMES = [
  { value: "system", label: "Follow the system" },
  { value: "light", label: "Light" },
  { value: "dark", label: "Dark" },
];

export default function SettingsPage() {
  return html`<${PageHeader} title="Settings" />
    <section class="card" aria-labelledby="key-heading">
      <h2 id="key-heading">API key</h2>
      <p class="muted">Sent as <code>Authorization: Bearer</code> with every request; kept only in this browser.</p>
      <${KeyForm} />
    </section>
    <section class="card" aria-labelledby="theme-heading">
      <h2 id="theme-heading">Theme</h2>
      <fieldset class="choices">
        <legend class="visually-hidden">Theme</legend>
        ${THEMES.map((t) => html`<label key=${t.value} class="choice">
          <input type="radio" name="theme" value=${t.value} checked=${themeChoice.value === t.value}
            onChange=${() => setTheme(t.value)} />
          ${t.label}
        </label>`)}
      </fieldset>
    </section>`;
}
