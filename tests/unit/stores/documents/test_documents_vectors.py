"""Exact vector search against a numpy brute-force reference: one or several stores, restricted
to allowed files, only completed files, one model per search; cosines of chosen chunks."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from stores.documents.library import DocumentLibrary
from stores.documents.records import ChunkRow
from stores.errors import DimensionMismatch, ModelMismatch

DIM = 16


def reference(shelf, chunk_ids: set[int], query: np.ndarray, k: int) -> tuple[list[int], np.ndarray]:
    ids = sorted(chunk_ids)
    matrix = np.stack([shelf.vectors[i] for i in ids]).astype(np.float64)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    sims = matrix @ (query / np.linalg.norm(query))
    order = np.argsort(-sims, kind="stable")[:k]
    return [ids[i] for i in order], sims[order]


def chunk_ids_of(library: DocumentLibrary, store_id: str, file_ids) -> set[int]:
    return {c.chunk_id for f in file_ids for c in library.file_chunks(store_id, f)}


def test_vector_search_equals_numpy_brute_force(shelf, library: DocumentLibrary, store_id: str) -> None:
    files = [shelf.document(store_id, [f"d{i} c{j}" for j in range(20)]).file_id for i in range(10)]
    everything = chunk_ids_of(library, store_id, files)
    queries = np.random.default_rng(11).normal(size=(20, DIM)).astype(np.float32)
    for query in queries:
        for k in (1, 7, 50, 500):
            hits = library.vector_search([store_id], query, k)
            want_ids, want_sims = reference(shelf, everything, query, k)
            assert [h.chunk_id for h in hits] == want_ids
            np.testing.assert_allclose([h.score for h in hits], want_sims, atol=1e-5)
    allowed = set(files[2:5])
    subset = chunk_ids_of(library, store_id, allowed)
    for query in queries[:5]:
        hits = library.vector_search([store_id], query, 15, file_ids=allowed)
        want_ids, want_sims = reference(shelf, subset, query, 15)
        assert [h.chunk_id for h in hits] == want_ids
        np.testing.assert_allclose([h.score for h in hits], want_sims, atol=1e-5)


def test_several_stores_merge_and_need_one_model(shelf, library: DocumentLibrary, store_id: str) -> None:
    second = library.create_store(name="second").id
    a = shelf.document(store_id, [f"a{j}" for j in range(10)]).file_id
    b = shelf.document(second, [f"b{j}" for j in range(10)]).file_id
    both = chunk_ids_of(library, store_id, [a]) | chunk_ids_of(library, second, [b])
    query = np.random.default_rng(5).normal(size=DIM)
    hits = library.vector_search([store_id, second], query, 8)
    want_ids, want_sims = reference(shelf, both, query, 8)
    assert [h.chunk_id for h in hits] == want_ids
    np.testing.assert_allclose([h.score for h in hits], want_sims, atol=1e-5)
    only_b = library.vector_search([store_id, second], query, 30, file_ids={b})
    assert {h.chunk_id for h in only_b} == chunk_ids_of(library, second, [b])
    empty_store = library.create_store(name="empty").id  # holds no vectors yet: simply adds nothing
    assert [h.chunk_id for h in library.vector_search([store_id, second, empty_store], query, 8)] == want_ids

    foreign = library.create_store(name="foreign").id
    f = shelf.upload("foreign doc")
    library.attach(foreign, f.id)
    assert library.commit_chunks(foreign, f.id, [], np.empty((0, 8)), model="other-model") is True
    g = shelf.upload("foreign doc 2")
    library.attach(foreign, g.id)
    assert library.commit_chunks(foreign, g.id, [ChunkRow("x")], np.ones((1, 8)), model="other-model")
    with pytest.raises(ModelMismatch):
        library.vector_search([store_id, foreign], query, 5)
    with pytest.raises(DimensionMismatch):
        library.vector_search([store_id], np.ones(DIM + 1), 5)


def test_only_completed_files_are_found(shelf, library: DocumentLibrary, store_id: str) -> None:
    done = shelf.document(store_id, ["done"]).file_id
    waiting = shelf.upload("waiting")
    library.attach(store_id, waiting.id)
    query = np.ones(DIM)
    assert {h.chunk_id for h in library.vector_search([store_id], query, 10)} == chunk_ids_of(
        library, store_id, [done]
    )
    assert library.vector_search([store_id], query, 10, file_ids={waiting.id}) == []
    assert library.vector_search([store_id], query, 0) == []


def test_cosines_of_chosen_chunks(shelf, library: DocumentLibrary, store_id: str) -> None:
    doc = shelf.document(store_id, ["one", "two", "three"]).file_id
    ids = sorted(chunk_ids_of(library, store_id, [doc]))
    query = np.random.default_rng(1).normal(size=DIM)
    got = library.cosines([store_id], query, [*ids[:2], 999999])
    assert set(got) == set(ids[:2])
    for chunk_id, value in got.items():
        v = shelf.vectors[chunk_id]
        assert value == pytest.approx(float(v @ query / np.linalg.norm(v) / np.linalg.norm(query)), abs=1e-5)


def test_concurrent_commits_and_searches_stay_consistent(shelf, library: DocumentLibrary, store_id: str) -> None:
    shelf.document(store_id, ["seed"])
    uploads = [shelf.upload(f"parallel {i}") for i in range(24)]
    for f in uploads:
        library.attach(store_id, f.id)
    rng = np.random.default_rng(2)
    vectors = {f.id: rng.normal(size=(3, DIM)).astype(np.float32) for f in uploads}
    errors: list[BaseException] = []

    def commit(part: list) -> None:
        try:
            for f in part:
                assert shelf.library.commit_chunks(
                    store_id, f.id, [ChunkRow(f"p{f.id} {j}") for j in range(3)], vectors[f.id], model="test-embedder"
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def search(seed: int) -> None:
        queries = np.random.default_rng(seed).normal(size=(30, DIM))
        try:
            for query in queries:
                hits = library.vector_search([store_id], query, 200)
                assert len({h.chunk_id for h in hits}) == len(hits)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=commit, args=(uploads[i::3],)) for i in range(3)]
    threads += [threading.Thread(target=search, args=(seed,)) for seed in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(library.vector_search([store_id], np.ones(DIM), 500)) == 1 + 24 * 3

