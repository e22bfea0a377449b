// Conversations kept in this browser (localStorage: one entry per conversation plus an index),
// with search over titles and messages, and export/import as JSON.

const INDEX = "appliance.chats";
const PREFIX = "appliance.chat.";
const DEFAULTS = "appliance.chat.defaults";
export const EXPORT_FORMAT = "appliance.conversations.v1";

export const DEFAULT_OPTIONS = {
  model: "",
  system: "",
  temperature: 0.7,
  top_p: 1,
  max_tokens: 1024,
  documents: false,
  vector_store_ids: [],
};

function read(key, fallback) {
  try {
    const raw = localStorage.getItem(key);
    return raw ? JSON.parse(raw) : fallback;
  } catch { return fallback; }
}

export function newId(prefix = "c") {
  return `${prefix}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

/** The options a new conversation starts with: the last ones used. */
export function defaultOptions() {
  return { ...DEFAULT_OPTIONS, ...read(DEFAULTS, {}) };
}

export function rememberOptions(options) {
  localStorage.setItem(DEFAULTS, JSON.stringify(options));
}

export function newConversation() {
  const now = Date.now();
  return { id: newId(), title: "New chat", created: now, updated: now, options: defaultOptions(), messages: [] };
}

/** [{id, title, updated}] newest first. */
export function listConversations() {
  return read(INDEX, []).sort((a, b) => b.updated - a.updated);
}

export function loadConversation(id) {
  return read(PREFIX + id, null);
}

export function titleOf(conversation) {
  const first = conversation.messages.find((m) => m.role === "user");
  return first ? first.content.replace(/\s+/g, " ").trim().slice(0, 60) || "New chat" : "New chat";
}

/** Save (a conversation with no message is not kept). Throws when the browser's storage is full. */
export function saveConversation(conversation) {
  if (!conversation.messages.length) return;
  const stored = { ...conversation, title: titleOf(conversation), updated: Date.now() };
  const messages = stored.messages.map(({ pending, ...m }) => m); // eslint-disable-line no-unused-vars
  try {
    localStorage.setItem(PREFIX + stored.id, JSON.stringify({ ...stored, messages }));
  } catch (err) {
    throw new Error(`This browser's storage is full; export and delete old conversations (${err.message})`);
  }
  const index = read(INDEX, []).filter((c) => c.id !== stored.id);
  index.push({ id: stored.id, title: stored.title, updated: stored.updated });
  localStorage.setItem(INDEX, JSON.stringify(index));
}

export function deleteConversation(id) {
  localStorage.removeItem(PREFIX + id);
  localStorage.setItem(INDEX, JSON.stringify(read(INDEX, []).filter((c) => c.id !== id)));
}

/** Conversations whose title or any message contains `query` (case-insensitive). */
export function searchConversations(query) {
  const needle = query.trim().toLowerCase();
  const all = listConversations();
  if (!needle) return all;
  return all.filter((entry) => {
    if (entry.title.toLowerCase().includes(needle)) return true;
    const conversation = loadConversation(entry.id);
    return !!conversation && conversation.messages.some((m) => (m.content || "").toLowerCase().includes(needle));
  });
}

/** Every conversation as one JSON document. */
export function exportConversations() {
  const conversations = listConversations().map((c) => loadConversation(c.id)).filter(Boolean);
  return JSON.stringify({ format: EXPORT_FORMAT, exported: new Date().toISOString(), conversations }, null, 2);
}

/**
 * Import conversations from an export (or a bare array of them). Same ids are replaced.
 * Returns how many were imported; throws with a readable message on a file that is not an export.
 */
export function importConversations(text) {
  let data;
  try { data = JSON.parse(text); } catch (err) { throw new Error(`Not a JSON file: ${err.message}`); }
  const list = Array.isArray(data) ? data : data && data.conversations;
  if (!Array.isArray(list)) throw new Error("Not a conversations export: it has no \"conversations\" list");
  let count = 0;
  for (const item of list) {
    if (!item || !Array.isArray(item.messages)) throw new Error("A conversation in the file has no messages list");
    const messages = item.messages
      .filter((m) => m && typeof m.content === "string" && ["user", "assistant", "system"].includes(m.role))
      .map((m) => ({ ...m, id: m.id || newId("m") }));
    saveConversation({
      id: typeof item.id === "string" && item.id ? item.id : newId(),
      created: Number(item.created) || Date.now(),
      options: { ...DEFAULT_OPTIONS, ...(item.options || {}) },
      messages,
    });
    count += 1;
  }
  return count;
}
