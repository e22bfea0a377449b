"""The FAISS index of one store: a small common interface, the exact kind, and checkpointing.

Keys are L2-normalised (in float64, then stored as float32) so inner product is the cosine of the
raw keys; entries are keyed by SQLite row ids. Every kind (``ExactIndex`` here, ``HnswIndex`` and
``IvfIndex`` beside it) answers ``add/remove/search/count/save/load``; ``max_id`` (the highest row
id ever added) lets the store replay exactly the rows inserted after a checkpoint or snapshot,
because SQLite row ids only grow and a row's key never changes. Checkpoints go through
``stores.checkpoint`` and are rejected (so rebuilt from SQLite) when anything is off; they carry an
approximate index's ``Tuning`` (``stores.index_tuning``) so a restart need not measure again.

A single query runs FAISS with one OpenMP thread: with a team of two on a 2-core box every query
waits for the second thread to be scheduled (exact over 100k 384-d keys, p50 of a find: 48 ms with
two, 6 ms with one). Bulk adds, training and tuning keep the process default.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import faiss
import numpy as np

from stores.checkpoint import INDEX_SUFFIX, Checkpoint, read_checkpoint, reject, temp_index_path, write_checkpoint
from stores.errors import InvalidInput
from stores.index_options import TUNED_PARAMETER, ExactOptions, IndexOptions
from stores.index_tuning import Tuning

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

SearchResult = tuple["NDArray[np.int64]", "NDArray[np.float32]"]
OptionsT = TypeVar("OptionsT", bound=IndexOptions)
IndexT = TypeVar("IndexT", bound="VectorIndex[Any]")


@contextmanager
def omp_threads(threads: int) -> Iterator[None]:
    """FAISS's OpenMP team size for work in this thread (the setting is per thread), restored after."""
    before = faiss.omp_get_max_threads()
    if before == threads:
        yield
        return
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def normalise(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Unit-length float32 rows; a zero or non-finite row has no direction and is refused."""
    as64 = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(as64, axis=1)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise InvalidInput("a key must be a finite, non-zero vector (cosine similarity is undefined)")
    return np.ascontiguousarray(as64 / norms[:, None], dtype=np.float32)


@dataclass(frozen=True)
class CompactionPolicy:
    """When tombstones (deleted ids an index cannot drop in place) warrant a rebuild without them."""

    min_dead: int = 1000
    dead_fraction: float = 0.1

    def due(self, dead: int, total: int) -> bool:
        return dead > self.min_dead and dead > self.dead_fraction * total


class VectorIndex(Generic[OptionsT]):
    """What a store needs from an index. Not thread-safe: the store serialises access."""

    kind: ClassVar[str]
    # Below this many live entries searches are exact scans (and there is nothing to tune).
    exact_below: ClassVar[int] = 0

    def __init__(self, dimension: int, options: OptionsT) -> None:
        self.dimension = dimension
        self.options = options
        self.max_id = 0
        self.tuning: Tuning | None = None  # set by the store once measured, or from the checkpoint

    @property
    def tuned_parameter(self) -> str | None:
        """The search parameter ``target_recall`` tunes here; None when the options fix it."""
        name = TUNED_PARAMETER.get(self.kind)
        return name if name is not None and getattr(self.options, name) is None else None

    def needs_tuning(self) -> bool:
        """Approximate, tuned by target, and never measured or measured at under half today's size."""
        if self.tuned_parameter is None or not self.approximate or self.count < self.exact_below:
            return False
        return self.tuning is None or self.count >= 2 * self.tuning.at_count

    @property
    def count(self) -> int:
        """Live entries (tombstoned ones excluded)."""
        raise NotImplementedError

    @property
    def approximate(self) -> bool:
        """Whether answers may miss true neighbours (False for exact and an untrained ivf index)."""
        return True

    @property
    def dead_count(self) -> int:
        """Entries deleted but still held (tombstones), waiting for a compaction."""
        return 0

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add new row ids (never ones already present) with their raw keys."""
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._add_unit(ids, normalise(vectors))
        self.max_id = max(self.max_id, int(ids.max()))

    def remove(self, ids: NDArray[np.int64]) -> int:
        """Remove ids; absent ones are ignored. The number removed."""
        raise NotImplementedError

    def search(self, query: NDArray[np.float32], k: int) -> SearchResult:
        """The ``k`` nearest live ids, most similar first, with cosines clamped to [-1, 1]."""
        k = min(k, self.count)
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        unit = normalise(np.asarray(query, dtype=np.float32).reshape(1, -1))
        with omp_threads(1):
            ids, sims = self._search_unit(unit, k)
        return ids, np.clip(sims, -1.0, 1.0)

    def needs_rebuild(self, policy: CompactionPolicy) -> bool:
        """True when a rebuild from SQLite would make this index better (compaction, training)."""
        return False

    def training_rows(self, rows: int) -> int:
        """How many sample rows a fresh index wants through ``train`` before ``add``, for ``rows`` rows."""
        return 0

    def train(self, vectors: NDArray[np.float32], rows: int) -> None:
        """Prepare for ``rows`` rows from a sample of their keys (only kinds that need it)."""

    # -- kind-specific parts ----------------------------------------------------------------

    def _add_unit(self, ids: NDArray[np.int64], unit: NDArray[np.float32]) -> None:
        raise NotImplementedError

    def _search_unit(self, unit: NDArray[np.float32], k: int) -> SearchResult:
        raise NotImplementedError

    def _faiss_index(self) -> faiss.Index:
        raise NotImplementedError

    def _checkpoint_extras(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        """Extra files (by suffix) and sidecar fields this kind persists beside the FAISS index."""
        return {}, {}

    @classmethod
    def _restore(cls: type[IndexT], dimension: int, options: Any, index: faiss.Index, ckpt: Checkpoint) -> IndexT | str:
        """The index rebuilt from a verified checkpoint, or a reason to reject it."""
        raise NotImplementedError

    # -- checkpoint -------------------------------------------------------------------------

    def save(self, stem: Path, seq: int) -> None:
        """Write the checkpoint files covering every write up to ``seq``."""
        tmp = temp_index_path(stem)
        faiss.write_index(self._faiss_index(), str(tmp))
        extras, fields = self._checkpoint_extras()
        sidecar = {
            "kind": self.kind,
            "dimension": self.dimension,
            "count": int(self._faiss_index().ntotal),
            "max_id": self.max_id,
            "seq": seq,
            "tuned": self.tuning.as_dict() if self.tuning is not None else None,
            **fields,
        }
        write_checkpoint(stem, {INDEX_SUFFIX: tmp, **extras}, sidecar)

    @classmethod
    def load(cls: type[IndexT], stem: Path, dimension: int, max_seq: int, options: Any) -> tuple[IndexT, int] | None:
        """The checkpointed index and the seq it covers, or None when missing, stale or corrupt."""
        ckpt = read_checkpoint(stem, kind=cls.kind, dimension=dimension, max_seq=max_seq)
        if ckpt is None:
            return None
        try:
            index = faiss.read_index(str(ckpt.index_path))
        except RuntimeError as exc:
            reject(stem, f"unreadable ({exc})")
            return None
        if index.d != dimension or index.ntotal != ckpt.sidecar["count"]:
            reject(stem, "dimension or count mismatch")
            return None
        restored = cls._restore(dimension, options, index, ckpt)
        if isinstance(restored, str):
            reject(stem, restored)
            return None
        restored.max_id = int(ckpt.sidecar["max_id"])
        parameter = restored.tuned_parameter
        if parameter is not None:  # one for another target_recall (or malformed) is measured again
            restored.tuning = Tuning.from_dict(ckpt.sidecar.get("tuned"), parameter, restored.options.target_recall)
        return restored, ckpt.seq


def flat_index(dimension: int) -> faiss.Index:
    """An exact inner-product index keyed by external ids, with in-place removal."""
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def is_flat_index(index: faiss.Index) -> bool:
    return isinstance(index, faiss.IndexIDMap2) and isinstance(faiss.downcast_index(index.index), faiss.IndexFlatIP)


def search_faiss(index: faiss.Index, unit: NDArray[np.float32], k: int, params: Any = None) -> SearchResult:
    """One query through FAISS; the -1 padding of a short answer is dropped."""
    sims, ids = index.search(unit, k, params=params)
    keep = ids[0] >= 0
    return ids[0][keep], sims[0][keep]


class ExactIndex(VectorIndex[ExactOptions]):
    """Exact cosine search: a brute-force scan over every live entry."""

    kind = "exact"

    def __init__(self, dimension: int, options: ExactOptions | None = None, index: faiss.Index | None = None) -> None:
        super().__init__(dimension, options or ExactOptions())
        self._index = index if index is not None else flat_index(dimension)

    @property
    def approximate(self) -> bool:
        return False

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    def remove(self, ids: NDArray[np.int64]) -> int:
        if len(ids) == 0:
            return 0
        return int(self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def _add_unit(self, ids: NDArray[np.int64], unit: NDArray[np.float32]) -> None:
        self._index.add_with_ids(unit, ids)

    def _search_unit(self, unit: NDArray[np.float32], k: int) -> SearchResult:
        return search_faiss(self._index, unit, k)

    def _faiss_index(self) -> faiss.Index:
        return self._index

    @classmethod
    def _restore(cls, dimension: int, options: Any, index: faiss.Index, ckpt: Checkpoint) -> ExactIndex | str:
        if not is_flat_index(index):
            return "wrong index type"
        return cls(dimension, options, index)
