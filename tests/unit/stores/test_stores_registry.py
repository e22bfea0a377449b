"""Named stores: the default namespace, create/list/describe/drop and isolation between stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from stores.errors import InvalidInput, StoreClosed, StoreExists, StoreNotFound
from stores.registry import StoreRegistry


def test_default_namespace_and_implicit_create(registry: StoreRegistry) -> None:
    assert registry.get("") is registry.get(None)
    with pytest.raises(StoreNotFound):
        registry.get("docs", create=False)
    registry.get("docs").set([[1.0, 0.0]], ["d"])
    assert [info.name for info in registry.list()] == ["", "docs"]


def test_stores_are_isolated(registry: StoreRegistry) -> None:
    registry.get("a").set([[1.0, 0.0]], ["in a"])
    registry.get("b").set([[1.0, 0.0, 0.0]], ["in b"])
    assert registry.get("a").find([1.0, 0.0], 5).values == ["in a"]
    assert registry.get("b").find([1.0, 0.0, 0.0], 5).values == ["in b"]
    assert registry.describe("a").dimension == 2 and registry.describe("b").dimension == 3


def test_create_describe_and_refuse_duplicates(registry: StoreRegistry) -> None:
    info = registry.create("emb", embedding_model="minilm", embedding_dimension=384)
    assert (info.name, info.count, info.dimension, info.index_kind, info.metric) == ("emb", 0, None, "exact", "cosine")
    assert (info.embedding_model, info.embedding_dimension) == ("minilm", 384)
    with pytest.raises(StoreExists):
        registry.create("emb")
    with pytest.raises(InvalidInput, match="index_kind"):
        registry.create("other", index_kind="lsh")
    with pytest.raises(InvalidInput, match="metric"):
        registry.create("other", metric="l1")


def test_drop_removes_rows_and_index_files(data_path: Path) -> None:
    with StoreRegistry(data_path, checkpoint_every=1) as registry:
        registry.get("gone").set([[1.0, 2.0]], ["v"])
        files = list((data_path / "index").iterdir())
        assert files, "checkpoint_every=1 should have written the index"
        registry.drop("gone")
        assert list((data_path / "index").iterdir()) == []
        with pytest.raises(StoreNotFound):
            registry.drop("gone")
        # a store re-created under the same name starts empty
        assert registry.get("gone").find([1.0, 2.0], 3).values == []
        assert registry.describe("gone").count == 0


def test_periodic_checkpoint_and_closed_registry(data_path: Path) -> None:
    registry = StoreRegistry(data_path, checkpoint_every=2).open()
    store = registry.get("")
    store.set([[1.0, 0.0]], ["a"])
    assert not (data_path / "index").exists()
    store.set([[0.0, 1.0]], ["b"])
    assert (data_path / "index" / "1.json").read_text().count('"seq": 2') == 1
    registry.close()
    with pytest.raises(StoreClosed):
        registry.get("")
    with pytest.raises(StoreClosed):
        store.find([1.0, 0.0], 1)


def test_writes_to_a_dropped_store_are_refused(registry: StoreRegistry) -> None:
    stale = registry.get("tmp")
    stale.set([[1.0, 0.0]], ["v"])
    registry.drop("tmp")
    with pytest.raises(StoreNotFound, match="dropped"):
        stale.set([[0.0, 1.0]], ["w"])
    assert registry.get("tmp").count() == 0
