// How far a document has got, in words and as one number: the upload (bytes sent), then the
// server's ingest phases (queued, extracting pages, chunking, embedding chunks, indexing).

// Each step's share of one progress bar (0–100), in order; pages and chunks fill their step.
const STEPS = {
  uploading: [0, 20],
  attaching: [20, 20],
  queued: [20, 22],
  extracting: [22, 55],
  chunking: [55, 60],
  embedding: [60, 95],
  indexing: [95, 99],
};

const PHASE_NAMES = {
  queued: "Waiting to be indexed",
  extracting: "Reading pages",
  chunking: "Splitting into chunks",
  embedding: "Embedding chunks",
  indexing: "Indexing",
};

function part(done, total) {
  return total ? Math.min(1, Math.max(0, (done || 0) / total)) : 0;
}

/** The bar's value (0–100) for a step name and its numbers. */
export function percentOf(step, { loaded, total, progress } = {}) {
  if (step === "completed") return 100;
  const range = STEPS[step];
  if (!range) return 0;
  const [start, end] = range;
  let share = 0;
  if (step === "uploading") share = part(loaded, total);
  else if (step === "extracting" && progress) share = part(progress.pages_done, progress.pages_total);
  else if (step === "embedding" && progress) share = part(progress.chunks_done, progress.chunks_total);
  return Math.round(start + (end - start) * share);
}

/** The ingest phase of an in-progress file object, in words, with its pages or chunks. */
export function describePhase(progress) {
  if (!progress) return PHASE_NAMES.queued;
  const name = PHASE_NAMES[progress.phase] || progress.phase;
  if (progress.phase === "extracting" && progress.pages_total) {
    return `${name}: page ${progress.pages_done || 0} of ${progress.pages_total}`;
  }
  if (progress.phase === "embedding" && progress.chunks_total) {
    return `${name}: ${progress.chunks_done || 0} of ${progress.chunks_total}`;
  }
  if (progress.pages_total && progress.phase !== "queued") return `${name} (${progress.pages_total} pages)`;
  return name;
}

/** The step of a vector store file object: its phase while in progress, else its status. */
export function stepOf(file) {
  if (file.status === "in_progress") return (file.progress && file.progress.phase) || "queued";
  return file.status;
}

export const STATUS_LABELS = {
  in_progress: "In progress",
  completed: "Ready",
  failed: "Failed",
  cancelled: "Cancelled",
};
