"""Citations from an answer's `[n]` markers: which sources were cited, and the annotations OpenAI
clients read (chat's url_citation spans, the Responses API's file_citation at each marker or, for
sources never marked, at the end)."""

from __future__ import annotations

from appliance.knowledge.answers import (
    SourceMemory,
    INSTRUCTION,
    Source,
    citations,
    cited_indexes,
    file_citations,
    latest_user_text,
    url_annotations,
    with_sources,
)


def source(index: int, page: int | None = None) -> Source:
    return Source(
        index=index, file_id=f"file-{index}", filename=f"doc{index}.pdf", chunk_id=str(index * 10),
        page_start=page, page_end=page, heading_path="Manual › 2 Setup" if page else None,
        text=f"text of source {index}", score=0.5, vector_store_id="vs_1",
    )


SOURCES = [source(1, page=7), source(2), source(3, page=2)]


def test_markers_single_and_grouped_and_out_of_range() -> None:
    text = "Keys rotate [1]. Backups [2, 3] and [9] and [x]."
    assert [(i, text[s:e]) for i, s, e in cited_indexes(text, 3)] == [(1, "[1]"), (2, "[2, 3]"), (3, "[2, 3]")]


def test_cited_flags() -> None:
    flags = {c["index"]: c["cited"] for c in citations("See [3].", SOURCES)}
    assert flags == {1: False, 2: False, 3: True}


def test_url_annotations_span_each_marker_with_the_page() -> None:
    text = "Rotate keys [1], then back up [2]."
    first, second = url_annotations(text, SOURCES)
    assert text[first["url_citation"]["start_index"] : first["url_citation"]["end_index"]] == "[1]"
    assert first["url_citation"]["url"] == "/v1/files/file-1/content#page=7"
    assert first["url_citation"]["title"] == "doc1.pdf, page 7, Manual › 2 Setup"
    assert second["url_citation"]["url"] == "/v1/files/file-2/content"


def test_file_citations_cover_every_source_even_without_markers() -> None:
    text = "An answer that cites [2] only."
    annotations = file_citations(text, SOURCES)
    assert [a["file_id"] for a in annotations] == ["file-2", "file-1", "file-3"]
    assert annotations[0]["index"] == text.index("[2]") + 3
    assert all(a["index"] == len(text) for a in annotations[1:])
    assert all(a["type"] == "file_citation" for a in annotations)


def test_only_the_latest_user_turn_changes() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": [{"type": "text", "text": "second question"}]},
    ]
    position, question = latest_user_text(messages)
    assert (position, question) == (3, "second question")
    out = with_sources(messages, position, SOURCES[:2])
    assert out[:3] == messages[:3]
    content = out[3]["content"]
    assert content.startswith(INSTRUCTION) and content.endswith("Question: second question")
    assert "[1] doc1.pdf, page 7, Manual › 2 Setup\ntext of source 1" in content and "[2] doc2.pdf\n" in content
    assert with_sources(messages, position, []) == messages


def test_source_memory_puts_rewritten_turns_back_by_their_conversation() -> None:
    memory = SourceMemory(capacity=2)
    turn = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "q1"}]
    memory.remember("m", turn, 1, "sources + q1")
    follow = [*turn, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}]
    assert memory.restore("m", follow, 3)[1]["content"] == "sources + q1"
    assert memory.restore("m", follow, 3)[3]["content"] == "q2"  # the latest turn is never touched
    assert memory.restore("other", follow, 3) == follow  # another model: another conversation
    changed = [{"role": "system", "content": "be brief!"}, *follow[1:]]
    assert memory.restore("m", changed, 3) == changed  # the turn's whole history is its key
    memory.remember("m", [{"role": "user", "content": "x"}], 0, "sx")
    memory.remember("m", [{"role": "user", "content": "y"}], 0, "sy")
    assert memory.restore("m", follow, 3) == follow  # the oldest went at capacity 2
