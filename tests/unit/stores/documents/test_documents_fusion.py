"""Reciprocal rank fusion: the formula, ties, repeats, weights and bad arguments."""

from __future__ import annotations

import pytest

from stores.documents.fusion import rrf
from stores.errors import InvalidInput


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = dict(rrf([["a", "b", "c"], ["b", "d"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 63)
    assert fused["d"] == pytest.approx(1 / 62)
    assert [item for item, _ in rrf([["a", "b", "c"], ["b", "d"]])] == ["b", "a", "d", "c"]


def test_rrf_ties_keep_first_appearance_and_repeats_count_once() -> None:
    assert [item for item, _ in rrf([[1, 2], [2, 1]])] == [1, 2]  # equal sums
    assert dict(rrf([[5, 5, 6]], k=0)) == {5: 1.0, 6: pytest.approx(1 / 3)}


def test_rrf_weights_and_edge_cases() -> None:
    fused = dict(rrf([["a"], ["b"]], k=1, weights=[2.0, 1.0]))
    assert fused == {"a": 1.0, "b": 0.5}
    assert rrf([]) == [] and rrf([[], []]) == []
    with pytest.raises(InvalidInput):
        rrf([["a"]], weights=[1.0, 2.0])
    with pytest.raises(InvalidInput):
        rrf([["a"]], k=-1)
