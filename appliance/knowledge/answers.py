"""Answers from documents: retrieved chunks as numbered sources in the latest user turn, and the
citations an answer carries back (which sources it was given, which `[n]` it used, where).

The latest user message is rewritten (a short instruction, the numbered sources, then its
question). A client sends that turn back in a follow-up as it wrote it, without the sources, which
would make the prompt differ from the previous one right there and the model's prefix cache start
over. So the server remembers each rewritten turn (`SourceMemory`, keyed by a hash of the
conversation up to it) and puts the same text back into the follow-up's history: the new prompt
then starts with the previous prompt and answer byte for byte and only the new turn is prefilled
(tests/bench/answers.py measures it). Remembered sources yield when they would leave no room for
the new turn's own. Sources that would not fit the context beside the history and the reply are
dropped lowest-ranked first.
When retrieval finds nothing above its floor there is no prompt at all: the answer says so plainly
(`NO_CONTEXT_ANSWER`), unless the caller asked the model to answer on its own (`fallback: "model"`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from appliance.knowledge.retrieval import Retrieval, SearchOptions

NO_CONTEXT_ANSWER = (
    "I could not find anything about this in the selected documents, so I cannot answer it from them."
)
NO_ROOM_ANSWER = (
    "The sources found for this question do not fit in this model's context beside the conversation; "
    "use a model with a longer context or start a new conversation."
)
INSTRUCTION = (
    "Answer the question using only the numbered sources below. After each statement, cite the source it "
    "comes from as [n]. If the sources do not contain the answer, say that they do not."
)
MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
DEFAULT_SOURCES = 5


@dataclass(frozen=True)
class Source:
    """One retrieved chunk as the model sees it: `[index]`, where it is from, and its text."""

    index: int
    file_id: str
    filename: str
    chunk_id: str
    page_start: int | None
    page_end: int | None
    heading_path: str | None
    text: str
    score: float
    vector_store_id: str
    attributes: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        parts = [self.filename]
        if self.page_start is not None:
            pages = (
                f"page {self.page_start}"
                if self.page_end in (None, self.page_start)
                else f"pages {self.page_start}-{self.page_end}"
            )
            parts.append(pages)
        if self.heading_path:
            parts.append(self.heading_path)
        return ", ".join(parts)

    def url(self) -> str:
        base = f"/v1/files/{self.file_id}/content"
        return f"{base}#page={self.page_start}" if self.page_start is not None else base

    def citation(self, cited: bool) -> dict[str, Any]:
        return {
            "index": self.index,
            "file_id": self.file_id,
            "filename": self.filename,
            "chunk_id": self.chunk_id,
            "vector_store_id": self.vector_store_id,
            "page_start": self.page_start,
            "page_end": self.page_end,
            "heading_path": self.heading_path,
            "text": self.text,
            "score": self.score,
            "url": self.url(),
            "cited": cited,
        }


@dataclass(frozen=True)
class FileSearch:
    """What to search for an answer: the `file_search` options of a request."""

    vector_store_ids: tuple[str, ...]
    max_num_results: int = DEFAULT_SOURCES
    filters: dict[str, Any] | None = None
    ranker: str = "auto"
    score_threshold: float = 0.0
    rerank_model: str | None = None  # None: the first store's own `rerank_model`, as search does
    fallback: str = "none"  # "none": say there is no context; "model": let the model answer without sources


def file_search_of(options: Any) -> FileSearch:
    """A request's `file_search` (chat extension or Responses tool fields) as FileSearch."""
    ranking = getattr(options, "ranking_options", None) or {}
    if not isinstance(ranking, Mapping):
        ranking = ranking.model_dump() if hasattr(ranking, "model_dump") else {}
    return FileSearch(
        vector_store_ids=tuple(options.vector_store_ids),
        max_num_results=options.max_num_results or DEFAULT_SOURCES,
        filters=options.filters if isinstance(options.filters, dict) or options.filters is None
        else options.filters.model_dump(),
        ranker=str(ranking.get("ranker") or "auto"),
        score_threshold=float(ranking.get("score_threshold") or 0.0),
        rerank_model=str(ranking["rerank_model"]) if ranking.get("rerank_model") else None,
        fallback=getattr(options, "fallback", "none") or "none",
    )


def sources_of(retrieval: Retrieval) -> list[Source]:
    sources = []
    for number, item in enumerate(retrieval.results, start=1):
        chunk = item.chunk
        sources.append(
            Source(
                index=number,
                file_id=chunk.file_id,
                filename=chunk.filename,
                chunk_id=str(chunk.chunk_id),
                page_start=chunk.page_start,
                page_end=chunk.page_end if chunk.page_end is not None else chunk.page_start,
                heading_path=" › ".join(chunk.heading_path) if chunk.heading_path else None,
                text=chunk.text,
                score=item.score,
                vector_store_id=chunk.store_id,
                attributes=dict(chunk.attributes or {}),
            )
        )
    return sources


async def retrieve(knowledge: Any, search: FileSearch, query: str) -> tuple[list[Source], Retrieval]:
    rerank_model = None
    if search.ranker != "none":  # as the search route: ranker "none" also turns the rerank off
        rerank_model = search.rerank_model or await _stores_rerank_model(knowledge, search.vector_store_ids)
    options = SearchOptions(
        max_results=search.max_num_results,
        filters=search.filters,
        ranker=search.ranker,
        score_threshold=search.score_threshold,
        rerank_model=rerank_model,
    )
    retrieval = await knowledge.search(list(search.vector_store_ids), [query], options)
    return sources_of(retrieval), retrieval


async def _stores_rerank_model(knowledge: Any, store_ids: Sequence[str]) -> str | None:
    """The cross-encoder the first of these stores was created with (`rerank_model`), if any."""
    for store_id in store_ids:
        store = await knowledge.run("get_store", store_id)
        if store.rerank_model:
            return str(store.rerank_model)
    return None


@dataclass(frozen=True)
class AnswerPlan:
    messages: list[dict[str, Any]]  # what the model is given
    sources: list[Source]  # the sources in that prompt, best first
    found: int  # how many retrieval returned before the context budget
    status: str  # "ok" | "no_relevant_context" | "sources_do_not_fit"
    refuse: bool  # answer NO_CONTEXT_ANSWER without calling the model

    def refusal(self) -> str:
        return NO_ROOM_ANSWER if self.status == "sources_do_not_fit" else NO_CONTEXT_ANSWER

    def retrieval(self) -> dict[str, Any]:
        return {"status": self.status, "sources_found": self.found, "sources_used": len(self.sources)}


class SourceMemory:
    """The user turns this server rewrote with sources, each under a hash of the model and the
    conversation up to and including that turn as the client sent it; the newest `capacity` kept."""

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self._turns: OrderedDict[str, str] = OrderedDict()

    @staticmethod
    def keys(model: str, messages: Sequence[Mapping[str, Any]]) -> list[str]:
        """One key per message: a hash chained over the model and every message up to it."""
        digest = hashlib.sha256(model.encode()).hexdigest()
        keys = []
        for message in messages:
            canonical = json.dumps(message, sort_keys=True, ensure_ascii=False, default=str)
            digest = hashlib.sha256(f"{digest}\n{canonical}".encode()).hexdigest()
            keys.append(digest)
        return keys

    def restore(self, model: str, messages: Sequence[Mapping[str, Any]], before: int) -> list[dict[str, Any]]:
        """The messages with every user turn before `before` that this server rewrote rewritten again."""
        out = [dict(message) for message in messages]
        for position, key in enumerate(self.keys(model, messages[:before])):
            content = self._turns.get(key)
            if content is not None and out[position].get("role") == "user":
                self._turns.move_to_end(key)
                out[position] = {**out[position], "content": content}
        return out

    def remember(self, model: str, messages: Sequence[Mapping[str, Any]], position: int, content: str) -> None:
        key = self.keys(model, messages[: position + 1])[-1]
        self._turns[key] = content
        self._turns.move_to_end(key)
        while len(self._turns) > self.capacity:
            self._turns.popitem(last=False)


async def plan_answer(
    knowledge: Any, text: Any, model: str, messages: Sequence[Mapping[str, Any]], search: FileSearch, reserve: int
) -> AnswerPlan:
    """Retrieve for the latest user turn and fit the sources into the context (dropping the
    lowest-ranked first) with `reserve` tokens left for the reply; earlier turns get back the
    sources this server gave them (see the module's docstring) when that leaves room."""
    latest = latest_user_text(messages)
    plain = [dict(message) for message in messages]
    if latest is None or not latest[1].strip():
        return AnswerPlan(plain, [], 0, "no_relevant_context", refuse=search.fallback != "model")
    position, question = latest
    sources, retrieval = await retrieve(knowledge, search, question)
    if not sources:
        return AnswerPlan(plain, [], 0, retrieval.status, refuse=search.fallback != "model")
    memory: SourceMemory | None = getattr(knowledge, "source_memory", None)
    histories = [plain]
    if memory is not None:
        restored = memory.restore(model, messages, position)
        if restored != plain:
            histories.insert(0, restored)
    for history in histories:
        fits = await text.largest_fitting(
            model, lambda n, h=history: with_sources(h, position, sources[:n]), len(sources), reserve
        )
        if fits:
            break
    used = sources[:fits]
    if not used:  # not even the best source fits beside the history and the reply
        return AnswerPlan(plain, [], len(sources), "sources_do_not_fit", refuse=search.fallback != "model")
    prompt = with_sources(history, position, used)
    if memory is not None:
        memory.remember(model, messages, position, prompt[position]["content"])
    return AnswerPlan(prompt, used, len(sources), "ok", refuse=False)


def latest_user_text(messages: Sequence[Mapping[str, Any]]) -> tuple[int, str] | None:
    """The position and text of the last user message (text parts joined), or None."""
    for position in range(len(messages) - 1, -1, -1):
        message = messages[position]
        if message.get("role") == "user":
            return position, _text(message.get("content"))
    return None


def with_sources(messages: Sequence[Mapping[str, Any]], position: int, sources: Sequence[Source]) -> list[dict[str, Any]]:
    """The messages with the user turn at `position` carrying the numbered sources; others untouched."""
    out = [dict(message) for message in messages]
    if not sources:
        return out
    question = _text(messages[position].get("content"))
    blocks = "\n\n".join(f"[{s.index}] {s.label()}\n{s.text}" for s in sources)
    out[position] = {**out[position], "content": f"{INSTRUCTION}\n\nSources:\n\n{blocks}\n\nQuestion: {question}"}
    return out


def cited_indexes(text: str, count: int) -> list[tuple[int, int, int]]:
    """(source index, start, end) of every `[n]` / `[n, m]` marker naming a source 1..count."""
    found = []
    for match in MARKER.finditer(text):
        for number in (int(part) for part in match.group(1).split(",")):
            if 1 <= number <= count:
                found.append((number, match.start(), match.end()))
    return found


def citations(text: str, sources: Sequence[Source]) -> list[dict[str, Any]]:
    used = {index for index, _, _ in cited_indexes(text, len(sources))}
    return [source.citation(source.index in used) for source in sources]


def url_annotations(text: str, sources: Sequence[Source]) -> list[dict[str, Any]]:
    """Chat completions' `url_citation` annotations, one per marker the answer wrote."""
    by_index = {source.index: source for source in sources}
    annotations = []
    for index, start, end in cited_indexes(text, len(sources)):
        source = by_index[index]
        annotations.append(
            {
                "type": "url_citation",
                "url_citation": {
                    "start_index": start,
                    "end_index": end,
                    "url": source.url(),
                    "title": source.label(),
                },
            }
        )
    return annotations


def file_citations(text: str, sources: Sequence[Source]) -> list[dict[str, Any]]:
    """The Responses API's `file_citation` annotations: one at each marker, and for every source the
    answer never marked, one at the end of the text, so each source given is visible to clients."""
    by_index = {source.index: source for source in sources}
    annotations = []
    marked: set[int] = set()
    for index, _, end in cited_indexes(text, len(sources)):
        source = by_index[index]
        marked.add(index)
        annotations.append({"type": "file_citation", "file_id": source.file_id, "filename": source.filename, "index": end})
    for source in sources:
        if source.index not in marked:
            annotations.append(
                {"type": "file_citation", "file_id": source.file_id, "filename": source.filename, "index": len(text)}
            )
    return annotations


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return "" if content is None else str(content)
