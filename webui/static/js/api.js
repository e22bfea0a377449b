// The one client of the appliance's HTTP API: the key kept in this browser, JSON requests whose
// error envelope becomes an ApiError with the server's message, server-sent event streams, blobs
// (generated images and audio need the key, so they are fetched, never linked) and uploads with progress.
import { signal } from "@preact/signals";

const KEY_STORAGE = "appliance.apiKey";

/** The saved API key ("" when none); pages that load data re-run when it changes. */
export const apiKey = signal(readKey());
/** Set when the server answered 401: the shell then asks for the key. Holds the server's message. */
export const keyRequest = signal(null);

function readKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ""; } catch { return ""; }
}

/** Keep `key` in this browser (an empty key forgets it). */
export function saveKey(key) {
  const value = (key || "").trim();
  if (value) localStorage.setItem(KEY_STORAGE, value); else localStorage.removeItem(KEY_STORAGE);
  apiKey.value = value;
  keyRequest.value = null;
}

/** An error the API answered (or a failure to reach it), carrying the envelope's fields. */
export class ApiError extends Error {
  constructor(message, { status = 0, type = "", code = null, param = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = param;
  }
}

export function authHeaders(extra = {}) {
  const key = apiKey.value;
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}

/** The ApiError for a non-2xx response: the envelope's message, else the status line. */
export async function errorOf(response) {
  let message = `${response.status} ${response.statusText || "error"}`.trim();
  let fields = {};
  try {
    const body = await response.json();
    const error = body && body.error;
    if (error && typeof error === "object" && error.message) {
      message = error.message;
      fields = { type: error.type, code: error.code, param: error.param };
    } else if (typeof error === "string") {
      message = error;
    } else if (body && typeof body.detail === "string") {
      message = body.detail;
    }
  } catch { /* not JSON: keep the status line */ }
  const err = new ApiError(message, { status: response.status, ...fields });
  if (response.status === 401) keyRequest.value = message;
  return err;
}

/**
 * fetch() with the key; throws ApiError on a non-2xx answer or a network failure, returns the Response.
 * `json` (an object) is sent as the JSON body; `body` is sent as is (FormData, Blob, string).
 */
export async function request(path, { method, json, body, headers = {}, signal } = {}) {
  const init = { method: method || (json !== undefined || body !== undefined ? "POST" : "GET"), signal };
  init.headers = authHeaders(headers);
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(`Could not reach the appliance (${err && err.message ? err.message : err})`);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** request() and the parsed JSON body (null for an empty body). */
export async function apiJSON(path, options = {}) {
  const response = await request(path, options);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const getJSON = (path, options = {}) => apiJSON(path, { ...options, method: "GET" });
export const postJSON = (path, json, options = {}) => apiJSON(path, { ...options, method: "POST", json });
export const deleteJSON = (path, options = {}) => apiJSON(path, { ...options, method: "DELETE" });

/** Server-sent events of a Response as {event, data} (data is the raw string), until the body ends. */
export async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let start = 0;
      let newline;
      while ((newline = buffer.indexOf("\n", start)) >= 0) {
        let line = buffer.slice(start, newline);
        start = newline + 1;
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          if (data.length) yield { event: event || "message", data: data.join("\n") };
          event = "";
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(line.slice(5).replace(/^ /, ""));
        } else if (line.startsWith("event:")) {
          event = line.slice(6).trim();
        }
      }
      buffer = buffer.slice(start);
    }
    if (data.length) yield { event: event || "message", data: data.join("\n") };
  } finally {
    reader.releaseLock();
  }
}

/**
 * POST `body` with stream: true and yield each JSON event until `[DONE]`. An `error` event (the
 * envelope sent mid-stream) is thrown as ApiError. Abort with `signal` (an AbortController's).
 */
export async function* streamJSON(path, body, { signal } = {}) {
  const response = await request(path, { json: { ...body, stream: true }, signal, headers: { Accept: "text/event-stream" } });
  for await (const { data } of sseEvents(response)) {
    if (data === "[DONE]") return;
    const parsed = JSON.parse(data);
    if (parsed && parsed.error) {
      const e = parsed.error;
      throw new ApiError(e.message || String(e), { type: e.type, code: e.code, param: e.param });
    }
    yield parsed;
  }
}

/** Chat completion chunks (stream_options.include_usage on, so the last chunk carries usage). */
export function streamChat(body, options = {}) {
  return streamJSON("/v1/chat/completions", { ...body, stream_options: { include_usage: true } }, options);
}

/** Fetch `url` with the key as a Blob and return an object URL (revoke it with URL.revokeObjectURL). */
export async function blobURL(url, options = {}) {
  const response = await request(url, { ...options, method: "GET" });
  return URL.createObjectURL(await response.blob());
}

/**
 * POST a FormData with upload progress (fetch has none): onProgress({loaded, total}) while sending.
 * Resolves to the parsed JSON answer; rejects with ApiError, or an AbortError when `signal` aborts.
 */
export function upload(path, form, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    if (onProgress) xhr.upload.onprogress = (e) => onProgress({ loaded: e.loaded, total: e.lengthComputable ? e.total : 0 });
    xhr.onload = () => {
      const response = new Response(xhr.responseText || null, { status: xhr.status, statusText: xhr.statusText });
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(xhr.responseText ? JSON.parse(xhr.responseText) : null);
      } else {
        errorOf(response).then(reject);
      }
    };
    xhr.onerror = () => reject(new ApiError("Could not reach the appliance (upload failed)"));
    xhr.onabort = () => reject(new DOMException("The upload was cancelled", "AbortError"));
    if (signal) {
      if (signal.aborted) { xhr.abort(); return; }
      signal.addEventListener("abort", () => xhr.abort(), { once: true });
    }
    xhr.send(form);
  });
}

/** True for the rejection an AbortController causes (a stop, a cancel): not an error to show. */
export const isAbort = (err) => !!err && err.name === "AbortError";
