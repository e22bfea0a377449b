"""LocalAI's store semantics through the library: set/get/delete/find and their errors."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from stores.errors import DimensionMismatch, InvalidInput, StoreError
from stores.registry import StoreRegistry

X, Y, Z, NEG_X = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]


def test_orthogonal_unit_vectors_give_exact_similarities(registry: StoreRegistry) -> None:
    store = registry.get("")
    store.set([X, Y, Z, NEG_X], ["x", "y", "z", "-x"])
    found = store.find(X, 4)
    assert found.similarities == pytest.approx([1.0, 0.0, 0.0, -1.0], abs=1e-6)
    assert found.values[0] == "x" and found.values[3] == "-x"
    assert set(found.values[1:3]) == {"y", "z"}
    assert found.keys[0] == X and found.keys[3] == NEG_X


def test_non_normalised_keys_rank_by_cosine_not_inner_product(registry: StoreRegistry) -> None:
    store = registry.get("")
    # Inner product would rank "big" first (200 vs 3); cosine ranks "aligned" first.
    store.set([[3.0, 0.0], [100.0, 100.0], [0.0, 7.0], [-2.0, -0.5]], ["aligned", "big", "orthogonal", "opposite"])
    found = store.find([0.5, 0.0], 4)
    assert found.values == ["aligned", "big", "orthogonal", "opposite"]
    expected = [1.0, 1 / math.sqrt(2), 0.0, -2.0 / math.hypot(2.0, 0.5)]
    assert found.similarities == pytest.approx(expected, abs=1e-6)


def test_angular_distance_satisfies_triangle_inequality(registry: StoreRegistry) -> None:
    rng = np.random.default_rng(7)
    keys = rng.normal(size=(24, 768)).astype(np.float32)
    store = registry.get("")
    store.set(keys.tolist(), [str(i) for i in range(len(keys))])
    dist = np.zeros((len(keys), len(keys)))
    for i, key in enumerate(keys):
        found = store.find(key.tolist(), len(keys))
        assert len(found.values) == len(keys)
        for value, sim in zip(found.values, found.similarities):
            assert -1.0 <= sim <= 1.0
            dist[i, int(value)] = math.acos(sim)
    assert np.allclose(np.diag(dist), 0.0, atol=1e-3)
    # d(a, c) <= d(a, b) + d(b, c) for every triple
    slack = dist[:, :, None] + dist[None, :, :] - dist[:, None, :]
    assert slack.min() >= -1e-5


def test_set_is_upsert_and_last_in_batch_wins(registry: StoreRegistry) -> None:
    store = registry.get("")
    store.set([X, Y], ["x1", "y1"], [{"n": 1}, None])
    store.set([X], ["x2"])
    store.set([Z, Z, Y], ["z1", "z2", "y2"])
    assert store.count() == 3
    got = store.get([X, Y, Z])
    assert got.values == ["x2", "y2", "z2"]
    assert got.metadata == [None, None, None]
    assert store.find(Z, 1).values == ["z2"]


def test_get_keeps_request_order_and_omits_missing(registry: StoreRegistry) -> None:
    store = registry.get("")
    store.set([X, Y, Z], ["x", "y", "z"])
    got = store.get([Z, [0.5, 0.5, 0.0], X])
    assert got.values == ["z", "x"]
    assert got.keys == [Z, X]
    assert store.get([[1.0, 0.0]]).values == []  # other dimension: nothing matches


def test_keys_match_by_exact_float32_value(registry: StoreRegistry) -> None:
    store = registry.get("")
    store.set([[0.1, 0.2]], ["a"])
    assert store.get([[0.1, 0.2]]).values == ["a"]
    assert store.get([[0.1, 0.2000001]]).values == []


def test_delete_ignores_absent_and_emptying_resets_dimension(registry: StoreRegistry) -> None:
    store = registry.get("")
    store.set([X, Y], ["x", "y"])
    store.delete([Y, [0.3, 0.3, 0.3]])
    assert store.get([X, Y]).values == ["x"]
    assert store.dimension == 3
    assert [v for v in store.find(Y, 10).values] == ["x"]
    store.delete([X])
    assert store.count() == 0 and store.dimension is None
    assert registry.describe("").dimension is None
    found = store.find([1.0, 2.0], 5)
    assert found.values == [] and found.similarities == []
    store.set([[1.0, 2.0]], ["two-d"])  # a new dimension is accepted after emptying
    assert store.dimension == 2
    assert store.find([2.0, 4.0], 5).similarities == pytest.approx([1.0], abs=1e-6)


def test_dimension_fixed_by_first_key(registry: StoreRegistry) -> None:
    store = registry.get("")
    store.set([X], ["x"])
    with pytest.raises(DimensionMismatch, match="dimension 2 .* dimension 3"):
        store.set([[1.0, 0.0]], ["bad"])
    with pytest.raises(DimensionMismatch):
        store.find([1.0, 0.0], 1)
    with pytest.raises(DimensionMismatch):
        store.set([[1.0, 0.0, 0.0], [1.0, 0.0]], ["a", "b"])
    assert store.count() == 1


@pytest.mark.parametrize(
    ("keys", "values", "message"),
    [
        ([], [], "must not be empty"),
        ([X, Y], ["x"], "same length"),
        ([[1.0, float("nan"), 0.0]], ["nan"], "finite"),
        ([[float("inf"), 0.0, 0.0]], ["inf"], "finite"),
        ([[0.0, 0.0, 0.0]], ["zero"], "zero vectors"),
        ([[]], ["empty"], "empty vectors"),
        ([["a", "b"]], ["text"], "numbers"),
        ([X], [3], "strings"),
        ([1.0, 2.0], ["a", "b"], "list of lists"),
    ],
)
def test_set_refuses_bad_input_and_writes_nothing(registry: StoreRegistry, keys: list, values: list, message: str) -> None:
    store = registry.get("")
    with pytest.raises(InvalidInput, match=message) as info:
        store.set(keys, values)
    assert isinstance(info.value, StoreError) and info.value.code
    assert store.count() == 0 and store.dimension is None


def test_metadata_round_trips_and_is_validated(registry: StoreRegistry) -> None:
    store = registry.get("")
    store.set([X, Y], ["x", "y"], [{"source": "a.txt", "page": 3}, None])
    assert store.get([X, Y]).metadata == [{"source": "a.txt", "page": 3}, None]
    assert store.find(X, 1).metadata == [{"source": "a.txt", "page": 3}]
    with pytest.raises(InvalidInput, match="metadata"):
        store.set([Z], ["z"], [{"x": 1}, {"y": 2}])
    with pytest.raises(InvalidInput, match="JSON object"):
        store.set([Z], ["z"], ["not a dict"])  # type: ignore[list-item]


def test_find_topk_rules(registry: StoreRegistry) -> None:
    store = registry.get("")
    assert store.find(X, 3).values == []
    store.set([X, Y], ["x", "y"])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidInput, match="topk"):
            store.find(X, bad)  # type: ignore[arg-type]
    assert len(store.find(X, 100).values) == 2
    assert store.find(X, np.int64(1)).values == ["x"]
    with pytest.raises(InvalidInput, match="zero vectors"):
        store.find([0.0, 0.0, 0.0], 1)
    assert store.find(X, 1).values == ["x"]


def test_concurrent_writers_and_readers(registry: StoreRegistry) -> None:
    store = registry.get("")
    store.set([[1.0] * 8], ["seed"])
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for b in range(10):
                keys = [[float(w + 1), float(b), float(j + 1), 1.0, 0.0, 0.0, 0.0, 1.0] for j in range(5)]
                store.set(keys, [f"{w}-{b}-{j}" for j in range(5)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(40):
                found = store.find([1.0] * 8, 5)
                assert found.similarities == sorted(found.similarities, reverse=True)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert store.count() == 1 + 4 * 10 * 5
    assert len(store.find([1.0] * 8, 1000).values) == 201
