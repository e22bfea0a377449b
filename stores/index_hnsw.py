"""The HNSW kind: a FAISS ``IndexHNSWFlat`` graph, with tombstones because HNSW cannot remove.

Deleted ids stay in the graph (they still route searches) but are excluded from every answer by an
``IDSelectorNot(IDSelectorBatch)`` passed in the search parameters, which ``IndexIDMap2`` translates
to its internal ids. Tombstones are checkpointed as a raw int64 file whose sha256 and size the
sidecar carries; the store compacts (rebuilds without them) once ``CompactionPolicy`` says so.
Small stores and ``topk >= live entries`` are answered by an exact scan of the graph's flat storage,
so such answers are complete and exact rather than approximate. ``ef_search`` is the option when
given, else the store's measured ``Tuning``, else a conservative value until one is measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from stores.checkpoint import Checkpoint
from stores.index import CompactionPolicy, SearchResult, VectorIndex, search_faiss
from stores.index_options import HNSW_SAFE_EF_SEARCH, HnswOptions
from stores.index_tuning import HNSW_EF_LADDER

if TYPE_CHECKING:
    from numpy.typing import NDArray

DEAD_SUFFIX = ".dead"


class HnswIndex(VectorIndex[HnswOptions]):
    """Approximate cosine search over an HNSW graph keyed by row ids, with tombstoned deletes."""

    kind = "hnsw"
    # Below this many live entries a flat scan costs little and is exact: use it.
    exact_below = 1000

    def __init__(
        self,
        dimension: int,
        options: HnswOptions | None = None,
        index: faiss.Index | None = None,
        dead: NDArray[np.int64] | None = None,
    ) -> None:
        super().__init__(dimension, options or HnswOptions())
        if index is None:
            index = faiss.IndexIDMap2(faiss.IndexHNSWFlat(dimension, self.options.m, faiss.METRIC_INNER_PRODUCT))
        self._index = index
        self._graph = faiss.downcast_index(index.index)
        self._graph.hnsw.efConstruction = self.options.ef_construction
        self._dead: set[int] = set() if dead is None else {int(i) for i in dead}
        self._dead_sorted: NDArray[np.int64] | None = None
        self._selector: Any = None  # IDSelectorNot over _selector_batch, rebuilt when _dead changes
        self._selector_batch: Any = None

    @property
    def count(self) -> int:
        return int(self._index.ntotal) - len(self._dead)

    @property
    def dead_count(self) -> int:
        return len(self._dead)

    @property
    def ef_search(self) -> int:
        """The candidate list searches use now (a query of ``topk`` uses at least ``topk``)."""
        if self.options.ef_search is not None:
            return self.options.ef_search
        return self.tuning.value if self.tuning is not None else HNSW_SAFE_EF_SEARCH

    def remove(self, ids: NDArray[np.int64]) -> int:
        """Tombstone ids. An id above ``max_id`` was never added and is ignored; the store removes
        only rows it added, so every other id is present."""
        fresh = {int(i) for i in ids if int(i) <= self.max_id} - self._dead
        if fresh:
            self._dead |= fresh
            self._dead_sorted = self._selector = self._selector_batch = None
        return len(fresh)

    def needs_rebuild(self, policy: CompactionPolicy) -> bool:
        return policy.due(len(self._dead), int(self._index.ntotal))

    def _add_unit(self, ids: NDArray[np.int64], unit: NDArray[np.float32]) -> None:
        self._index.add_with_ids(unit, ids)

    def _search_unit(self, unit: NDArray[np.float32], k: int) -> SearchResult:
        if k >= self.count or self.count < self.exact_below:
            return self._scan_one(unit, k)
        ids, sims = search_faiss(self._index, unit, k, self._params(max(self.ef_search, k)))
        if len(ids) < k:  # tombstones starved the candidate list: answer completely instead
            return self._scan_one(unit, k)
        return ids, sims

    def _params(self, ef: int) -> Any:
        params = faiss.SearchParametersHNSW(efSearch=ef)
        if self._dead:
            params.sel = self._dead_selector()
        return params

    def _scan_one(self, unit: NDArray[np.float32], k: int) -> SearchResult:
        sims, ids = self.exact_batch(unit, k)
        keep = ids[0] >= 0
        return ids[0][keep], sims[0][keep]

    # -- recall tuning (stores.index_tuning.Tunable) -------------------------------------------

    def tuning_ladder(self) -> tuple[int, ...]:
        return HNSW_EF_LADDER

    def sample_keys(self, n: int, rng: np.random.Generator) -> NDArray[np.float32]:
        total = int(self._index.ntotal)
        order = rng.permutation(total)
        if self._dead:
            order = order[~np.isin(self._id_map()[order], self._dead_ids())]
        storage = faiss.downcast_index(self._graph.storage)
        keys = faiss.rev_swig_ptr(storage.get_xb(), total * self.dimension).reshape(total, self.dimension)
        return np.array(keys[order[:n]], dtype=np.float32)

    def exact_batch(self, unit: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Exact top ``k`` per row over the graph's flat storage, over-fetching past the tombstones."""
        storage = faiss.downcast_index(self._graph.storage)
        fetch = min(int(storage.ntotal), k + len(self._dead))
        sims, internal = storage.search(unit, fetch)
        ids = np.where(internal >= 0, self._id_map()[np.maximum(internal, 0)], -1).astype(np.int64)
        if self._dead:  # move tombstoned entries behind the live ones, keeping the order
            gone = np.isin(ids, self._dead_ids())
            ids[gone] = -1
            order = np.argsort(ids < 0, axis=1, kind="stable")
            ids, sims = np.take_along_axis(ids, order, axis=1), np.take_along_axis(sims, order, axis=1)
        return sims[:, :k], ids[:, :k]

    def approximate_batch(self, unit: NDArray[np.float32], k: int, value: int) -> NDArray[np.int64]:
        return self._index.search(unit, k, params=self._params(max(value, k)))[1]

    def _id_map(self) -> NDArray[np.int64]:
        return faiss.rev_swig_ptr(self._index.id_map.data(), self._index.ntotal)

    def _dead_ids(self) -> NDArray[np.int64]:
        if self._dead_sorted is None:
            self._dead_sorted = np.array(sorted(self._dead), dtype=np.int64)
        return self._dead_sorted

    def _dead_selector(self) -> Any:
        if self._selector is None:
            self._selector_batch = faiss.IDSelectorBatch(self._dead_ids())
            self._selector = faiss.IDSelectorNot(self._selector_batch)
        return self._selector

    # -- checkpoint -------------------------------------------------------------------------

    def _faiss_index(self) -> faiss.Index:
        return self._index

    def _checkpoint_extras(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        return {DEAD_SUFFIX: self._dead_ids().astype("<i8").tobytes()}, {"dead": len(self._dead)}

    @classmethod
    def _restore(cls, dimension: int, options: Any, index: faiss.Index, ckpt: Checkpoint) -> HnswIndex | str:
        if not isinstance(index, faiss.IndexIDMap2):
            return "wrong index type"
        graph = faiss.downcast_index(index.index)
        if not isinstance(graph, faiss.IndexHNSWFlat) or graph.metric_type != faiss.METRIC_INNER_PRODUCT:
            return "wrong index type"
        raw = ckpt.files.get(DEAD_SUFFIX)
        if raw is None or len(raw) % 8:
            return "tombstone file missing or malformed"
        dead = np.frombuffer(raw, dtype="<i8").astype(np.int64)
        if len(dead) != ckpt.sidecar.get("dead") or len(dead) > index.ntotal:
            return "tombstone count mismatch"
        return cls(dimension, options, index, dead)
