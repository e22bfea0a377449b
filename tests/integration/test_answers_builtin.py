"""Answers with citations end to end on the built-in models only: a real server process on an EMPTY
models path answers with SmolLM2-135M-Instruct through chat completions, the Responses API and the
Messages API (official `openai` and `anthropic` clients), and from a PDF uploaded through the vector
stores API: citations with the page of the fact, `[n]` markers mapped to `url_citation`s (whole and
streamed), `file_citation`s in a Responses message, the plain refusal when nothing is relevant, and
sources trimmed to a small context.

Greedy decoding, few tokens. Assertions are about structure, pages, counts and consistency between
the text and its annotations, never about what a 135M model says.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from appliance.knowledge.answers import NO_CONTEXT_ANSWER
from fixtures.document_server import DocumentServer
from fixtures.documents import write_text_pdf
from inference.catalog.builtin_models import BUILTIN_MODELS

MODEL = "smollm2-135m-instruct"
SMALL = "smollm2-small-context"  # the same weights with a 600-token context, added during the run
SMALL_YAML = f"name: {SMALL}\nbackend: llama-cpp\ncontext_size: 600\nparameters:\n  model: builtin://{MODEL}\n"
MARKER_PAGE = 3
MARKER = "The Zephyr calibration passphrase is QUARTZ-7731."
QUESTION = "What is the Zephyr calibration passphrase?"
UNRELATED = "Who won the 1966 football world cup final?"
BROAD = "error code means clear"  # every page's fact holds these words: each page is a source
GREEDY = {"temperature": 0}
MARKERS = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")

pytestmark = pytest.mark.skipif(
    not all(model.installed() for model in BUILTIN_MODELS), reason="the built-in models' packages are not installed"
)


class Library:
    def __init__(self, server: DocumentServer, root: Path, store_id: str, file_id: str) -> None:
        self.server = server
        self.root = root
        self.store_id = store_id
        self.file_id = file_id

    def file_search(self, **options: Any) -> dict[str, Any]:
        return {"vector_store_ids": [self.store_id], **options}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    root = tmp_path_factory.mktemp("answers-builtin")
    (root / "models").mkdir()  # empty: the built-ins are all there is
    pdf = write_text_pdf(root, "manual.pdf", pages=5, marker=MARKER, marker_page=MARKER_PAGE)
    server = DocumentServer(root, root / "data", root / "models", env={"HF_HUB_OFFLINE": "1"})
    try:
        store = server.sdk.vector_stores.create(name="manual")
        attached = server.sdk.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=("manual.pdf", pdf.read_bytes())
        )
        assert attached.status == "completed", attached.last_error
        yield Library(server, root, store.id, attached.id)
    finally:
        server.stop()
    server.assert_no_server_errors()


def markers(text: str, count: int) -> list[tuple[int, int, int]]:
    """(source number, start, end) of every `[n]` / `[n, m]` in `text` naming one of `count` sources."""
    found = []
    for match in MARKERS.finditer(text):
        for number in (int(part) for part in match.group(1).split(",")):
            if 1 <= number <= count:
                found.append((number, match.start(), match.end()))
    return found


def assert_cites_the_marker_page(citations: list[dict[str, Any]], file_id: str) -> None:
    assert [c["index"] for c in citations] == list(range(1, len(citations) + 1)), citations
    page = [c for c in citations if c["file_id"] == file_id and MARKER in c["text"]]
    assert page, [(c["filename"], c["page_start"]) for c in citations]
    assert (page[0]["page_start"], page[0]["page_end"]) == (MARKER_PAGE, MARKER_PAGE)
    assert page[0]["filename"] == "manual.pdf" and page[0]["url"] == f"/v1/files/{file_id}/content#page={MARKER_PAGE}"


def assert_annotations_match_the_text(
    text: str, annotations: list[dict[str, Any]], citations: list[dict[str, Any]]
) -> None:
    """Every `[n]` the model wrote is one url_citation at its place, pointing at source n's page."""
    found = markers(text, len(citations))
    assert len(annotations) == len(found), (text, annotations)
    for (number, start, end), annotation in zip(found, annotations, strict=True):
        assert annotation["type"] == "url_citation"
        cited = annotation["url_citation"]
        assert (cited["start_index"], cited["end_index"]) == (start, end)
        assert cited["url"] == citations[number - 1]["url"] and "#page=" in cited["url"]
    assert {c["index"] for c in citations if c["cited"]} == {number for number, _, _ in found}


def test_the_builtin_answers_on_every_api(library: Library) -> None:
    sdk = library.server.sdk
    assert {MODEL, "all-minilm-l6-v2"} <= {m.id for m in sdk.models.list()}
    ask = [{"role": "user", "content": "Name three colours."}]
    chat = sdk.chat.completions.create(model=MODEL, messages=ask, max_tokens=8, **GREEDY)
    assert chat.choices[0].message.content.strip() and chat.choices[0].finish_reason in ("stop", "length")
    assert chat.usage.prompt_tokens > 5 and 0 < chat.usage.completion_tokens <= 8

    response = sdk.responses.create(model=MODEL, input="Name three colours.", max_output_tokens=8, **GREEDY)
    assert response.status in ("completed", "incomplete") and response.output_text.strip()
    assert 0 < response.usage.output_tokens <= 8

    claude = anthropic.Anthropic(base_url=library.server.server.base, api_key="none", max_retries=0, timeout=120)
    message = claude.messages.create(model=MODEL, max_tokens=8, messages=ask, extra_body=GREEDY)
    assert message.stop_reason in ("end_turn", "max_tokens") and message.content[0].text.strip()
    assert 0 < message.usage.output_tokens <= 8


def test_chat_answers_from_the_pdf_with_the_page(library: Library) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": 24,
        "file_search": library.file_search(),
        **GREEDY,
    }
    reply = library.server.http.post("/chat/completions", json=body).json()
    assert reply["retrieval"]["status"] == "ok" and reply["retrieval"]["sources_used"] >= 1
    citations = reply["citations"]
    assert len(citations) == reply["retrieval"]["sources_used"] <= reply["retrieval"]["sources_found"]
    assert_cites_the_marker_page(citations, library.file_id)
    message = reply["choices"][0]["message"]
    assert message["content"].strip() and message["content"] != NO_CONTEXT_ANSWER
    assert_annotations_match_the_text(message["content"], message["annotations"], citations)
    assert reply["usage"]["prompt_tokens"] > 100  # the source's text was in the prompt
    assert reply["timings"]["prompt_ms"] > 0

    # The same through the openai client, streamed: sources first, annotations and cited flags last.
    chunks = list(library.server.sdk.chat.completions.create(
        model=MODEL, messages=body["messages"], max_tokens=24, stream=True, temperature=0,
        extra_body={"file_search": library.file_search()},
    ))  # fmt: skip
    first, last = chunks[0].model_dump(), chunks[-1].model_dump()
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert [c["chunk_id"] for c in first["citations"]] == [c["chunk_id"] for c in citations]
    assert not any(c["cited"] for c in first["citations"]) and first["retrieval"] == reply["retrieval"]
    assert last["choices"][0]["finish_reason"] in ("stop", "length") and last["retrieval"] == reply["retrieval"]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text.strip()
    assert_cites_the_marker_page(last["citations"], library.file_id)
    assert_annotations_match_the_text(text, last["choices"][0]["delta"]["annotations"], last["citations"])


def test_responses_file_search_cites_the_file(library: Library) -> None:
    response = library.server.sdk.responses.create(
        model=MODEL,
        input=QUESTION,
        max_output_tokens=24,
        tools=[{"type": "file_search", "vector_store_ids": [library.store_id]}],
        include=["file_search_call.results"],
        **GREEDY,
    )
    search, message = response.output
    assert search.type == "file_search_call" and search.status == "completed" and search.queries == [QUESTION]
    assert search.results and any(r.file_id == library.file_id and MARKER in r.text for r in search.results)
    assert message.type == "message" and response.output_text.strip()
    (part,) = message.content
    cited = [a for a in part.annotations if a.type == "file_citation" and a.file_id == library.file_id]
    assert cited and all(a.filename == "manual.pdf" and 0 <= a.index <= len(part.text) for a in cited)


def test_no_relevant_context_is_a_plain_refusal(library: Library) -> None:
    started = time.monotonic()
    body = {"model": MODEL, "messages": [{"role": "user", "content": UNRELATED}], "file_search": library.file_search()}
    reply = library.server.http.post("/chat/completions", json=body).json()
    assert reply["retrieval"] == {"status": "no_relevant_context", "sources_found": 0, "sources_used": 0}
    assert reply["choices"][0]["message"]["content"] == NO_CONTEXT_ANSWER and reply["citations"] == []
    assert reply["usage"]["completion_tokens"] == 0  # the model was never asked
    response = library.server.sdk.responses.create(
        model=MODEL, input=UNRELATED, tools=[{"type": "file_search", "vector_store_ids": [library.store_id]}]
    )
    assert response.output_text == NO_CONTEXT_ANSWER
    assert time.monotonic() - started < 10


def test_sources_are_trimmed_to_a_small_context(library: Library) -> None:
    (library.root / "models" / f"{SMALL}.yaml").write_text(SMALL_YAML)
    deadline = time.monotonic() + 20  # the catalog rescans the models path when it changes
    while SMALL not in {m.id for m in library.server.sdk.models.list()}:
        assert time.monotonic() < deadline, f"{SMALL} never appeared in /v1/models"
        time.sleep(0.2)
    body = {
        "model": SMALL,
        "messages": [{"role": "user", "content": BROAD}],
        "max_tokens": 16,
        "file_search": library.file_search(max_num_results=10),
        **GREEDY,
    }
    reply = library.server.http.post("/chat/completions", json=body).json()
    retrieval = reply["retrieval"]
    assert retrieval["status"] == "ok" and retrieval["sources_found"] >= 3, retrieval
    assert 1 <= retrieval["sources_used"] < retrieval["sources_found"], retrieval
    assert len(reply["citations"]) == retrieval["sources_used"]
    assert reply["usage"]["prompt_tokens"] + 16 <= 600
