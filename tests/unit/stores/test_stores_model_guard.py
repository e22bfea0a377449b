"""The embedding-model guard: the first set naming a model records it (with the key dimension); a set
or find naming another model is refused; requests that name none behave exactly as LocalAI's."""

from __future__ import annotations

from pathlib import Path

import pytest

from stores.errors import DimensionMismatch, ModelMismatch
from stores.registry import StoreRegistry

X, Y = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]


def test_first_set_naming_a_model_records_it(registry: StoreRegistry) -> None:
    store = registry.get("docs")
    store.set([X], ["x"])
    assert (registry.describe("docs").embedding_model, store.embedding_model) == (None, None)
    store.set([Y], ["y"], model="minilm")
    info = registry.describe("docs")
    assert (info.embedding_model, info.embedding_dimension) == ("minilm", 3)
    store.set([[0.0, 0.0, 1.0]], ["z"], model="minilm")
    store.set([[1.0, 1.0, 0.0]], ["xy"])  # no model named: LocalAI's request, no check
    assert store.find(X, 2, model="minilm").values == ["x", "xy"]
    assert store.find(X, 1).values == ["x"]


def test_another_model_is_refused_and_writes_nothing(registry: StoreRegistry) -> None:
    store = registry.get("docs")
    store.set([X], ["x"], model="minilm")
    with pytest.raises(ModelMismatch) as refused:
        store.set([Y], ["y"], model="bge-small")
    assert "'minilm'" in refused.value.message and "'bge-small'" in refused.value.message
    assert refused.value.code == "model_mismatch" and refused.value.param == "model"
    assert store.count() == 1 and store.get([Y]).values == []
    with pytest.raises(ModelMismatch, match="bge-small"):
        store.find(X, 1, model="bge-small")
    assert registry.describe("docs").embedding_model == "minilm"


def test_model_given_at_create_is_enforced_and_its_dimension_filled(registry: StoreRegistry) -> None:
    registry.create("made", embedding_model="minilm")
    store = registry.get("made")
    with pytest.raises(ModelMismatch):
        store.set([X], ["x"], model="bge-small")
    store.set([X], ["x"], model="minilm")
    info = registry.describe("made")
    assert (info.embedding_model, info.embedding_dimension) == ("minilm", 3)
    registry.create("sized", embedding_dimension=384)
    registry.get("sized").set([X], ["x"], model="minilm")
    info = registry.describe("sized")
    assert (info.embedding_model, info.embedding_dimension) == ("minilm", 384)  # create's dimension stays


def test_a_refused_write_records_no_model(registry: StoreRegistry) -> None:
    store = registry.get("")
    store.set([X], ["x"])
    with pytest.raises(DimensionMismatch):
        store.set([[1.0, 0.0]], ["2d"], model="minilm")
    assert registry.describe("").embedding_model is None
    store.find(X, 1, model="anything")  # nothing recorded: nothing to check against


def test_the_recorded_model_survives_a_reopen(data_path: Path) -> None:
    with StoreRegistry(data_path) as registry:
        registry.get("docs").set([X], ["x"], model="minilm")
    with StoreRegistry(data_path) as registry:
        store = registry.get("docs")
        assert store.embedding_model == "minilm"
        with pytest.raises(ModelMismatch):
            store.find(X, 1, model="bge-small")
        assert store.find(X, 1, model="minilm").values == ["x"]
