"""Index kinds a store can be created with, their options, defaults and create-time validation.

Kept free of faiss and numpy so ``registry.create`` (and the HTTP layer) can refuse bad options
early and cheaply. Options are fixed when a store is created; the stored JSON holds what the caller
gave, and the defaults below fill in the rest each time the store opens.

Kinds (cosine similarity on L2-normalised float32 keys in every case):

- ``exact`` (default): FAISS ``IndexFlatIP``, a brute-force scan. No options. Always right.
- ``hnsw``: FAISS ``IndexHNSWFlat``, a navigable small-world graph. ``m`` (links per node,
  default 32), ``ef_construction`` (candidate list while inserting, default 100), and either
  ``ef_search`` (candidate list while searching, fixed; a query uses ``max(ef_search, topk)``) or
  ``target_recall`` (default 0.95: ``ef_search`` is tuned on the store's own keys). Deletes are
  tombstones filtered at search time, compacted away by a background rebuild once the store's
  ``CompactionPolicy`` says so.
- ``ivf``: FAISS ``IndexIVFFlat``, k-means cells probed nearest first. The store stays exact
  until it holds ``train_threshold`` rows (default 20000, or 39 x ``nlist`` when only ``nlist``
  is given), then trains on its rows in the background and switches. ``nlist`` (cells; default
  ``4 * sqrt(rows at training)``, at most rows/39 so each cell has training rows), and either
  ``nprobe`` (cells searched per query, fixed) or ``target_recall`` (default 0.95: ``nprobe`` is
  tuned on the store's own keys).

Tuning (``stores.index_tuning``): the smallest ``ef_search`` on 16, 32, ... 4096 (``nprobe`` on 1,
2, 4, ... ``nlist``) whose recall@10, measured on 100 synthetic queries drawn around the store's
own keys against an exact scan, reaches ``target_recall`` + 0.01; the top of the ladder when none
does. It runs in the background when the index leaves its exact-scan regime (1000 live entries),
whenever the live count has doubled since, and after every rebuild (compaction, ivf training,
an open without a usable checkpoint); the result (``VectorStore.index_state().tuned``, ``tuned``
in ``GET /stores``) is kept in the checkpoint. Until the first one finishes a search uses the safe
values below, which hold recall@10 >= 0.95 even on random keys. Tuning targets topk=10: a larger
topk widens hnsw's list to at least topk, but recall@100 at a value tuned for @10 may be lower.

Measured with FAISS 1.15 on 100k x 384 keys, 2 shared CPU cores, through ``VectorStore`` (sets of
1000 rows, then 200 finds of topk=10 with fresh queries from the same distribution, recall@10
against numpy brute force). "gaussian" is N(0, 1) noise, the worst case: no cluster or manifold
structure. "clustered" is ``tests/bench/stores.py``'s: 1024 clusters in a 48-d latent space
projected to 384-d plus noise, as real sentence embeddings have.

  data       kind   ingest  tuned value        recall@10   p50 find
  gaussian   exact   4.3 s  -                  1.000       5.9 ms (48 ms before finds ran FAISS
                                                                   on one OpenMP thread)
  gaussian   hnsw    152 s  ef_search 2048     0.975      15.7 ms
  gaussian   ivf    10.4 s  nprobe 512 of 512  1.000       7.2 ms
  clustered  exact   4.2 s  -                  1.000       6.4 ms
  clustered  hnsw     44 s  ef_search 16       0.992       0.33 ms
  clustered  ivf    10.9 s  nprobe 1-2 of 512  0.964-0.976 0.24-0.31 ms

(The tuning itself took 1-3 s per run at 100k, in the background. ivf's ingest includes training
at 20k rows; its nprobe depends on the row count at the last tuning.) The trade-off, the same
stores with the value overridden (recall / p50):

- clustered hnsw: ef_search 16: 0.991 / 0.32 ms, 32: 1.0 / 0.37 ms, 64: 1.0 / 0.44 ms.
- clustered ivf: nprobe 1: 0.964 / 0.24 ms, 2: 0.976 / 0.26, 4: 0.983 / 0.29, 16: 0.995 / 0.46,
  64: 1.0 / 1.05 ms.
- gaussian hnsw: ef_search 256: 0.471 / 3.3 ms, 512: 0.693 / 5.5, 1024: 0.873 / 9.8, 2048: 0.969 /
  16.0, 4096: 0.999 / 24.8 ms.
- gaussian ivf: nprobe 64: 0.328 / 1.2 ms, 128: 0.51 / 2.3, 256: 0.751 / 4.5, 512 (all): 1.0 / 7.9 ms.

So on clustered keys tuning makes both approximate kinds about 20x faster than exact at recall
>= 0.95, while on random keys it finds nothing cheaper than a full scan (hnsw is slower than exact
there): choose ``exact`` for such data. ``ef_construction`` (fixed at create) bounds what tuning
can reach on hard data: on gaussian keys 64 needs ef_search over 2048 for 0.95, 200 gets there at
1536 but inserts 2-3x slower.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stores.errors import InvalidInput

INDEX_KINDS = ("exact", "hnsw", "ivf")

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 100
# Used until the first tuning has measured the store's own data (and when ``target_recall`` is not
# met anywhere on the ladder): recall@10 >= 0.95 even on random data.
HNSW_SAFE_EF_SEARCH = 2048
IVF_SAFE_NPROBE_FRACTION = 0.9
TARGET_RECALL = 0.95
IVF_TRAIN_THRESHOLD = 20_000
IVF_MIN_ROWS_PER_CELL = 39  # FAISS's k-means warns (and clusters poorly) below this


@dataclass(frozen=True)
class ExactOptions:
    """The exact index takes no options."""


@dataclass(frozen=True)
class HnswOptions:
    m: int = HNSW_M
    ef_construction: int = HNSW_EF_CONSTRUCTION
    ef_search: int | None = None  # None: tuned to ``target_recall`` on the store's own data
    target_recall: float = TARGET_RECALL


@dataclass(frozen=True)
class IvfOptions:
    nlist: int | None = None
    nprobe: int | None = None  # None: tuned to ``target_recall`` on the store's own data
    train_threshold: int = IVF_TRAIN_THRESHOLD
    target_recall: float = TARGET_RECALL

    def nlist_for(self, rows: int) -> int:
        """Cells for training on ``rows`` rows: the option, else ~4*sqrt(rows), at most rows/39."""
        if self.nlist is not None:
            return self.nlist
        return max(1, min(round(4 * math.sqrt(rows)), rows // IVF_MIN_ROWS_PER_CELL))

    def safe_nprobe(self, nlist: int) -> int:
        """The given ``nprobe``, else the conservative fraction used until a tuning has run."""
        wanted = self.nprobe if self.nprobe is not None else math.ceil(IVF_SAFE_NPROBE_FRACTION * nlist)
        return max(1, min(wanted, nlist))


IndexOptions = ExactOptions | HnswOptions | IvfOptions

# name -> (lowest, highest) accepted integer value
_LIMITS: dict[str, dict[str, tuple[int, int]]] = {
    "exact": {},
    "hnsw": {"m": (2, 256), "ef_construction": (1, 65_536), "ef_search": (1, 65_536)},
    "ivf": {"nlist": (1, 1 << 20), "nprobe": (1, 1 << 20), "train_threshold": (1, 1 << 40)},
}
# The search parameter ``target_recall`` tunes, per kind; giving it fixes the parameter instead.
TUNED_PARAMETER = {"hnsw": "ef_search", "ivf": "nprobe"}


def parse_index_options(kind: str, raw: Mapping[str, object] | None) -> IndexOptions:
    """Validated options for ``kind``; an unknown name or a bad value is ``InvalidInput`` naming it."""
    if kind not in INDEX_KINDS:
        raise InvalidInput(f"index_kind must be one of {list(INDEX_KINDS)}, got {kind!r}", param="index_kind")
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidInput("index_options must be a JSON object", param="index_options")
    limits = _LIMITS[kind]
    known = sorted([*limits, "target_recall"] if kind in TUNED_PARAMETER else limits)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in known:
            raise InvalidInput(
                f"unknown index option {name!r} for index {kind!r} (known: {', '.join(known) or 'none'})",
                param=f"index_options.{name}",
            )
        if name == "target_recall":
            values[name] = _target_recall(value, TUNED_PARAMETER[kind], raw)
            continue
        low, high = limits[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(
                f"index option {name!r} must be an integer from {low} to {high}, got {value!r}",
                param=f"index_options.{name}",
            )
        values[name] = value
    if kind == "hnsw":
        return HnswOptions(**values)
    if kind == "ivf":
        return _ivf_options(values)
    return ExactOptions()


def _target_recall(value: object, tuned: str, raw: Mapping[str, object]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise InvalidInput(
            f"index option 'target_recall' must be a number in (0, 1], got {value!r}",
            param="index_options.target_recall",
        )
    if tuned in raw:
        raise InvalidInput(
            f"give either {tuned!r} (fixed) or 'target_recall' (tunes {tuned} on the store's data), not both",
            param="index_options.target_recall",
        )
    return float(value)


def _ivf_options(values: dict[str, Any]) -> IvfOptions:
    nlist, nprobe = values.get("nlist"), values.get("nprobe")
    if nlist is not None and nprobe is not None and nprobe > nlist:
        raise InvalidInput(f"nprobe ({nprobe}) must not exceed nlist ({nlist})", param="index_options.nprobe")
    if nlist is not None:
        least = nlist * IVF_MIN_ROWS_PER_CELL
        if "train_threshold" not in values:
            values["train_threshold"] = max(IVF_TRAIN_THRESHOLD, least)
        elif values["train_threshold"] < least:
            raise InvalidInput(
                f"train_threshold ({values['train_threshold']}) must be at least {IVF_MIN_ROWS_PER_CELL} x nlist"
                f" ({least}) so every cell has rows to train on",
                param="index_options.train_threshold",
            )
    return IvfOptions(**values)


def options_schema(kind: str) -> dict[str, Any]:
    """The options ``kind`` takes, as a JSON Schema (for the HTTP API's document). The rules that
    relate two options (``nprobe`` at most ``nlist``, ``train_threshold`` at least 39 x ``nlist``)
    are ``parse_index_options``'s alone."""
    properties: dict[str, Any] = {
        name: {"type": "integer", "minimum": low, "maximum": high} for name, (low, high) in _LIMITS[kind].items()
    }
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    tuned = TUNED_PARAMETER.get(kind)
    if tuned is not None:
        properties["target_recall"] = {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
        schema["not"] = {"required": [tuned, "target_recall"]}
    return schema
