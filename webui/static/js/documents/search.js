// Search inside a vector store: the query, the ranker (hybrid, keyword only, vector only) and the
// number of results; each ranked chunk shows its file, pages, section, excerpt and every score.
import { html } from "htm/preact";
import { useRef, useState } from "preact/hooks";
import { postJSON } from "../api.js";
import { ErrorMessage } from "../ui/errors.js";
import { formatNumber } from "../ui/widgets.js";

const RANKERS = [
  ["hybrid", "Hybrid (keywords + vectors)"],
  ["keyword", "Keywords only"],
  ["vector", "Vectors only"],
];
const COUNTS = [5, 10, 20, 50];
const EXCERPT = 600;  // characters shown before "Show all"

function pagesOf(hit) {
  if (hit.page_start == null) return null;
  return hit.page_end != null && hit.page_end !== hit.page_start ? `Pages ${hit.page_start}–${hit.page_end}` : `Page ${hit.page_start}`;
}

function Excerpt({ text }) {
  const [open, setOpen] = useState(false);
  const long = text.length > EXCERPT;
  return html`<blockquote class="hit-text">${open || !long ? text : `${text.slice(0, EXCERPT)}…`}</blockquote>
    ${long ? html`<button type="button" class="small" aria-expanded=${open} onClick=${() => setOpen(!open)}>
      ${open ? "Show less" : "Show all"}</button>` : null}`;
}

function Hit({ hit, rank }) {
  const scores = hit.scores || {};
  const text = (hit.content || []).map((c) => c.text).join("\n");
  const pages = pagesOf(hit);
  return html`<li class="hit" data-testid="hit">
    <div class="hit-head">
      <span class="hit-rank" aria-hidden="true">${rank}</span>
      <strong class="hit-file">${hit.filename}</strong>
      ${pages ? html`<span class="hit-page" data-testid="hit-page">${pages}</span>` : null}
    </div>
    ${hit.heading_path ? html`<p class="hit-section"><span class="visually-hidden">Section: </span>${hit.heading_path}</p>` : null}
    <dl class="hit-scores">
      <div><dt>Score</dt><dd data-score="score">${formatNumber(hit.score, 3)}</dd></div>
      <div><dt>Keyword rank</dt><dd data-score="keyword_rank">${scores.keyword_rank ?? "–"}</dd></div>
      <div><dt>Vector rank</dt><dd data-score="vector_rank">${scores.vector_rank ?? "–"}</dd></div>
      <div><dt>Cosine</dt><dd data-score="cosine">${scores.cosine == null ? "–" : formatNumber(scores.cosine, 3)}</dd></div>
      ${scores.rerank != null ? html`<div><dt>Rerank</dt><dd data-score="rerank">${formatNumber(scores.rerank, 3)}</dd></div>` : null}
    </dl>
    <${Excerpt} text=${text} />
  </li>`;
}

function Summary({ page }) {
  const r = page.retrieval || {};
  if (!page.data.length) {
    const why = r.status === "no_relevant_context"
      ? `no passage is relevant enough (${r.candidates ?? 0} considered, ${r.below_floor ?? 0} below the relevance floor)`
      : "nothing matched";
    return html`<p role="status" class="muted">No results: ${why}.</p>`;
  }
  return html`<p role="status" class="muted">${page.data.length} result${page.data.length === 1 ? "" : "s"}
    ${r.candidates != null ? ` of ${r.candidates} candidates` : ""}${r.embedding_model ? ` · ${r.embedding_model}` : ""}</p>`;
}

export function SearchPanel({ storeId }) {
  const [query, setQuery] = useState("");
  const [ranker, setRanker] = useState("hybrid");
  const [count, setCount] = useState(10);
  const [state, setState] = useState({ page: null, error: null, busy: false });
  const controller = useRef(null);
  const search = async (e) => {
    e.preventDefault();
    if (!query.trim()) return;
    if (controller.current) controller.current.abort();
    const own = (controller.current = new AbortController());
    setState((s) => ({ ...s, busy: true, error: null }));
    try {
      const page = await postJSON(`/v1/vector_stores/${encodeURIComponent(storeId)}/search`, {
        query, max_num_results: count, ranking_options: { ranker },
      }, { signal: own.signal });
      setState({ page, error: null, busy: false });
    } catch (err) {
      if (!own.signal.aborted) setState({ page: null, error: err, busy: false });
    }
  };
  return html`<section class="card" aria-labelledby="search-heading">
    <h2 id="search-heading">Search</h2>
    <form class="doc-search" role="search" onSubmit=${search}>
      <div class="field grow">
        <label for="doc-query">Search this store</label>
        <input type="search" id="doc-query" value=${query} onInput=${(e) => setQuery(e.currentTarget.value)}
          placeholder="A question, words or an error code" />
      </div>
      <div class="field">
        <label for="doc-ranker">Ranking</label>
        <select id="doc-ranker" value=${ranker} onChange=${(e) => setRanker(e.currentTarget.value)}>
          ${RANKERS.map(([value, label]) => html`<option key=${value} value=${value}>${label}</option>`)}
        </select>
      </div>
      <div class="field">
        <label for="doc-count">Results</label>
        <select id="doc-count" value=${count} onChange=${(e) => setCount(Number(e.currentTarget.value))}>
          ${COUNTS.map((n) => html`<option key=${n} value=${n}>${n}</option>`)}
        </select>
      </div>
      <button type="submit" class="primary" disabled=${state.busy || !query.trim()}>${state.busy ? "Searching…" : "Search"}</button>
    </form>
    <${ErrorMessage} error=${state.error} context="Search failed" />
    ${state.page ? html`<${Summary} page=${state.page} />
      <ol class="hits" aria-label="Search results">
        ${state.page.data.map((hit, i) => html`<${Hit} key=${`${hit.file_id}:${hit.chunk_id}`} hit=${hit} rank=${i + 1} />`)}
      </ol>` : null}
  </section>`;
}
