// Uploads into a vector store: each file is sent to /v1/files (with upload progress), attached as a
// one-file batch (so it can be cancelled on its own) and followed through its ingest events until it
// is ready, failed or cancelled. A store's queue outlives the page, so leaving and coming back keeps
// the progress; a few uploads and event streams run at once (a browser holds 6 connections a host).
import { signal } from "@preact/signals";
import { deleteJSON, getJSON, isAbort, postJSON, request, sseEvents, upload } from "../api.js";
import { messageOf, showError } from "../ui/errors.js";
import { stepOf } from "./progress.js";

const PARALLEL_UPLOADS = 2;
const PARALLEL_STREAMS = 2;
const POLL_MS = 1000;
const MAX_FAILURES = 30;  // consecutive broken streams before giving up on following a file

/** A counting semaphore: at most `size` holders at once, the others wait in order. */
class Slots {
  constructor(size) {
    this.free = size;
    this.waiting = [];
  }

  acquire() {
    if (this.free > 0) { this.free -= 1; return Promise.resolve(); }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release() {
    const next = this.waiting.shift();
    if (next) next(); else this.free += 1;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** file id -> the name it was uploaded with (the vector store file object carries no name). */
export const fileNames = new Map();

const FINISHED = new Set(["completed", "failed", "cancelled"]);

/** The uploads of one vector store. `items` (a signal) is what the page shows. */
export class UploadQueue {
  constructor(storeId) {
    this.storeId = storeId;
    /** [{key, name, size, step, loaded, total, progress, status, error, chunks}] */
    this.items = signal([]);
    /** Bumped whenever a file is attached or settles: the file list reloads on it. */
    this.version = signal(0);
    this.jobs = new Map();
    this.uploads = new Slots(PARALLEL_UPLOADS);
    this.streams = new Slots(PARALLEL_STREAMS);
    this.nextKey = 1;
  }

  /** Queue every file of a FileList or array. */
  add(files) {
    for (const file of Array.from(files)) {
      const key = `u${this.nextKey++}`;
      const job = { key, file, controller: new AbortController(), cancelled: false, fileId: null, batchId: null };
      this.jobs.set(key, job);
      this.items.value = [...this.items.value, {
        key, name: file.name, size: file.size, step: "waiting", loaded: 0, total: file.size,
        progress: null, status: "in_progress", error: null, chunks: null,
      }];
      this.run(job);
    }
  }

  get active() {
    return this.items.value.some((item) => !FINISHED.has(item.status));
  }

  update(key, fields) {
    this.items.value = this.items.value.map((item) => (item.key === key ? { ...item, ...fields } : item));
  }

  settle(key, status, fields = {}) {
    this.update(key, { status, step: status, ...fields });
    this.version.value += 1;
  }

  async run(job) {
    const { key, file } = job;
    await this.uploads.acquire();
    try {
      if (job.cancelled) { this.settle(key, "cancelled"); return; }
      this.update(key, { step: "uploading" });
      const form = new FormData();
      form.append("purpose", "assistants");
      form.append("file", file, file.name);
      const uploaded = await upload("/v1/files", form, {
        signal: job.controller.signal,
        onProgress: ({ loaded, total }) => this.update(key, { loaded, total: total || file.size }),
      });
      job.fileId = uploaded.id;
      fileNames.set(uploaded.id, uploaded.filename);
      if (job.cancelled) {  // cancelled as the last bytes went: keep nothing
        await deleteJSON(`/v1/files/${encodeURIComponent(uploaded.id)}`).catch(() => {});
        this.settle(key, "cancelled");
        return;
      }
      this.update(key, { step: "attaching", loaded: file.size, total: file.size });
      const batch = await postJSON(`${this.base}/file_batches`, { file_ids: [uploaded.id] });
      job.batchId = batch.id;
      this.update(key, { step: "queued" });
      this.version.value += 1;
    } catch (err) {
      if (isAbort(err)) this.settle(key, "cancelled");
      else this.settle(key, "failed", { error: messageOf(err) });
      return;
    } finally {
      this.uploads.release();
    }
    if (job.cancelled) await this.cancelBatch(job);
    await this.follow(job);
  }

  get base() {
    return `/v1/vector_stores/${encodeURIComponent(this.storeId)}`;
  }

  /** Show the file's ingest as its events stream it; fall back to polling if the stream breaks. */
  async follow(job) {
    const url = `${this.base}/files/${encodeURIComponent(job.fileId)}`;
    await this.streams.acquire();
    let last = null;
    let failures = 0;
    try {
      for (;;) {
        try {
          const response = await request(`${url}/events`, { headers: { Accept: "text/event-stream" } });
          for await (const { data } of sseEvents(response)) {
            if (data === "[DONE]") break;
            last = JSON.parse(data);
            this.show(job.key, last);
          }
        } catch (err) {
          if (err && err.status === 404) { this.settle(job.key, "cancelled", { error: "The file was removed from the store" }); return; }
          // the stream broke (a restart, a proxy): ask once, then listen again, a bounded number of times
          failures += 1;
          if (failures > MAX_FAILURES) { this.settle(job.key, "failed", { error: `Lost track of the ingest: ${messageOf(err)}` }); return; }
          last = await getJSON(url).catch(() => last);
          if (last) this.show(job.key, last);
        }
        if (last && last.status !== "in_progress") break;
        await sleep(POLL_MS);
      }
    } finally {
      this.streams.release();
    }
    this.settle(job.key, last.status, {
      error: last.last_error ? last.last_error.message : null,
      chunks: last.chunk_count,
    });
  }

  show(key, file) {
    this.update(key, { step: stepOf(file), progress: file.progress || null });
  }

  async cancelBatch(job) {
    try {
      await postJSON(`${this.base}/file_batches/${encodeURIComponent(job.batchId)}/cancel`, {});
    } catch (err) {
      showError(err, `Could not cancel ${job.file.name}`);
    }
  }

  /** Stop one file: abort its upload, or cancel its ingest (its events then say "cancelled"). */
  async cancel(key) {
    const job = this.jobs.get(key);
    const item = this.items.value.find((i) => i.key === key);
    if (!job || !item || FINISHED.has(item.status) || job.cancelled) return;
    job.cancelled = true;
    this.update(key, { step: "cancelling" });
    if (job.batchId) await this.cancelBatch(job);
    else job.controller.abort();  // uploading: the XHR stops; waiting: run() sees the flag
  }

  /** Forget the finished files (ready, failed, cancelled) from the list. */
  clearFinished() {
    const kept = this.items.value.filter((item) => !FINISHED.has(item.status));
    for (const item of this.items.value) if (FINISHED.has(item.status)) this.jobs.delete(item.key);
    this.items.value = kept;
  }
}

const queues = new Map();  // store id -> its UploadQueue, kept while the page is away

/** The upload queue of a vector store (one per store for the life of the page). */
export function queueFor(storeId) {
  if (!queues.has(storeId)) queues.set(storeId, new UploadQueue(storeId));
  return queues.get(storeId);
}

/** Forget a deleted store's queue. */
export function dropQueue(storeId) {
  queues.delete(storeId);
}
