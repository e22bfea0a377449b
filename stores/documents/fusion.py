"""Reciprocal rank fusion: merge best-first rankings by rank alone, so scores on different scales
(BM25, cosine) never need to be made comparable.

score(id) = sum over rankings holding id of weight / (k + rank), rank counted from 1; k = 60
(Cormack et al., 2009) damps the head so one list cannot dominate.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

from stores.errors import InvalidInput

K = 60

IdT = TypeVar("IdT", bound=Hashable)


def rrf(
    rankings: Sequence[Sequence[IdT]], k: int = K, *, weights: Sequence[float] | None = None
) -> list[tuple[IdT, float]]:
    """Fused (id, score) pairs, best first; ties keep the order of first appearance.

    A ranking that repeats an id counts only its best rank.
    """
    if k < 0:
        raise InvalidInput(f"rrf k must be >= 0, got {k}", param="k")
    if weights is not None and len(weights) != len(rankings):
        raise InvalidInput(f"rrf got {len(weights)} weights for {len(rankings)} rankings", param="weights")
    scores: dict[IdT, float] = {}
    for position, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else float(weights[position])
        seen: set[IdT] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    # dicts keep insertion order and sorted() is stable: equal scores stay in first-seen order
    return sorted(scores.items(), key=lambda pair: -pair[1])
