"""Files and Vector Stores end to end: one real server, the official openai client, the labelled corpus.

A PDF, a DOCX, an HTML page and a Markdown guide go in with `upload_and_poll`, three more with
`file_batches.upload_and_poll`; search must return the chunk holding each answer (with pages for the
PDF), keyword identifiers first, nothing for an unrelated question, and never fail on FTS5 syntax.
Also: CRUD and pagination of files and stores, status filters, attribute filters, duplicates, and
a search naming another embedding model (409). Every response is checked for a 5xx, and the log too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from fixtures.document_server import DocumentServer
from fixtures.knowledge_corpus import (
    CONFIG_MD,
    FAQ,
    HANDBOOK_DOCX,
    MANUAL_PDF,
    NOTES,
    ROLES,
    TROUBLE_MD,
    Corpus,
    build_corpus,
    gold_rank,
)
from support import assert_error

ONE_BY_ONE = (MANUAL_PDF, HANDBOOK_DOCX, FAQ, TROUBLE_MD)
IN_A_BATCH = (NOTES, ROLES, CONFIG_MD)
OTHER_EMBEDDER = "name: other-embedder\nbackend: fake\nknown_usecases: [embeddings]\noptions: ['dimensions:8']\n"


class Library:
    """The shared server, the corpus store and what its uploads answered."""

    def __init__(self, server: DocumentServer, corpus: Corpus, store_id: str) -> None:
        self.server = server
        self.corpus = corpus
        self.store_id = store_id
        self.attached: dict[str, Any] = {}  # filename -> the VectorStoreFile upload_and_poll returned
        self.batch: Any = None


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    root = tmp_path_factory.mktemp("documents-api")
    models = root / "models"
    models.mkdir()
    (models / "other-embedder.yaml").write_text(OTHER_EMBEDDER)
    corpus = build_corpus(root / "corpus")
    server = DocumentServer(root, root / "data", models)
    try:
        store = server.sdk.vector_stores.create(name="corpus")
        found = Library(server, corpus, store.id)
        for name in ONE_BY_ONE:
            found.attached[name] = server.sdk.vector_stores.files.upload_and_poll(
                vector_store_id=store.id, file=(name, corpus.file(name).read_bytes())
            )
        found.batch = server.sdk.vector_stores.file_batches.upload_and_poll(
            vector_store_id=store.id, files=[(name, corpus.file(name).read_bytes()) for name in IN_A_BATCH]
        )
        yield found
    finally:
        server.stop()
    server.assert_no_server_errors()


@pytest.fixture(scope="module")
def server(library: Library) -> DocumentServer:
    return library.server


def test_each_format_ingests_with_upload_and_poll(library: Library) -> None:
    for name, attached in library.attached.items():
        assert attached.status == "completed", (name, attached.last_error)
        assert attached.last_error is None and attached.vector_store_id == library.store_id
        assert attached.to_dict()["chunk_count"] > 0
    batch = library.batch
    assert batch.status == "completed" and batch.file_counts.completed == 3 and batch.file_counts.total == 3
    store = library.server.sdk.vector_stores.retrieve(library.store_id)
    assert store.file_counts.completed == 7 and store.usage_bytes > 0
    assert store.to_dict()["embedding_model"] == "all-minilm-l6-v2"


@pytest.mark.parametrize("question_id", ["pdf-06", "pdf-10", "docx-01", "html-10", "md-03", "html-04"])
def test_search_returns_the_chunk_holding_the_answer(library: Library, question_id: str) -> None:
    question = next(q for q in library.corpus.questions if q.id == question_id)
    page = library.server.sdk.vector_stores.search(library.store_id, query=question.text, max_num_results=5)
    results = [item.to_dict() for item in page.data]
    rank = gold_rank([item["content"][0]["text"] for item in results], question.answer)
    assert rank is not None and rank <= 3, (question.text, [r["filename"] for r in results])
    gold = results[rank - 1]
    assert gold["filename"] == question.filename and gold["vector_store_id"] == library.store_id
    assert gold["file_id"] == library_file_id(library, question.filename)
    assert isinstance(gold["heading_path"], str) and gold["heading_path"], gold
    assert gold["chunk_id"].isdigit()
    assert set(gold["scores"]) == {"keyword_rank", "vector_rank", "cosine", "rerank"}
    assert 0.0 < gold["score"] <= 1.0
    if question.page is not None:
        assert (gold["page_start"], gold["page_end"]) == (question.page, question.page)
    else:
        assert "page_start" not in gold
    assert page.model_extra["retrieval"]["status"] == "ok"


@pytest.mark.parametrize("question_id", ["md-01", "pdf-02", "docx-05", "html-02"])
def test_an_identifier_alone_finds_its_chunk_first(library: Library, question_id: str) -> None:
    question = next(q for q in library.corpus.questions if q.id == question_id)
    assert question.kind == "keyword"
    page = library.server.search(library.store_id, question.text)
    first = page["data"][0]
    assert gold_rank([first["content"][0]["text"]], question.answer) == 1, (question.text, first)
    assert first["filename"] == question.filename and first["scores"]["keyword_rank"] == 1
    if question.page is not None:
        assert first["page_start"] == question.page


def library_file_id(library: Library, filename: str) -> str:
    if filename in library.attached:
        return library.attached[filename].id
    files = library.server.sdk.vector_stores.file_batches.list_files(
        library.batch.id, vector_store_id=library.store_id
    )
    by_name = {library.server.sdk.files.retrieve(f.id).filename: f.id for f in files.data}
    return by_name[filename]


def test_max_num_results_bounds_the_page(server: DocumentServer, library: Library) -> None:
    for wanted in (1, 2, 7):
        page = server.search(library.store_id, "gateway firmware update", max_num_results=wanted)
        assert len(page["data"]) == wanted
    too_few = {"query": "gateway", "max_num_results": 0}
    assert_error(server.http.post(f"/vector_stores/{library.store_id}/search", json=too_few), 400)


@pytest.mark.parametrize(
    "query",
    ['"unbalanced', "AND OR NOT", "NEAR(", "NEAR(a b, 2)", "-foo", "bar*", "a:b", "text:gateway", "(", '"', "*", "^x"],
)
def test_fts5_syntax_in_user_text_is_plain_text(server: DocumentServer, library: Library, query: str) -> None:
    page = server.search(library.store_id, query)
    assert page["retrieval"]["status"] in ("ok", "no_relevant_context")


def test_an_unrelated_question_finds_no_relevant_context(server: DocumentServer, library: Library) -> None:
    page = server.search(library.store_id, "What is the capital of Peru?")
    assert page["data"] == [] and page["retrieval"]["status"] == "no_relevant_context"


def test_files_list_retrieve_content_delete(server: DocumentServer) -> None:
    sdk = server.sdk
    uploaded = [
        sdk.files.create(file=(f"note-{n}.md", f"# Note {n}\n\nPlain note number {n}.\n".encode()), purpose="user_data")
        for n in range(3)
    ]
    ids = [f.id for f in uploaded]
    first = sdk.files.retrieve(ids[0])
    assert (first.filename, first.bytes, first.purpose) == ("note-0.md", 31, "user_data")
    assert sdk.files.content(ids[1]).read() == b"# Note 1\n\nPlain note number 1.\n"
    pages = collect(lambda after: sdk.files.list(purpose="user_data", limit=2, order="asc", after=after))
    assert pages[0].has_more and [f.id for page in pages for f in page.data][-3:] == ids
    newest = sdk.files.list(purpose="user_data", limit=1, order="desc").data
    assert [f.id for f in newest] == [ids[-1]]
    assert ids[0] not in {f.id for f in sdk.files.list(purpose="assistants", limit=100).data}
    deleted = sdk.files.delete(ids[0])
    assert deleted.deleted and deleted.id == ids[0]
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(ids[0])
    assert_error(server.http.get(f"/files/{ids[0]}/content"), 404)
    assert_error(server.http.delete(f"/files/{ids[0]}"), 404)
    assert ids[0] not in {f.id for f in sdk.files.list(limit=100).data}


def collect(fetch: Any) -> list[Any]:
    """Every page of a cursor listing, following `after`."""
    pages = [fetch(None)]
    while pages[-1].has_more:
        pages.append(fetch(pages[-1].data[-1].id))
    return pages


def test_vector_store_crud_and_pagination(server: DocumentServer) -> None:
    sdk = server.sdk
    made = [sdk.vector_stores.create(name=f"page-{n}", metadata={"n": str(n)}).id for n in range(3)]

    def listed(order: str) -> list[str]:
        pages = collect(lambda after: sdk.vector_stores.list(limit=2, order=order, after=after))
        return [store.id for page in pages for store in page.data]

    asc, desc = listed("asc"), listed("desc")
    assert asc == desc[::-1] and len(asc) == len(set(asc))
    assert [i for i in asc if i in made] == made
    one = sdk.vector_stores.list(limit=1, order="asc", after=made[0])
    assert [s.id for s in one.data] == [made[1]]
    updated = sdk.vector_stores.update(made[1], name="renamed", metadata={"owner": "qa"})
    assert (updated.name, updated.metadata) == ("renamed", {"owner": "qa"})
    assert sdk.vector_stores.retrieve(made[1]).name == "renamed"
    deleted = sdk.vector_stores.delete(made[2])
    assert deleted.deleted and deleted.id == made[2]
    with pytest.raises(openai.NotFoundError):
        sdk.vector_stores.retrieve(made[2])
    assert_error(server.http.get("/vector_stores", params={"limit": 0}), 400, param="limit")
    assert_error(server.http.get("/vector_stores", params={"order": "sideways"}), 400, param="order")


TAGGED = {  # name -> (attributes, text); every text shares "maintenance checklist"
    "red-2023.md": ({"team": "red", "year": 2023, "reviewed": True}, "Maintenance checklist, red team: grease hinges."),
    "red-2024.md": ({"team": "red", "year": 2024, "reviewed": False}, "Maintenance checklist, red team: oil chains."),
    "blue-2024.md": ({"team": "blue", "year": 2024, "reviewed": True}, "Maintenance checklist, blue team: wipe lens."),
}
RED = {"type": "eq", "key": "team", "value": "red"}
NOT_RED = {"type": "ne", "key": "team", "value": "red"}


@pytest.fixture(scope="module")
def tagged(server: DocumentServer) -> tuple[str, dict[str, str], str]:
    """A store of three tagged notes and one binary file that fails: (store id, name -> id, failed id)."""
    sdk = server.sdk
    store = sdk.vector_stores.create(name="tagged")
    ids = {}
    for name, (attributes, text) in TAGGED.items():
        done = sdk.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=(name, f"# {name}\n\n{text}\n".encode()), attributes=attributes
        )
        assert done.status == "completed" and done.attributes == attributes
        ids[name] = done.id
    failed = sdk.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("blob.bin", bytes(range(256)) * 8))
    assert failed.status == "failed" and failed.last_error.code == "unsupported_file"
    return store.id, ids, failed.id


def test_store_files_list_by_status_and_page(server: DocumentServer, tagged: tuple[str, dict[str, str], str]) -> None:
    store_id, ids, failed_id = tagged
    files = server.sdk.vector_stores.files
    assert [f.id for f in files.list(store_id, filter="failed").data] == [failed_id]
    completed = collect(lambda a: files.list(store_id, filter="completed", limit=2, order="asc", after=a))
    assert [f.id for page in completed for f in page.data] == list(ids.values())
    assert files.list(store_id, filter="in_progress").data == []
    assert_error(server.http.get(f"/vector_stores/{store_id}/files", params={"filter": "done"}), 400, param="filter")


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (RED, {"red-2023.md", "red-2024.md"}),
        (NOT_RED, {"blue-2024.md"}),
        ({"type": "eq", "key": "reviewed", "value": True}, {"red-2023.md", "blue-2024.md"}),
        (
            {"type": "and", "filters": [RED, {"type": "gte", "key": "year", "value": 2024}]},
            {"red-2024.md"},
        ),
        (
            {"type": "or", "filters": [NOT_RED, {"type": "lt", "key": "year", "value": 2024}]},
            {"red-2023.md", "blue-2024.md"},
        ),
        ({"type": "eq", "key": "team", "value": "green"}, set()),
    ],
)
def test_search_filters_on_attributes(
    server: DocumentServer, tagged: tuple[str, dict[str, str], str], filters: dict[str, Any], expected: set[str]
) -> None:
    store_id, ids, _ = tagged
    page = server.sdk.vector_stores.search(store_id, query="maintenance checklist", filters=filters, max_num_results=10)
    assert {item.file_id for item in page.data} == {ids[name] for name in expected}
    for item in page.data:
        assert item.attributes == TAGGED[item.filename][0]


def test_a_duplicate_adds_no_chunks_and_takes_over_when_the_original_goes(server: DocumentServer) -> None:
    sdk, marker = server.sdk, "quokkatelemetry"
    data = f"# Duplicate\n\nThe {marker} relay forwards every reading twice.\n".encode()
    store = sdk.vector_stores.create(name="duplicates")
    first = sdk.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("a.md", data))
    before = server.search(store.id, marker)["data"]
    second = sdk.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("b.md", data))
    assert first.status == second.status == "completed" and first.id != second.id
    assert second.to_dict()["duplicate_of"] == first.id and second.to_dict()["chunk_count"] == 0
    after = server.search(store.id, marker)["data"]
    assert len(after) == len(before) >= 1 and {r["file_id"] for r in after} == {first.id}

    sdk.vector_stores.files.delete(first.id, vector_store_id=store.id)  # the duplicate is ingested in its place
    assert server.wait_file(store.id, second.id, timeout=30)["status"] == "completed"
    assert server.found_in(store.id, marker) == {second.id}
    again = sdk.vector_stores.files.create_and_poll(file_id=first.id, vector_store_id=store.id)
    assert again.to_dict()["duplicate_of"] == second.id
    sdk.files.delete(second.id)  # deleting the file itself hands the content back too
    assert server.wait_file(store.id, first.id, timeout=30)["status"] == "completed"
    assert server.found_in(store.id, marker) == {first.id} == server.found_in(store.id, marker, "vector")


def test_search_with_another_embedding_model_is_a_conflict(server: DocumentServer, library: Library) -> None:
    path = f"/vector_stores/{library.store_id}/search"
    error = assert_error(server.http.post(path, json={"query": "KM-117", "embedding_model": "other-embedder"}), 409)
    assert "reindex" in error["message"] and "all-minilm-l6-v2" in error["message"]
    assert_error(server.http.post(path, json={"query": "KM-117", "embedding_model": "no-such-model"}), 404)
    same = server.search(library.store_id, "KM-117", embedding_model="all-minilm-l6-v2")
    assert same["data"] and same["retrieval"]["embedding_model"] == "all-minilm-l6-v2"
