"""Recall tuning: the smallest ``ef_search`` (hnsw) or ``nprobe`` (ivf) that reaches a store's
``target_recall`` on the store's own keys, measured against an exact scan of the same index.

Queries are synthetic, not stored keys: a stored key is a node of the HNSW graph (and sits in its
own IVF cell), so searching for it (leave-one-out) walks straight to prepared neighbours and
overstates recall badly (random 64-d keys, 20k: 0.97 at ef_search=16 where fresh queries get 0.56).
Each query is a smoothed-bootstrap draw instead: a sampled key turned away from itself by the angle
to its own nearest neighbour, towards a random direction with the keys' second moments (a sum of
``DIRECTION_TERMS`` sampled keys with random signs; one key would put the query next to that key,
which is optimistic again). Measured at 20k rows on gaussian 64-d, clustered 384-d and a 48-d
latent manifold in 384-d, this tracks the recall of fresh queries from the same distribution to
about +-0.01 where it crosses 0.95 (pessimistic, if anything, on clustered data);
``RECALL_MARGIN`` on top of the target covers that and the noise of 100 queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

TUNING_QUERIES = 100
TUNING_K = 10  # recall@10, the contract's measure
# Added to ``target_recall`` (capped at 1): covers the estimate's error and the 100-query noise.
RECALL_MARGIN = 0.01
# Queries per hold of the index lock: at ef_search=4096 on 100k 384-d keys ~0.1 s on 2 cores.
TUNING_BATCH = 8
TUNING_SEED = 0x7E57  # fixed: the same data tunes to the same value
DIRECTION_TERMS = 32
SAMPLE_POOL = 1024  # keys sampled per tuning: the query origins and the direction terms
HNSW_EF_LADDER = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


def ivf_nprobe_ladder(nlist: int) -> list[int]:
    """1, 2, 4, ... below ``nlist``, then ``nlist`` itself (every cell: exact)."""
    return [1 << i for i in range(max(1, nlist).bit_length()) if (1 << i) < nlist] + [nlist]


@dataclass(frozen=True)
class Tuning:
    """A measured choice: ``parameter`` = ``value`` gave ``recall`` at ``at_count`` live entries."""

    parameter: str  # "ef_search" or "nprobe"
    value: int
    recall: float  # recall@10 measured at ``value``
    target: float  # the target_recall it was tuned for
    at_count: int

    def as_dict(self) -> dict[str, Any]:
        """The form shown in ``index_state`` and kept in the checkpoint sidecar."""
        return {
            self.parameter: self.value,
            "recall": round(self.recall, 4),
            "target_recall": self.target,
            "at_count": self.at_count,
        }

    @classmethod
    def from_dict(cls, raw: object, parameter: str, target: float) -> Tuning | None:
        """The tuning a sidecar recorded, or None when absent, malformed or for another target."""
        if not isinstance(raw, dict):
            return None
        value, recall, at_count = raw.get(parameter), raw.get("recall"), raw.get("at_count")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (value, at_count)):
            return None
        if not isinstance(recall, (int, float)) or raw.get("target_recall") != target or value < 1:
            return None
        return cls(parameter, int(value), float(recall), target, int(at_count))


class Tunable(Protocol):
    """What ``tune`` needs from an index (``HnswIndex``, a trained ``IvfIndex``)."""

    max_id: int

    @property
    def count(self) -> int: ...

    @property
    def dead_count(self) -> int: ...

    def tuning_ladder(self) -> Sequence[int]:
        """Candidate values, cheapest first; the last one is the cap."""
        ...

    def sample_keys(self, n: int, rng: np.random.Generator) -> NDArray[np.float32]:
        """Unit keys of ``n`` distinct live entries, drawn with ``rng``."""
        ...

    def exact_batch(self, unit: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Exact top ``k`` of each query row over the live entries: ``(sims, ids)``, -1 padded."""
        ...

    def approximate_batch(self, unit: NDArray[np.float32], k: int, value: int) -> NDArray[np.int64]:
        """Ids of the approximate top ``k`` of each query row with the tuned parameter at ``value``."""
        ...


def tune(
    index: Tunable,
    parameter: str,
    target: float,
    *,
    lock: AbstractContextManager[Any] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> Tuning | None:
    """The cheapest ladder value whose measured recall@10 reaches ``target`` + ``RECALL_MARGIN``
    (the ladder's last value when none does), or None when ``stop`` turned true meanwhile.

    ``lock`` (the store's index lock; none for an index nobody else sees yet) is held per batch
    of queries only, so finds and writes interleave with a tuning; a batch's exact answers are
    recomputed in the same hold whenever the index changed since they were taken.
    """
    guard = lock if lock is not None else nullcontext()
    rng = np.random.default_rng(TUNING_SEED)
    with guard:
        count = index.count
        keys = index.sample_keys(min(SAMPLE_POOL, count), rng) if count > 1 else None
    if keys is None:
        return None
    n = min(TUNING_QUERIES, len(keys))
    origins = keys[:n]
    nearest = []
    for start in range(0, n, TUNING_BATCH):
        if stop():
            return None
        with guard:
            nearest.append(index.exact_batch(origins[start : start + TUNING_BATCH], 2)[0][:, 1])
    terms = keys[rng.integers(len(keys), size=(n, DIRECTION_TERMS))].astype(np.float64)
    directions = np.sum(terms * rng.choice([-1.0, 1.0], size=(n, DIRECTION_TERMS, 1)), axis=1)
    queries = near_neighbour_queries(origins, np.concatenate(nearest), directions)
    measure = _Measure(index, queries, guard, stop)
    wanted = min(1.0, target + RECALL_MARGIN)
    ladder = list(index.tuning_ladder())
    for value in ladder:
        last = value == ladder[-1]
        recall = measure.recall(value, abandon_below=0.0 if last else wanted)
        if recall is None:
            return None
        if recall >= wanted or last:
            return Tuning(parameter, value, recall, target, count)
    raise AssertionError("unreachable: the ladder's last value always returns")


class _Measure:
    """Recall@10 of ladder values over fixed queries, against exact answers kept per batch."""

    def __init__(
        self, index: Tunable, queries: NDArray[np.float32], guard: AbstractContextManager[Any], stop: Callable[[], bool]
    ) -> None:
        self.index, self.guard, self.stop = index, guard, stop
        self.batches = [queries[i : i + TUNING_BATCH] for i in range(0, len(queries), TUNING_BATCH)]
        self.truth: list[tuple[tuple[int, int, int], NDArray[np.int64]] | None] = [None] * len(self.batches)

    def recall(self, value: int, abandon_below: float) -> float | None:
        """None when stopped. Abandoned early (returning a value under ``abandon_below``) once even
        perfect answers to the remaining queries could not reach it."""
        possible = TUNING_K * sum(len(b) for b in self.batches)
        hits = 0
        for i, batch in enumerate(self.batches):
            if self.stop():
                return None
            with self.guard:
                truth = self._truth(i)
                found = self.index.approximate_batch(batch, TUNING_K, value)
            for got, want in zip(found, truth):
                want_ids = set(want[want >= 0].tolist())
                hits += len(set(got[got >= 0].tolist()) & want_ids)
                possible -= TUNING_K - len(want_ids)
            remaining = TUNING_K * sum(len(b) for b in self.batches[i + 1 :])
            if hits + remaining < abandon_below * possible:
                return hits / possible
        return hits / possible

    def _truth(self, i: int) -> NDArray[np.int64]:
        """The exact answers for batch ``i``, retaken when entries came or went since (the index
        grows during an ingest: stale answers would count every new neighbour as a miss)."""
        index = self.index
        version = (index.count, index.max_id, index.dead_count)
        kept = self.truth[i]
        if kept is None or kept[0] != version:
            kept = self.truth[i] = (version, index.exact_batch(self.batches[i], TUNING_K)[1])
        return kept[1]


def near_neighbour_queries(
    origins: NDArray[np.float32], nearest: NDArray[np.float32], directions: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Unit queries at cosine ``nearest[i]`` from ``origins[i]``, turned towards ``directions[i]``."""
    origins64 = origins.astype(np.float64)
    cos = np.clip(nearest.astype(np.float64), -1.0, 1.0)[:, None]
    away = directions.astype(np.float64)
    away -= np.sum(away * origins64, axis=1, keepdims=True) * origins64
    norms = np.linalg.norm(away, axis=1, keepdims=True)
    # a direction parallel to the origin (a one-key store, say) gives none: any orthogonal one will do
    fallback = np.roll(origins64, 1, axis=1)
    fallback -= np.sum(fallback * origins64, axis=1, keepdims=True) * origins64
    away = np.where(norms > 1e-9, away, fallback)
    away /= np.maximum(np.linalg.norm(away, axis=1, keepdims=True), 1e-12)
    queries = cos * origins64 + np.sqrt(1.0 - cos * cos) * away
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return np.ascontiguousarray(queries, dtype=np.float32)
