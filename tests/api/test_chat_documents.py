"""Chat over documents (`file_search` on /v1/chat/completions) on fake models: numbered sources go into
the latest user turn only, citations come back whole and streamed, no relevant context is said
plainly without calling the model, and sources that would overflow the context are dropped."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from appliance.knowledge.answers import INSTRUCTION, NO_CONTEXT_ANSWER
from support import assert_error, write

EMBEDDER = "name: embedder\nbackend: fake\nknown_usecases: [embeddings]\noptions: ['dimensions:16']\n"
SECTIONS = {
    "Keys": "Rotate the signing keys every ninety days with the command keyctl rotate --all.",
    "Backups": "Nightly backups are written to the archive bucket and kept for thirty five days.",
    "Alerts": "Pager alerts escalate to the duty manager after fifteen minutes without acknowledgement.",
}


@pytest.fixture
def client(make_app: Callable[..., FastAPI], models_path: Path, tmp_path: Path) -> Iterator[TestClient]:
    write(models_path / "embedder.yaml", EMBEDDER)
    write(models_path / "chatty.yaml", "name: chatty\nbackend: fake\ncontext_size: 4096\n")
    write(models_path / "small.yaml", "name: small\nbackend: fake\ncontext_size: 420\n")
    with TestClient(make_app(default_embedding_model="embedder", retrieval_min_similarity=1.0)) as test_client:
        yield test_client


def ingest(client: TestClient, tmp_path: Path) -> str:
    text = "\n\n".join(f"# {title}\n\n{body}" for title, body in SECTIONS.items())
    document = write(tmp_path / "runbook.md", text)
    with document.open("rb") as handle:
        uploaded = client.post("/v1/files", files={"file": ("runbook.md", handle)}, data={"purpose": "assistants"})
    assert uploaded.status_code == 200, uploaded.text
    store = client.post("/v1/vector_stores", json={"name": "runbook", "file_ids": [uploaded.json()["id"]]}).json()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = client.get(f"/v1/vector_stores/{store['id']}").json()
        if body["file_counts"]["completed"] == 1:
            return store["id"]
        assert body["file_counts"]["failed"] == 0, body
        time.sleep(0.05)
    raise AssertionError("the document was not ingested")


def chat(client: TestClient, store: str, question: str, **extra: Any) -> dict[str, Any]:
    body = {
        "model": extra.pop("model", "chatty"),
        "messages": extra.pop("messages", [{"role": "user", "content": question}]),
        "max_tokens": 8,
        "file_search": {"vector_store_ids": [store], **extra.pop("file_search", {})},
        **extra,
    }
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_answer_carries_citations_for_its_sources(client: TestClient, tmp_path: Path) -> None:
    store = ingest(client, tmp_path)
    reply = chat(client, store, "keyctl rotate")  # every word in the keys section: passes the floor
    assert reply["retrieval"] == {"status": "ok", "sources_found": 1, "sources_used": 1}
    (citation,) = reply["citations"]
    assert citation["index"] == 1 and citation["filename"] == "runbook.md"
    assert "keyctl rotate --all" in citation["text"] and citation["heading_path"] == "Keys"
    assert citation["url"] == f"/v1/files/{citation['file_id']}/content" and citation["page_start"] is None
    assert citation["cited"] is False  # the fake model writes no [n] markers
    assert reply["choices"][0]["message"]["annotations"] == []


def test_sources_go_into_the_latest_user_turn_only(client: TestClient, tmp_path: Path) -> None:
    store = ingest(client, tmp_path)
    history = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "keyctl rotate"},
        {"role": "assistant", "content": "Use keyctl."},
        {"role": "user", "content": "archive bucket backups"},
    ]
    reply = chat(client, store, "", messages=history)
    # The fake model's prompt is "role: content" lines; its usage counts the prompt's bytes.
    plain = sum(len(f"{m['role']}: {m['content']}\n") for m in history) + len("assistant:")
    assert reply["usage"]["prompt_tokens"] > plain + len(INSTRUCTION)
    assert [c["heading_path"] for c in reply["citations"]] == ["Backups"]


def test_no_relevant_context_is_said_without_the_model(client: TestClient, tmp_path: Path) -> None:
    store = ingest(client, tmp_path)
    reply = chat(client, store, "volcanoes of iceland")
    assert reply["retrieval"]["status"] == "no_relevant_context"
    assert reply["choices"][0]["message"]["content"] == NO_CONTEXT_ANSWER
    assert reply["citations"] == [] and reply["usage"]["completion_tokens"] == 0
    fallback = chat(client, store, "volcanoes of iceland", file_search={"fallback": "model"})
    assert fallback["choices"][0]["message"]["content"] != NO_CONTEXT_ANSWER
    assert fallback["usage"]["completion_tokens"] > 0


def test_streamed_answer_lists_sources_first_and_flags_last(client: TestClient, tmp_path: Path) -> None:
    store = ingest(client, tmp_path)
    body = {
        "model": "chatty", "stream": True, "max_tokens": 8,
        "messages": [{"role": "user", "content": "keyctl rotate"}],
        "file_search": {"vector_store_ids": [store]},
    }
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    assert events[0]["citations"][0]["filename"] == "runbook.md" and events[0]["citations"][0]["cited"] is False
    last = next(e for e in events if e["choices"] and e["choices"][0]["finish_reason"])
    assert "annotations" in last["choices"][0]["delta"] and last["retrieval"]["sources_used"] == 1
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])


def test_sources_that_overflow_the_context_are_dropped(client: TestClient, tmp_path: Path) -> None:
    store = ingest(client, tmp_path)
    small = chat(client, store, "keyctl rotate", model="small", max_tokens=300)
    assert small["retrieval"]["status"] == "sources_do_not_fit" and small["retrieval"]["sources_used"] == 0
    assert "do not fit" in small["choices"][0]["message"]["content"]
    fits = chat(client, store, "keyctl rotate", model="small", max_tokens=8)
    assert fits["retrieval"]["sources_used"] == 1


def test_file_search_errors(client: TestClient, tmp_path: Path) -> None:
    body = {"model": "chatty", "messages": [{"role": "user", "content": "hi"}], "file_search": {"vector_store_ids": []}}
    assert_error(client.post("/v1/chat/completions", json=body), 400, param="file_search.vector_store_ids")
    body["file_search"] = {"vector_store_ids": ["vs_nope"]}
    assert_error(client.post("/v1/chat/completions", json=body), 404)
    body["model"] = "nope"
    assert_error(client.post("/v1/chat/completions", json=body), 404, code="model_not_found")


def test_answers_rerank_as_search_does(make_app: Callable[..., FastAPI], models_path: Path, tmp_path: Path) -> None:
    """The sources of an answer are what a search of the same store returns: reranked by the store's
    `rerank_model`, or by `ranking_options.rerank_model`, and not at all with the ranker `none`."""
    write(models_path / "embedder.yaml", EMBEDDER)
    write(models_path / "chatty.yaml", "name: chatty\nbackend: fake\ncontext_size: 4096\n")
    write(models_path / "reranker.yaml", "name: reranker\nbackend: fake\nreranking: true\nknown_usecases: [rerank]\n")
    question = "keyctl rotate weekly"  # the fake reranker scores the share of these words a source holds
    with TestClient(make_app(default_embedding_model="embedder", retrieval_min_similarity=-1.0)) as client:
        plain = ingest(client, tmp_path)
        file_id = client.get(f"/v1/vector_stores/{plain}/files").json()["data"][0]["id"]
        reranked = client.post(
            "/v1/vector_stores", json={"name": "reranked", "file_ids": [file_id], "rerank_model": "reranker"}
        ).json()["id"]
        deadline = time.monotonic() + 30
        while client.get(f"/v1/vector_stores/{reranked}").json()["file_counts"]["completed"] < 1:
            assert time.monotonic() < deadline, "the reranked store was not ingested"
            time.sleep(0.05)

        def scores(store: str, ranking: dict[str, Any] | None = None) -> tuple[list[float], list[float]]:
            options = {"ranking_options": ranking} if ranking else {}
            searched = client.post(f"/v1/vector_stores/{store}/search", json={"query": question, **options}).json()
            answered = chat(client, store, question, file_search=options)
            return [r["score"] for r in searched["data"]], [c["score"] for c in answered["citations"]]

        by_store = scores(reranked)
        assert by_store[0][0] == pytest.approx(2 / 3) and by_store[1] == by_store[0]
        by_request = scores(plain, {"rerank_model": "reranker"})
        assert by_request[1] == by_request[0] == by_store[0]
        unranked = scores(reranked, {"ranker": "none"})
        assert unranked[1] == unranked[0] != by_store[0]  # the fused scores


def test_a_follow_up_gets_the_previous_turns_sources_back(client: TestClient, tmp_path: Path) -> None:
    """The client sends turn 1's question back without the sources the server put in; the server puts
    them back, so the follow-up's prompt starts with the previous prompt (the prefix cache holds it).
    A history the server did not write (here: one changed byte) stays as sent."""
    store = ingest(client, tmp_path)
    first = chat(client, store, "keyctl rotate")
    answer = first["choices"][0]["message"]["content"]

    def follow_up(question: str, model: str = "chatty") -> dict[str, Any]:
        history = [{"role": "user", "content": question}, {"role": "assistant", "content": answer},
                   {"role": "user", "content": "archive bucket backups"}]
        return chat(client, store, "", messages=history, model=model)

    restored, unknown = follow_up("keyctl rotate"), follow_up("keyctl  rotate")
    assert restored["retrieval"]["status"] == unknown["retrieval"]["status"] == "ok"
    # The fake model counts prompt bytes: the restored turn carries the instruction and its source again.
    grown = restored["usage"]["prompt_tokens"] - unknown["usage"]["prompt_tokens"]
    assert grown > len(INSTRUCTION) + len(SECTIONS["Keys"]) - 1
    assert restored["usage"]["prompt_tokens"] > first["usage"]["prompt_tokens"] + len(answer)
    # Where the remembered sources leave no room for the new turn's, the history goes as sent.
    chat(client, store, "keyctl rotate", model="small")
    small, small_unknown = follow_up("keyctl rotate", model="small"), follow_up("keyctl  rotate", model="small")
    assert small["retrieval"]["sources_used"] == small_unknown["retrieval"]["sources_used"] == 1
    assert small["usage"]["prompt_tokens"] == small_unknown["usage"]["prompt_tokens"] - 1  # the extra space
