"""Export one named store to a portable backup file and import it back, on this or another data path.

Format ``appliance.store`` version 1: gzip-compressed JSON Lines (import also reads it uncompressed).

    line 1   {"format": "appliance.store", "version": 1, "count": N, "exported_at": "<ISO 8601 UTC>",
              "store": {"name", "dimension", "metric", "index_kind", "index_options",
                        "embedding_model", "embedding_dimension", "created_at"}}
    N lines  {"key": "<base64 of the little-endian float32 bytes>", "value": "<str>", "metadata": {...} | null}
    last     {"end": true, "count": N, "sha256": "<hex>"}

Keys travel as base64 of the stored bytes: bit-exact and about a quarter the size of JSON floats.
``sha256`` covers the row lines exactly as written (UTF-8, each with its ``\\n``); the end line is
required, so a cut-off or edited file is refused instead of half-imported. No pickle anywhere.

Export reads one committed state (header, config and rows from a single read transaction on a
dedicated connection) and streams it in chunks, so writes go on and memory stays bounded. Import
parses incrementally, validates every line, loads batches through ``VectorStore.set`` into a hidden
staging store and renames it into place in one transaction (``StoreRegistry.promote``); on any
failure the staging store is dropped and the target is untouched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import logging
import sqlite3
import threading
import uuid
import zlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

from stores.errors import InvalidInput, StoreExists, StoreNotFound

if TYPE_CHECKING:
    from stores.registry import StoreInfo, StoreRegistry
    from stores.store import VectorStore

logger = logging.getLogger(__name__)

FORMAT = "appliance.store"
FORMAT_VERSION = 1
MEDIA_TYPE = "application/gzip"
GZIP_MAGIC = b"\x1f\x8b"
MAX_LINE_BYTES = 64 << 20  # one row: a key plus a document-sized value; bounds memory on hostile input
_INFLATE_STEP = 1 << 20  # decompressed bytes per step, so a zip bomb never lands in memory at once


# -- export -----------------------------------------------------------------------------------


class StoreExport:
    """An open snapshot of one store, streamed as gzip chunks; ``close`` ends the read transaction.

    Safe to drive from any thread, one call at a time; ``close`` may come from another thread while
    a chunk is being read, and then takes effect when that chunk is done.
    """

    def __init__(self, registry: StoreRegistry, name: str | None, *, rows_per_chunk: int = 1000, level: int = 6) -> None:
        self._stack = ExitStack()
        self._lock = threading.Lock()
        self._closing = False
        try:
            conn = self._stack.enter_context(registry.snapshot())
            self.header, store_id = _read_header(conn, name or "")
        except BaseException:
            self._stack.close()
            raise
        self.name: str = self.header["store"]["name"]
        self.count: int = self.header["count"]
        self._chunks = _gzip_chunks(conn, store_id, self.header, rows_per_chunk, level)

    def next_chunk(self) -> bytes | None:
        """The next piece of the file, or None at the end (which also closes the snapshot)."""
        try:
            with self._lock:
                chunk: bytes | None = b""
                while chunk == b"":  # the compressor often holds small inputs back
                    chunk = next(self._chunks, None)
                if chunk is None:
                    self._closing = True
                return chunk
        except BaseException:
            self._closing = True
            raise
        finally:
            if self._closing:  # checked after the lock is released, so a close() that lost the race lands
                self.close()

    def close(self) -> None:
        self._closing = True
        if self._lock.acquire(blocking=False):  # else a chunk is being read; next_chunk closes after it
            try:
                self._chunks.close()
                self._stack.close()
            finally:
                self._lock.release()

    def __iter__(self) -> Iterator[bytes]:
        try:
            while (chunk := self.next_chunk()) is not None:
                yield chunk
        finally:
            self.close()


def open_export(registry: StoreRegistry, name: str | None, **options: int) -> StoreExport:
    """Snapshot store ``name`` ("" or None = default); ``StoreNotFound`` now rather than mid-stream."""
    return StoreExport(registry, name, **options)


def export_store(registry: StoreRegistry, name: str | None, out: IO[bytes]) -> int:
    """Write store ``name`` to ``out`` as a gzip backup file; the number of rows written."""
    export = open_export(registry, name)
    for chunk in export:
        out.write(chunk)
    return export.count


def _read_header(conn: sqlite3.Connection, name: str) -> tuple[dict[str, Any], int]:
    row = conn.execute(
        "SELECT id, dimension, metric, index_kind, index_options, embedding_model, embedding_dimension, created_at"
        " FROM stores WHERE name = ?",
        (name,),
    ).fetchone()
    if row is None:
        raise StoreNotFound(f"store {name!r} does not exist", param="store")
    count = conn.execute("SELECT count(*) FROM rows WHERE store_id = ?", (row[0],)).fetchone()[0]
    store = {
        "name": name,
        "dimension": row[1],
        "metric": row[2],
        "index_kind": row[3],
        "index_options": json.loads(row[4]) if row[4] else None,
        "embedding_model": row[5],
        "embedding_dimension": row[6],
        "created_at": row[7],
    }
    exported_at = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    header = {"format": FORMAT, "version": FORMAT_VERSION, "store": store, "count": int(count), "exported_at": exported_at}
    return header, int(row[0])


def _gzip_chunks(
    conn: sqlite3.Connection, store_id: int, header: dict[str, Any], rows_per_chunk: int, level: int
) -> Iterator[bytes]:
    gzip = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: the gzip container, with its CRC
    digest = hashlib.sha256()
    yield gzip.compress(_json_line(header))
    rows = 0
    cursor = conn.execute("SELECT key, value, metadata FROM rows WHERE store_id = ? ORDER BY id", (store_id,))
    while batch := cursor.fetchmany(rows_per_chunk):
        data = b"".join(_row_line(key, value, meta) for key, value, meta in batch)
        digest.update(data)
        rows += len(batch)
        yield gzip.compress(data)
    if rows != header["count"]:  # impossible inside one read transaction; never ship a lying file
        raise RuntimeError(f"export read {rows} rows but counted {header['count']}")
    yield gzip.compress(_json_line({"end": True, "count": rows, "sha256": digest.hexdigest()})) + gzip.flush()
    logger.info("stores_exported name=%r rows=%s", header["store"]["name"], rows)


def _row_line(key: bytes, value: str, metadata: str | None) -> bytes:
    # metadata is stored as compact JSON already; splicing it avoids a parse and a dump per row
    encoded = base64.b64encode(key).decode("ascii")
    text = f'{{"key":"{encoded}","value":{json.dumps(value, ensure_ascii=False)},"metadata":{metadata or "null"}}}\n'
    return text.encode("utf-8")


def _json_line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


# -- import -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileHeader:
    """The first line of a backup file, validated."""

    name: str
    count: int
    dimension: int | None
    config: dict[str, Any]  # registry.create keyword arguments


def import_store(
    registry: StoreRegistry,
    chunks: Iterable[bytes],
    *,
    name: str | None = None,
    replace: bool = False,
    batch_rows: int = 1000,
) -> StoreInfo:
    """Load a backup file (gzip or plain JSONL, as byte chunks) into store ``name``.

    ``name`` defaults to the one in the file ("" is the default store). An existing store is
    ``StoreExists`` unless ``replace``, which swaps it out atomically. Anything wrong with the file
    is ``InvalidInput`` naming the line, and leaves every store as it was.
    """
    lines = _lines(_inflated(iter(chunks)))
    header = _parse_header(next(lines, None))
    target = header.name if name is None else name
    _check_target(registry, target, replace)
    staging = f"{_staging_prefix()}{uuid.uuid4().hex}"
    registry.create(staging, **header.config)
    try:
        store = registry.get(staging, create=False)
        rows = _load_rows(store, lines, header, batch_rows)
        store.checkpoint()
        info = registry.promote(staging, target, replace=replace)
    except BaseException:
        _discard(registry, staging)
        raise
    logger.info("stores_imported name=%r rows=%s replace=%s", target, rows, replace)
    return info


def _staging_prefix() -> str:
    from stores.registry import STAGING_PREFIX

    return STAGING_PREFIX


def _check_target(registry: StoreRegistry, target: str, replace: bool) -> None:
    from stores.registry import HIDDEN_PREFIX

    if target.startswith(HIDDEN_PREFIX):
        raise InvalidInput(f"store names starting with {HIDDEN_PREFIX!r} are reserved; choose another name", param="store")
    if replace:
        return
    try:
        registry.describe(target)
    except StoreNotFound:
        return
    raise StoreExists(f"store {target!r} already exists; pass replace=true to swap it out", param="store")


def _discard(registry: StoreRegistry, staging: str) -> None:
    try:
        registry.drop(staging)
    except Exception:  # the next open drops leftover staging stores anyway
        logger.warning("stores_staging_drop_failed name=%r", staging, exc_info=True)


def _load_rows(store: VectorStore, lines: Iterator[tuple[int, bytes]], header: FileHeader, batch_rows: int) -> int:
    import numpy as np  # loaded with the store itself; `import stores.transfer` stays light

    digest = hashlib.sha256()
    batch: list[tuple[int, bytes, str, dict[str, Any] | None]] = []
    rows = 0
    for lineno, line in lines:
        obj = _parse_json(line, lineno)
        if "end" in obj:
            _check_end(obj, lineno, rows, header.count, digest.hexdigest())
            _flush(store, batch, np)
            _refuse_trailing(lines)
            return rows
        digest.update(line + b"\n")
        batch.append((lineno, *_parse_row(obj, lineno, header.dimension)))
        rows += 1
        if rows > header.count:
            raise InvalidInput(f"line {lineno}: more rows than the header's count ({header.count})", param="file")
        if len(batch) >= batch_rows:
            _flush(store, batch, np)
    raise InvalidInput(
        f"the file is truncated: it ends after {rows} of {header.count} rows without its end line", param="file"
    )


def _flush(store: VectorStore, batch: list[tuple[int, bytes, str, dict[str, Any] | None]], np: Any) -> None:
    if not batch:
        return
    keys = np.frombuffer(b"".join(row[1] for row in batch), dtype="<f4").reshape(len(batch), -1)
    norms = np.linalg.norm(keys.astype(np.float64), axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    if len(bad):
        raise InvalidInput(
            f"line {batch[int(bad[0])][0]}: key must be finite and non-zero (no NaN, infinity or zero vector)",
            param="file",
        )
    store.set(keys, [row[2] for row in batch], [row[3] for row in batch])
    batch.clear()


def _refuse_trailing(lines: Iterator[tuple[int, bytes]]) -> None:
    for lineno, _ in lines:
        raise InvalidInput(f"line {lineno}: nothing may follow the end line", param="file")


def _check_end(obj: dict[str, Any], lineno: int, rows: int, declared: int, sha256: str) -> None:
    count = obj.get("count")
    if obj.get("end") is not True or isinstance(count, bool) or not isinstance(count, int):
        raise InvalidInput(f'line {lineno}: the end line must be {{"end": true, "count": N, ...}}', param="file")
    if count != rows or rows != declared:
        raise InvalidInput(
            f"the file is truncated or altered: {rows} rows read, header says {declared}, end line says {count}",
            param="file",
        )
    if "sha256" in obj and obj["sha256"] != sha256:
        raise InvalidInput("the file is corrupt: its rows do not match the end line's sha256", param="file")


def _parse_header(numbered: tuple[int, bytes] | None) -> FileHeader:
    if numbered is None:
        raise InvalidInput("the file is empty; expected an appliance store export", param="file")
    obj = _parse_json(numbered[1], numbered[0])
    if obj.get("format") != FORMAT:
        raise InvalidInput(f"not an appliance store export: line 1 must name format {FORMAT!r}", param="file")
    version = obj.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput(f"line 1: version must be a positive integer, got {version!r}", param="file")
    if version > FORMAT_VERSION:
        raise InvalidInput(
            f"the file has format version {version}, this appliance reads up to {FORMAT_VERSION}; upgrade to import it",
            param="file",
        )
    store, count = obj.get("store"), obj.get("count")
    if not isinstance(store, dict):
        raise InvalidInput("line 1: 'store' must be an object", param="file")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidInput(f"line 1: count must be a non-negative integer, got {count!r}", param="file")
    name = store.get("name") if store.get("name") is not None else ""
    dimension = _optional_int(store, "dimension")
    if not isinstance(name, str):
        raise InvalidInput("line 1: store.name must be a string", param="file")
    if dimension is None and count:
        raise InvalidInput("line 1: a store with rows must have a dimension", param="file")
    return FileHeader(name, count, dimension, _store_config(store))


def _store_config(store: dict[str, Any]) -> dict[str, Any]:
    """The ``registry.create`` arguments; their values are checked there, by the current rules."""
    config: dict[str, Any] = {
        "index_kind": store.get("index_kind", "exact"),
        "metric": store.get("metric", "cosine"),
        "index_options": store.get("index_options"),
        "embedding_model": store.get("embedding_model"),
        "embedding_dimension": _optional_int(store, "embedding_dimension"),
    }
    for field in ("index_kind", "metric"):
        if not isinstance(config[field], str):
            raise InvalidInput(f"line 1: store.{field} must be a string", param="file")
    if config["embedding_model"] is not None and not isinstance(config["embedding_model"], str):
        raise InvalidInput("line 1: store.embedding_model must be a string or null", param="file")
    return config


def _optional_int(store: dict[str, Any], field: str) -> int | None:
    value = store.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"line 1: store.{field} must be a positive integer or null, got {value!r}", param="file")
    return value


def _parse_row(obj: dict[str, Any], lineno: int, dimension: int | None) -> tuple[bytes, str, dict[str, Any] | None]:
    key, value, metadata = obj.get("key"), obj.get("value"), obj.get("metadata")
    if not isinstance(key, str):
        raise InvalidInput(f"line {lineno}: 'key' must be a base64 string", param="file")
    try:
        blob = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"line {lineno}: 'key' is not valid base64", param="file") from None
    if dimension is None or len(blob) != dimension * 4:
        raise InvalidInput(
            f"line {lineno}: key has {len(blob)} bytes, expected {dimension or 0} float32s ({(dimension or 0) * 4} bytes)",
            param="file",
        )
    if not isinstance(value, str):
        raise InvalidInput(f"line {lineno}: 'value' must be a string", param="file")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidInput(f"line {lineno}: 'metadata' must be an object or null", param="file")
    return blob, value, metadata


def _parse_json(line: bytes, lineno: int) -> dict[str, Any]:
    try:
        obj = json.loads(line, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"line {lineno}: not valid JSON ({exc})", param="file") from None
    except RecursionError:
        raise InvalidInput(f"line {lineno}: JSON nested too deeply", param="file") from None
    if not isinstance(obj, dict):
        raise InvalidInput(f"line {lineno}: expected a JSON object", param="file")
    return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# -- reading the byte stream ------------------------------------------------------------------


def _inflated(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The bytes of the file, gunzipped when it starts with the gzip magic (concatenated members too)."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    if not head.startswith(GZIP_MAGIC):
        if head:
            yield head
        yield from chunks
        return
    yield from _gunzip(head, chunks)


def _gunzip(head: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    inflater = zlib.decompressobj(31)
    try:
        for data in itertools.chain((head,), chunks):
            while data:
                if inflater.eof:  # another gzip member follows (files may be concatenated)
                    inflater = zlib.decompressobj(31)
                out = inflater.decompress(data, _INFLATE_STEP)
                if out:
                    yield out
                data = inflater.unconsumed_tail or inflater.unused_data
        tail = inflater.flush() if not inflater.eof else b""  # output zlib still holds
    except zlib.error as exc:
        raise InvalidInput(f"the file is not valid gzip ({exc})", param="file") from None
    if tail:
        yield tail
    if not inflater.eof:
        raise InvalidInput("the file is truncated: the gzip stream ends early", param="file")


def _lines(data: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their 1-based numbers, ``\\r\\n`` or ``\\n`` stripped; bounded in length."""
    parts: list[bytes] = []
    size = 0
    lineno = 0
    for chunk in data:
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            parts.append(chunk[start:end])
            line = b"".join(parts).rstrip(b"\r")
            parts, size, start = [], 0, end + 1
            lineno += 1
            if line and not line.isspace():
                yield lineno, line
        if start < len(chunk):
            parts.append(chunk[start:])
            size += len(chunk) - start
            if size > MAX_LINE_BYTES:
                raise InvalidInput(f"line {lineno + 1} is longer than {MAX_LINE_BYTES >> 20} MiB", param="file")
    line = b"".join(parts).rstrip(b"\r")
    if line and not line.isspace():
        yield lineno + 1, line
