// The UI shell: keeps the API key in this browser and lists the server's models.
"use strict";

const KEY_STORAGE = "appliance.apiKey";

function apiHeaders() {
  const key = localStorage.getItem(KEY_STORAGE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function loadModels() {
  const status = document.getElementById("models-status");
  const table = document.getElementById("models");
  const body = table.querySelector("tbody");
  status.classList.remove("error");
  status.textContent = "Loading…";
  try {
    const response = await fetch("/v1/models", { headers: apiHeaders() });
    const payload = await response.json();
    if (!response.ok) {
      throw new Error(payload.error ? payload.error.message : `HTTP ${response.status}`);
    }
    body.replaceChildren();
    for (const model of payload.data) {
      const row = document.createElement("tr");
      for (const text of [model.id, model.backend || "", (model.usecases || []).join(", ")]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      }
      body.appendChild(row);
    }
    table.hidden = payload.data.length === 0;
    status.textContent = payload.data.length ? `${payload.data.length} model(s)` : "No models yet: put a model file or a YAML config in the models path.";
  } catch (err) {
    table.hidden = true;
    status.classList.add("error");
    status.textContent = `Could not list models: ${err.message}`;
  }
}

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = document.getElementById("api-key").value.trim();
  if (key) localStorage.setItem(KEY_STORAGE, key); else localStorage.removeItem(KEY_STORAGE);
  loadModels();
});

loadModels();
