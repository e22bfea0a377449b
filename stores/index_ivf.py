"""The IVF kind: exact until ``train_threshold`` rows, then a trained FAISS ``IndexIVFFlat``.

k-means needs data, so a new ivf store starts as an exact flat index; once it holds enough rows the
store rebuilds it in the background (``needs_rebuild``), training the cells on a sample of its rows
(``training_rows``) and adding every row. ``IndexIVFFlat`` removes ids in place, so deletes need no
tombstones. Small stores, ``topk >= live entries`` and short answers are served by probing every
cell, which with flat (uncompressed) lists is an exact scan. ``nprobe`` is the option when given,
else the store's measured ``Tuning``, else a conservative fraction of the cells until one is measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from stores.checkpoint import Checkpoint
from stores.index import CompactionPolicy, SearchResult, VectorIndex, flat_index, is_flat_index, normalise, search_faiss
from stores.index_options import IvfOptions
from stores.index_tuning import ivf_nprobe_ladder

if TYPE_CHECKING:
    from numpy.typing import NDArray

# k-means gains little from more than this many sample rows per cell; it bounds the training sample.
TRAINING_ROWS_PER_CELL = 64


class IvfIndex(VectorIndex[IvfOptions]):
    """Approximate cosine search over inverted lists, exact until trained."""

    kind = "ivf"
    exact_below = 1000

    def __init__(self, dimension: int, options: IvfOptions | None = None, index: faiss.Index | None = None) -> None:
        super().__init__(dimension, options or IvfOptions())
        self._index = index if index is not None else flat_index(dimension)

    @property
    def trained(self) -> bool:
        return isinstance(self._index, faiss.IndexIVFFlat)

    @property
    def approximate(self) -> bool:
        return self.trained

    @property
    def nlist(self) -> int | None:
        return int(self._index.nlist) if self.trained else None

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def nprobe(self) -> int | None:
        """The cells a search probes now; None until trained."""
        if not self.trained:
            return None
        nlist = int(self._index.nlist)
        if self.options.nprobe is None and self.tuning is not None:
            return max(1, min(self.tuning.value, nlist))
        return self.options.safe_nprobe(nlist)

    def remove(self, ids: NDArray[np.int64]) -> int:
        if len(ids) == 0:
            return 0
        return int(self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def needs_rebuild(self, policy: CompactionPolicy) -> bool:
        return not self.trained and self.count >= self.options.train_threshold

    def training_rows(self, rows: int) -> int:
        if rows < self.options.train_threshold:
            return 0
        return min(rows, TRAINING_ROWS_PER_CELL * self.options.nlist_for(rows))

    def train(self, vectors: NDArray[np.float32], rows: int) -> None:
        if self.count:
            raise RuntimeError("an IVF index is trained before any row is added")
        nlist = min(self.options.nlist_for(rows), len(vectors))
        quantizer = faiss.IndexFlatIP(self.dimension)
        ivf = faiss.IndexIVFFlat(quantizer, self.dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(normalise(vectors))
        self._quantizer = quantizer  # the IVF index points at it; keep it alive with us
        self._index = ivf

    def _add_unit(self, ids: NDArray[np.int64], unit: NDArray[np.float32]) -> None:
        self._index.add_with_ids(unit, ids)

    def _search_unit(self, unit: NDArray[np.float32], k: int) -> SearchResult:
        if not self.trained:
            return search_faiss(self._index, unit, k)
        nlist = int(self._index.nlist)
        if k >= self.count or self.count < self.exact_below:
            return self._probe(unit, k, nlist)
        ids, sims = self._probe(unit, k, self.nprobe or nlist)
        if len(ids) < k:  # the probed cells held fewer than k rows
            return self._probe(unit, k, nlist)
        return ids, sims

    def _probe(self, unit: NDArray[np.float32], k: int, nprobe: int) -> SearchResult:
        return search_faiss(self._index, unit, k, faiss.SearchParametersIVF(nprobe=nprobe))

    # -- recall tuning (stores.index_tuning.Tunable; trained only) --------------------------------

    def tuning_ladder(self) -> list[int]:
        return ivf_nprobe_ladder(int(self._index.nlist))

    def sample_keys(self, n: int, rng: np.random.Generator) -> NDArray[np.float32]:
        """Keys read from the inverted lists (flat codes are the float32 keys themselves)."""
        invlists = self._index.invlists
        sizes = np.array([invlists.list_size(i) for i in range(int(self._index.nlist))], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        picks = rng.choice(int(starts[-1]), size=min(n, int(starts[-1])), replace=False)
        cells = np.searchsorted(starts, picks, side="right") - 1
        code_size = int(invlists.code_size)
        out = np.empty((len(picks), self.dimension), dtype=np.float32)
        for row, (cell, offset) in enumerate(zip(cells.tolist(), (picks - starts[cells]).tolist())):
            code = invlists.get_single_code(cell, offset)
            out[row] = np.frombuffer(faiss.rev_swig_ptr(code, code_size).tobytes(), dtype="<f4")
            invlists.release_codes(cell, code)
        return out

    def exact_batch(self, unit: NDArray[np.float32], k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        sims, ids = self._index.search(unit, k, params=faiss.SearchParametersIVF(nprobe=int(self._index.nlist)))
        return sims, ids

    def approximate_batch(self, unit: NDArray[np.float32], k: int, value: int) -> NDArray[np.int64]:
        return self._index.search(unit, k, params=faiss.SearchParametersIVF(nprobe=value))[1]

    # -- checkpoint -------------------------------------------------------------------------

    def _faiss_index(self) -> faiss.Index:
        return self._index

    def _checkpoint_extras(self) -> tuple[dict[str, bytes], dict[str, Any]]:
        return {}, {"trained": self.trained}

    @classmethod
    def _restore(cls, dimension: int, options: Any, index: faiss.Index, ckpt: Checkpoint) -> IvfIndex | str:
        trained = ckpt.sidecar.get("trained")
        if trained is True and isinstance(index, faiss.IndexIVFFlat) and index.metric_type == faiss.METRIC_INNER_PRODUCT:
            return cls(dimension, options, index)
        if trained is False and is_flat_index(index):
            return cls(dimension, options, index)
        return "wrong index type"
