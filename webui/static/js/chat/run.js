// One answer: the chat completion request built from a conversation, streamed into a StreamSink,
// and what the message keeps afterwards (text, citations, token figures, stopped or failed).
import { isAbort, streamChat } from "../api.js";
import { messageOf, showError } from "../ui/errors.js";

const SLICE_MS = 8;

/** Resolve in a new task, so the browser can paint and handle input between bursts of chunks. */
function nextTask() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

/** The request body for `messages` (the conversation up to the question) under `options`. */
export function requestBody(messages, options) {
  const body = { model: options.model, messages: [] };
  if (options.system && options.system.trim()) body.messages.push({ role: "system", content: options.system });
  for (const m of messages) body.messages.push({ role: m.role, content: m.content });
  for (const key of ["temperature", "top_p", "max_tokens"]) {
    if (options[key] !== null && options[key] !== undefined && options[key] !== "") body[key] = options[key];
  }
  if (options.documents) body.file_search = { vector_store_ids: options.vector_store_ids };
  return body;
}

/**
 * Stream the answer to `body` into `sink`; onCitations(citations, retrieval) is called as soon as the
 * sources are known. Resolves (never rejects) to the fields the assistant message keeps.
 */
export async function streamAnswer(body, sink, { signal, onCitations }) {
  const started = performance.now();
  let slice = started;
  let first = null;
  let last = null;
  let usage = null;
  let citations = null;
  let retrieval = null;
  let finish = null;
  let error = null;
  let stopped = false;
  try {
    for await (const chunk of streamChat(body, { signal })) {
      if (chunk.citations) {
        citations = chunk.citations;
        retrieval = chunk.retrieval || retrieval;
        sink.setCitations(citations.length);
        if (onCitations) onCitations(citations, retrieval);
      }
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices && chunk.choices[0];
      if (!choice) continue;
      const piece = choice.delta && choice.delta.content;
      if (piece) {
        if (first === null) first = performance.now();
        last = performance.now();
        sink.push(piece);
      }
      if (choice.finish_reason) finish = choice.finish_reason;
      if (performance.now() - slice > SLICE_MS) { // a burst of chunks must not hold the main thread
        await nextTask();
        slice = performance.now();
      }
    }
  } catch (err) {
    if (isAbort(err)) {
      stopped = true;
    } else {
      error = messageOf(err);
      showError(err, "The model could not answer");
    }
  }
  const completion = usage ? usage.completion_tokens : sink.pieces;
  const seconds = first !== null && last !== null && last > first ? (last - first) / 1000 : null;
  const stats = {
    prompt_tokens: usage ? usage.prompt_tokens : null,
    completion_tokens: completion,
    first_token_ms: first !== null ? first - started : null,
    tokens_per_second: seconds && completion > 1 ? (completion - 1) / seconds : null,
  };
  return { content: sink.text, citations, retrieval, stats, finish_reason: finish, stopped, error };
}
