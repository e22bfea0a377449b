"""Approximate indexes (hnsw, ivf) beside exact: recall against a numpy reference with the default
options (ef_search / nprobe tuned to target_recall on the store's data), deletes that never come
back (live, after reopen, after a rebuild, after a crash), HNSW compaction, IVF training, writes
landing during a rebuild, and create-time option validation."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stores.errors import InvalidInput
from stores.index import CompactionPolicy
from stores.registry import StoreRegistry
from stores.store import IndexState, VectorStore

REPO_ROOT = Path(__file__).resolve().parents[3]
KINDS = ["exact", "hnsw", "ivf"]
SMALL_IVF = {"train_threshold": 2000}  # trains early so tests see the trained index


def gaussian(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def reference_top(keys: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k64 = keys.astype(np.float64)
    sims = (k64 @ query.astype(np.float64)) / (np.linalg.norm(k64, axis=1) * np.linalg.norm(query))
    order = np.argsort(-sims, kind="stable")[:k]
    return order, sims[order]


def fill(store: VectorStore, keys: np.ndarray, batch: int = 2000) -> None:
    for start in range(0, len(keys), batch):
        chunk = keys[start : start + batch]
        store.set(chunk.tolist(), [str(i) for i in range(start, start + len(chunk))])
    assert store.wait_for_rebuild(timeout=120)


def create(registry: StoreRegistry, kind: str, name: str = "s", **options: int) -> VectorStore:
    registry.create(name, index_kind=kind, index_options=options or None)
    return registry.get(name)


@pytest.fixture
def compacting(data_path: Path) -> Iterator[StoreRegistry]:
    """A registry whose HNSW stores compact once 50 tombstones are over 10% of the index."""
    with StoreRegistry(data_path, compaction=CompactionPolicy(min_dead=50, dead_fraction=0.1)) as reg:
        yield reg


# -- recall with the default options -------------------------------------------------------------


def clustered(n: int, dim: int, seed: int, clusters: int = 200) -> np.ndarray:
    """Keys around ``clusters`` fixed centres (seed 0), the structure real embeddings have."""
    centres = np.random.default_rng(0).normal(size=(clusters, dim))
    rng = np.random.default_rng(seed)
    return (centres[rng.integers(clusters, size=n)] + 0.5 * rng.normal(size=(n, dim))).astype(np.float32)


def mean_recall(store: VectorStore, keys: np.ndarray, queries: np.ndarray, exact: bool = False) -> float:
    """Mean recall@10 of ``store.find`` against the numpy reference over fresh ``queries``."""
    hits = 0
    for query in queries:
        order, sims = reference_top(keys, query, 10)
        found = store.find(query.tolist(), 10)
        assert len(found.values) == 10
        assert found.similarities == sorted(found.similarities, reverse=True)
        if exact:  # exact is the reference, to float32 rounding
            assert [int(v) for v in found.values] == order.tolist()
            np.testing.assert_allclose(found.similarities, sims, atol=1e-5)
        hits += len({int(v) for v in found.values} & set(order.tolist()))
    return hits / (10 * len(queries))


@pytest.mark.parametrize("kind", KINDS)
def test_default_options_reach_recall_on_random_data(registry: StoreRegistry, kind: str) -> None:
    # random gaussian keys are the worst case for an approximate index; ivf trains at its default
    # threshold (20000 rows, 512 cells)
    keys = gaussian(20_000, 64, seed=1)
    store = create(registry, kind)
    fill(store, keys)
    state = store.index_state()
    assert (state.kind, state.entries, state.approximate, state.tuning) == (kind, len(keys), kind != "exact", False)
    if kind != "exact":
        assert state.tuned is not None and state.tuned["recall"] >= 0.96  # target 0.95 + margin 0.01
        assert state.tuned["at_count"] >= len(keys) // 2  # tuned again as the store doubled
    assert mean_recall(store, keys, gaussian(200, 64, seed=2), exact=kind == "exact") >= 0.95


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_tuning_on_clustered_data_picks_a_cheap_setting(registry: StoreRegistry, kind: str) -> None:
    keys = clustered(12_000, 64, seed=20)
    store = create(registry, kind, **({"train_threshold": 6000} if kind == "ivf" else {}))
    fill(store, keys)
    tuned = store.index_state().tuned
    assert tuned is not None and tuned["recall"] >= 0.96
    if kind == "hnsw":
        assert tuned["ef_search"] <= 128  # the safe default before tuning is 2048
    else:
        nlist = min(round(4 * np.sqrt(6000)), 6000 // 39)  # trained at 6000 rows: 153 cells
        assert tuned["nprobe"] <= nlist // 10  # the safe default before tuning is 90% of the cells
    assert mean_recall(store, keys, clustered(200, 64, seed=21)) >= 0.95


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_a_lower_target_recall_tunes_cheaper(registry: StoreRegistry, kind: str) -> None:
    keys = gaussian(4000, 32, seed=22)
    extra = {"train_threshold": 2000} if kind == "ivf" else {}
    loose = create(registry, kind, "loose", target_recall=0.5, **extra)
    strict = create(registry, kind, "strict", target_recall=1.0, **extra)
    for store in (loose, strict):
        fill(store, keys)
    parameter = "ef_search" if kind == "hnsw" else "nprobe"
    low, high = loose.index_state().tuned, strict.index_state().tuned
    assert low is not None and high is not None
    assert low[parameter] < high[parameter]
    assert 0.51 <= low["recall"] < 1.0 and high["recall"] == 1.0  # 1.0 cannot take the margin
    assert mean_recall(strict, keys, gaussian(100, 32, seed=23)) >= 0.99


@pytest.mark.parametrize(("kind", "options"), [("hnsw", {"ef_search": 40}), ("ivf", {"nprobe": 3, **SMALL_IVF})])
def test_explicit_search_options_are_not_tuned(
    registry: StoreRegistry, kind: str, options: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stores")
    store = create(registry, kind, **options)
    fill(store, gaussian(3000, 16, seed=24))
    state = store.index_state()
    assert state.approximate and state.tuned is None and not state.tuning
    assert not any("stores_index_tuned" in r.getMessage() for r in caplog.records)


def test_hnsw_is_tuned_when_it_leaves_the_exact_regime_and_as_it_doubles(
    registry: StoreRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stores")
    keys = gaussian(2400, 16, seed=25)
    store = create(registry, "hnsw")
    fill(store, keys[:999], batch=999)
    assert store.index_state().tuned is None  # below 1000 live entries searches are exact scans
    fill(store, keys[999:1200])
    assert store.index_state().tuned["at_count"] == 1200
    fill(store, keys[1200:2300])  # less than double: kept
    assert store.index_state().tuned["at_count"] == 1200
    fill(store, keys[2300:2400])
    assert store.index_state().tuned["at_count"] == 2400
    assert sum("stores_index_tuned" in r.getMessage() for r in caplog.records) == 2


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_the_tuned_value_survives_close_and_reopen(
    data_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    keys = clustered(3000, 32, seed=26)
    with StoreRegistry(data_path) as registry:
        store = create(registry, kind, **(SMALL_IVF if kind == "ivf" else {}))
        fill(store, keys)
        tuned = store.index_state().tuned
        assert tuned is not None and tuned["at_count"] >= 1500  # once 2000 rows were in, say
        assert registry.describe("s").tuned == tuned
    caplog.set_level(logging.INFO, logger="stores")
    with StoreRegistry(data_path) as registry:  # from the checkpoint: not measured again
        store = registry.get("s")
        assert store.wait_for_rebuild(60)
        assert store.index_state().tuned == tuned
    messages = [r.getMessage() for r in caplog.records]
    assert any("stores_index_loaded" in m for m in messages)
    assert not any("stores_index_tuned" in m for m in messages)
    shutil.rmtree(data_path / "index")
    caplog.clear()
    with StoreRegistry(data_path) as registry:  # rebuilt from SQLite: measured again in the background
        store = registry.get("s")
        assert store.wait_for_rebuild(60)
        again = store.index_state().tuned
        assert again is not None and again["at_count"] == 3000 and again["recall"] >= 0.96
    assert any("stores_index_tuned" in r.getMessage() for r in caplog.records)


# -- LocalAI semantics hold for every kind -------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_semantics_on_small_stores(registry: StoreRegistry, kind: str) -> None:
    store = create(registry, kind)
    assert store.find([1.0, 0.0, 0.0], 3).values == []  # empty store
    x, y, z, neg_x = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]
    store.set([x, y, z, neg_x], ["x", "y", "z", "-x"])
    found = store.find([2.0, 0.0, 0.0], 100)  # topk above the count: everything
    assert found.similarities == pytest.approx([1.0, 0.0, 0.0, -1.0], abs=1e-6)
    assert found.values[0] == "x" and found.values[-1] == "-x"
    store.set([y], ["y2"])  # upsert: only the value changes
    assert store.count() == 4 and store.get([y]).values == ["y2"]
    assert store.find(y, 1).values == ["y2"]
    store.delete([x, y, z, neg_x])
    assert store.dimension is None and store.find(x, 1).values == []
    store.set([[0.0, 1.0]], ["2d"])  # emptied: a new dimension is fine
    assert store.find([0.0, 3.0], 5).values == ["2d"]


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_topk_at_least_the_live_count_is_complete_and_exact(registry: StoreRegistry, kind: str) -> None:
    keys = gaussian(3000, 24, seed=3)
    store = create(registry, kind, **(SMALL_IVF if kind == "ivf" else {}))
    fill(store, keys)
    store.delete(keys[:200].tolist())  # default policy: below the compaction threshold, tombstones stay
    assert store.index_state().tombstones == (200 if kind == "hnsw" else 0)
    live = keys[200:]
    query = gaussian(1, 24, seed=4)[0]
    order, sims = reference_top(live, query, len(live))
    found = store.find(query.tolist(), 10_000)
    assert [int(v) for v in found.values] == (order + 200).tolist()
    np.testing.assert_allclose(found.similarities, sims, atol=1e-5)


# -- deletes never come back ---------------------------------------------------------------------


def gone_from(store: VectorStore, keys: np.ndarray, deleted: range) -> set[str]:
    """Deleted values that a find still returns (should be none)."""
    gone = {str(i) for i in deleted}
    return gone & {v for i in deleted for v in store.find(keys[i].tolist(), 5).values}


def assert_deleted_absent(store: VectorStore, keys: np.ndarray, deleted: range, live: int) -> None:
    gone = {str(i) for i in deleted}
    for i in list(deleted)[:: max(1, len(deleted) // 15)]:
        found = store.find(keys[i].tolist(), 10)
        assert len(found.values) == 10 and not gone & set(found.values)
        assert found.similarities[0] < 0.99  # the deleted key itself would score 1.0
    assert store.count() == store.index_state().entries == live
    assert not gone & set(store.find(keys[0].tolist(), 100_000).values)


@pytest.mark.parametrize("kind", KINDS)
def test_deletes_stay_deleted_live_after_reopen_and_after_rebuild(
    data_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    keys = gaussian(3000, 32, seed=5)
    deleted = range(100, 400)
    with StoreRegistry(data_path) as registry:
        store = create(registry, kind, **(SMALL_IVF if kind == "ivf" else {}))
        fill(store, keys)
        store.delete(keys[deleted.start : deleted.stop].tolist())
        assert_deleted_absent(store, keys, deleted, 2700)
    caplog.set_level(logging.INFO, logger="stores")
    with StoreRegistry(data_path) as registry:  # from the checkpoint (tombstones included)
        assert_deleted_absent(registry.get("s"), keys, deleted, 2700)
    assert any("stores_index_loaded" in r.getMessage() and f"kind={kind}" in r.getMessage() for r in caplog.records)
    shutil.rmtree(data_path / "index")
    caplog.clear()
    with StoreRegistry(data_path) as registry:  # no checkpoint: rebuilt from SQLite
        store = registry.get("s")
        assert_deleted_absent(store, keys, deleted, 2700)
        assert store.index_state().approximate == (kind != "exact")
    assert any("stores_index_rebuilt" in r.getMessage() for r in caplog.records)


CRASHER = """
import os, sys
import numpy as np
from stores.registry import StoreRegistry
path, kind = sys.argv[1], sys.argv[2]
keys = np.random.default_rng(6).normal(size=(3000, 16)).astype(np.float32)
reg = StoreRegistry(path).open()
reg.create("s", index_kind=kind, index_options={"train_threshold": 2000} if kind == "ivf" else None)
store = reg.get("s")
store.set(keys[:2500].tolist(), [str(i) for i in range(2500)])
assert store.wait_for_rebuild(120)
store.delete(keys[:100].tolist())
store.checkpoint()                                  # tombstones 0..99 in the checkpoint
store.delete(keys[100:200].tolist())                # logged after it: replayed on open
store.set(keys[2500:].tolist(), [str(i) for i in range(2500, 3000)])
store.delete(keys[2900:].tolist())                  # rows newer than the checkpoint, deleted again
os._exit(0)                                         # no close(): no final checkpoint
"""


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_deletes_after_the_checkpoint_survive_a_crash(data_path: Path, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASHER), str(data_path), kind],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=env, check=False,
    )
    assert result.returncode == 0, result.stderr
    keys = gaussian(3000, 16, seed=6)
    caplog.set_level(logging.INFO, logger="stores")
    with StoreRegistry(data_path) as registry:
        store = registry.get("s")
        assert_deleted_absent(store, keys, range(0, 200), 2700)
        assert_deleted_absent(store, keys, range(2900, 3000), 2700)
        assert store.find(keys[2600].tolist(), 1).values == ["2600"]
        assert store.index_state().tombstones == (200 if kind == "hnsw" else 0)
    assert any("stores_index_loaded" in r.getMessage() for r in caplog.records)


def test_a_checkpoint_of_another_kind_is_rejected_and_rebuilt(data_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    keys = gaussian(1500, 16, seed=7)
    with StoreRegistry(data_path) as registry:
        exact, hnsw = create(registry, "exact", "e"), create(registry, "hnsw", "h")
        for store in (exact, hnsw):
            fill(store, keys)
        exact_stem, hnsw_stem = data_path / "index" / str(exact.id), data_path / "index" / str(hnsw.id)
    for suffix in (".faiss", ".json"):  # a valid exact checkpoint where the hnsw one should be
        shutil.copy(exact_stem.with_suffix(suffix), hnsw_stem.with_suffix(suffix))
    caplog.set_level(logging.INFO, logger="stores")
    with StoreRegistry(data_path) as registry:
        store = registry.get("h")
        assert store.index_state().kind == "hnsw"
        assert store.find(keys[3].tolist(), 1).values == ["3"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("stores_checkpoint_rejected" in m and "kind 'exact'" in m for m in messages)
    assert any("stores_index_rebuilt" in m for m in messages)


def test_a_damaged_tombstone_file_is_rejected(data_path: Path) -> None:
    keys = gaussian(1500, 16, seed=8)
    with StoreRegistry(data_path) as registry:
        store = create(registry, "hnsw")
        fill(store, keys)
        store.delete(keys[:30].tolist())
        stem = data_path / "index" / str(store.id)
    dead = stem.with_suffix(".dead")
    dead.write_bytes(dead.read_bytes()[:-8])  # a lost tombstone would resurrect a row
    with StoreRegistry(data_path) as registry:
        assert_deleted_absent(registry.get("s"), keys, range(30), 1470)


# -- HNSW compaction and IVF training ------------------------------------------------------------


def test_hnsw_compaction_triggers_and_results_stay_right(compacting: StoreRegistry) -> None:
    keys = gaussian(2000, 32, seed=9)
    store = create(compacting, "hnsw")
    fill(store, keys)
    store.delete(keys[:150].tolist())  # 150 > 50 but < 10% of 2000: not yet
    assert store.wait_for_rebuild(timeout=60)
    assert store.index_state().tombstones == 150
    store.delete(keys[150:300].tolist())  # 300 > 10%: compacted in the background
    assert store.wait_for_rebuild(timeout=60)
    state = store.index_state()
    assert (state.entries, state.tombstones) == (1700, 0)
    assert state.tuned is not None and state.tuned["at_count"] == 1700  # the rebuild measured its index
    assert_deleted_absent(store, keys, range(300), 1700)
    live = keys[300:]
    hits = 0
    for query in gaussian(100, 32, seed=10):
        order, _ = reference_top(live, query, 10)
        hits += len({int(v) for v in store.find(query.tolist(), 10).values} & set((order + 300).tolist()))
    assert hits / 1000 >= 0.95


def test_ivf_trains_at_its_threshold_and_deletes_in_place(registry: StoreRegistry) -> None:
    keys = gaussian(3000, 16, seed=11)
    store = create(registry, "ivf", train_threshold=2000)
    store.set(keys[:1999].tolist(), [str(i) for i in range(1999)])
    assert store.wait_for_rebuild(timeout=60)
    assert not store.index_state().approximate  # exact until the threshold
    store.set(keys[1999:].tolist(), [str(i) for i in range(1999, 3000)])
    assert store.wait_for_rebuild(timeout=60)
    assert store.index_state().approximate
    assert store.index_state().tuned["at_count"] == 3000  # measured when trained
    store.delete(keys[:50].tolist())
    state = store.index_state()
    assert state == IndexState("ivf", 2950, 0, approximate=True, rebuilding=False, tuned=state.tuned)
    assert_deleted_absent(store, keys, range(50), 2950)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_writes_during_a_rebuild_are_not_lost(
    compacting: StoreRegistry, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = gaussian(3000, 16, seed=12)
    store = create(compacting, kind, **(SMALL_IVF if kind == "ivf" else {}))
    fill(store, keys[:2400])
    built, resume = threading.Event(), threading.Event()
    original = VectorStore._build_from

    def slow_build(self: VectorStore, conn: Any, dimension: int) -> Any:
        fresh = original(self, conn, dimension)
        built.set()  # the snapshot is read and indexed; hold the swap back while writes land
        assert resume.wait(60)
        return fresh

    monkeypatch.setattr(VectorStore, "_build_from", slow_build)
    compactor = threading.Thread(target=store.compact)
    compactor.start()
    assert built.wait(60)
    store.set(keys[2400:].tolist(), [str(i) for i in range(2400, 3000)])  # new rows
    store.delete(keys[:40].tolist())  # rows in the snapshot
    store.delete(keys[2950:].tolist())  # rows newer than the snapshot
    store.set([keys[500].tolist()], ["upserted"])  # value only
    store.checkpoint()  # must not prune the deletes the rebuild still has to apply
    # finds keep answering from the old index meanwhile, with every write applied
    assert store.find(keys[2500].tolist(), 1).values == ["2500"]
    assert not gone_from(store, keys, range(40))
    resume.set()
    compactor.join(60)
    assert not compactor.is_alive()
    monkeypatch.undo()
    state = store.index_state()
    # deletes of snapshot rows that land mid-build are tombstones in the fresh HNSW too
    assert (state.entries, state.tombstones) == (2910, 40 if kind == "hnsw" else 0)
    assert_deleted_absent(store, keys, range(40), 2910)
    assert_deleted_absent(store, keys, range(2950, 3000), 2910)
    assert store.find(keys[2700].tolist(), 1).values == ["2700"]
    assert store.find(keys[500].tolist(), 1).values == ["upserted"]


# -- options are validated at create --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options", "param"),
    [
        ("exact", {"m": 16}, "index_options.m"),
        ("hnsw", {"ef": 10}, "index_options.ef"),
        ("hnsw", {"m": 1}, "index_options.m"),
        ("hnsw", {"ef_search": "many"}, "index_options.ef_search"),
        ("hnsw", {"ef_construction": True}, "index_options.ef_construction"),
        ("ivf", {"nlist": 0}, "index_options.nlist"),
        ("ivf", {"nlist": 64, "nprobe": 65}, "index_options.nprobe"),
        ("ivf", {"nlist": 1000, "train_threshold": 5000}, "index_options.train_threshold"),
        ("ivf", {"nprobe": 2.5}, "index_options.nprobe"),
        ("hnsw", {"target_recall": 0}, "index_options.target_recall"),
        ("hnsw", {"target_recall": 1.01}, "index_options.target_recall"),
        ("ivf", {"target_recall": "high"}, "index_options.target_recall"),
        ("ivf", {"target_recall": True}, "index_options.target_recall"),
        ("hnsw", {"ef_search": 64, "target_recall": 0.9}, "index_options.target_recall"),
        ("ivf", {"target_recall": 0.9, "nprobe": 8}, "index_options.target_recall"),
        ("exact", {"target_recall": 0.9}, "index_options.target_recall"),
        ("lsh", None, "index_kind"),
    ],
)
def test_bad_index_options_are_refused(registry: StoreRegistry, kind: str, options: Any, param: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        registry.create("bad", index_kind=kind, index_options=options)
    assert caught.value.param == param
    assert param.rsplit(".", 1)[-1] in caught.value.message
    assert registry.list() == []


def test_options_are_kept_and_applied(registry: StoreRegistry) -> None:
    info = registry.create("h", index_kind="hnsw", index_options={"m": 8, "ef_search": 40})
    assert (info.index_kind, info.index_options) == ("hnsw", {"m": 8, "ef_search": 40})
    ivf = registry.create("i", index_kind="ivf", index_options={"nlist": 8})
    assert ivf.index_options == {"nlist": 8}
    store = registry.get("i")
    keys = gaussian(400, 8, seed=13)
    fill(store, keys)
    assert not store.index_state().approximate  # nlist 8 alone implies train_threshold 20000


def test_a_rebuild_of_a_store_emptied_meanwhile_is_discarded(
    compacting: StoreRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = gaussian(1500, 16, seed=14)
    store = create(compacting, "hnsw")
    fill(store, keys)
    built, resume = threading.Event(), threading.Event()
    original = VectorStore._build_from

    def slow_build(self: VectorStore, conn: Any, dimension: int) -> Any:
        fresh = original(self, conn, dimension)
        built.set()
        assert resume.wait(60)
        return fresh

    monkeypatch.setattr(VectorStore, "_build_from", slow_build)
    outcome: list[bool] = []
    compactor = threading.Thread(target=lambda: outcome.append(store.compact()))
    compactor.start()
    assert built.wait(60)
    store.delete(keys.tolist())  # emptied: the dimension is free again
    store.set([[1.0, 0.0], [0.0, 1.0]], ["a", "b"])
    resume.set()
    compactor.join(60)
    assert outcome == [False]
    assert store.index_state().entries == 2
    assert store.find([1.0, 0.1], 5).values == ["a", "b"]
