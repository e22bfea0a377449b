"""Store backups: bit-exact round trips, one snapshot under concurrent writes, all-or-nothing imports."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import math
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stores.errors import InvalidInput, StoreExists
from stores.registry import INDEX_KINDS, StoreRegistry
from stores.transfer import FORMAT, FORMAT_VERSION, export_store, import_store, open_export


def export_bytes(registry: StoreRegistry, name: str) -> bytes:
    out = io.BytesIO()
    export_store(registry, name, out)
    return out.getvalue()


def read_lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(data).splitlines()]


def stored_rows(registry: StoreRegistry, name: str) -> list[tuple[bytes, str, str | None]]:
    with registry.snapshot() as conn:
        return conn.execute(
            "SELECT r.key, r.value, r.metadata FROM rows r JOIN stores s ON s.id = r.store_id"
            " WHERE s.name = ? ORDER BY r.id",
            (name,),
        ).fetchall()


def all_store_names(registry: StoreRegistry) -> list[str]:
    """Every store in the database, hidden ones included."""
    with registry.snapshot() as conn:
        return [row[0] for row in conn.execute("SELECT name FROM stores ORDER BY name")]


def backup_file(rows: list[dict[str, Any]], *, dimension: int = 2, count: int | None = None, end: bool = True) -> bytes:
    """A plain JSON Lines backup written from the documented format, not by the exporter."""
    row_lines = [json.dumps(row).encode() + b"\n" for row in rows]
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "count": len(rows) if count is None else count,
        "exported_at": "2025-01-01T00:00:00Z",
        "store": {"name": "hand", "dimension": dimension, "metric": "cosine", "index_kind": "exact",
                  "index_options": None, "embedding_model": None, "embedding_dimension": None},
    }
    parts = [json.dumps(header).encode() + b"\n", *row_lines]
    if end:
        digest = hashlib.sha256(b"".join(row_lines)).hexdigest()
        parts.append(json.dumps({"end": True, "count": len(rows), "sha256": digest}).encode() + b"\n")
    return b"".join(parts)


def key64(*floats: float) -> str:
    return base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode()


@pytest.fixture
def filled(registry: StoreRegistry) -> StoreRegistry:
    rng = np.random.default_rng(7)
    keys = rng.standard_normal((300, 16)).astype("<f4")
    keys[0, :] = np.float32(1e-40)  # subnormals survive only a bit-exact copy
    keys[1, 0] = -0.0
    values = [f"doc {i} – ünïcode \"quoted\"\n" for i in range(300)]
    metadata = [{"i": i, "tags": ["a", "b"]} if i % 3 else None for i in range(300)]
    registry.create("docs", embedding_model="minilm", embedding_dimension=16)
    registry.get("docs").set(keys, values, metadata, model="minilm")
    return registry


def test_round_trip_is_bit_exact(filled: StoreRegistry, tmp_path: Path) -> None:
    data = export_bytes(filled, "docs")
    lines = read_lines(data)
    assert lines[0]["format"] == FORMAT and lines[0]["count"] == 300 and lines[-1]["end"] is True
    with StoreRegistry(tmp_path / "elsewhere") as other:
        info = import_store(other, [data[i : i + 1000] for i in range(0, len(data), 1000)], batch_rows=64)
        assert stored_rows(other, "docs") == stored_rows(filled, "docs")
        before, after = filled.describe("docs"), other.describe("docs")
        assert info == after
        assert {**vars(before), "created_at": None} == {**vars(after), "created_at": None}
        assert after.embedding_model == "minilm" and after.count == 300 and after.dimension == 16
        rng = np.random.default_rng(8)
        for query in rng.standard_normal((5, 16)).tolist():
            assert other.get("docs").find(query, 20) == filled.get("docs").find(query, 20)


def test_imported_store_survives_a_reopen(filled: StoreRegistry, tmp_path: Path) -> None:
    data = export_bytes(filled, "docs")
    query = [0.5] * 16
    with StoreRegistry(tmp_path / "elsewhere") as other:
        import_store(other, [data], name="copy")
        expected = other.get("copy").find(query, 10)
    with StoreRegistry(tmp_path / "elsewhere") as reopened:
        assert [i.name for i in reopened.list()] == ["copy"]
        assert reopened.get("copy").find(query, 10) == expected


def test_plain_jsonl_with_crlf_is_accepted(filled: StoreRegistry) -> None:
    plain = gzip.decompress(export_bytes(filled, "docs")).replace(b"\n", b"\r\n")
    info = import_store(filled, [plain], name="from-plain")
    assert stored_rows(filled, "from-plain") == stored_rows(filled, "docs")
    assert info.count == 300


def test_default_store_and_empty_store(registry: StoreRegistry, tmp_path: Path) -> None:
    registry.get("").set([[1.0, 0.0]], ["default"])
    registry.create("empty", embedding_model="m")
    default, empty = export_bytes(registry, ""), export_bytes(registry, "empty")
    assert read_lines(empty)[0]["count"] == 0 and read_lines(empty)[0]["store"]["dimension"] is None
    with StoreRegistry(tmp_path / "other") as other:
        assert import_store(other, [default]).name == ""
        assert other.get("").get([[1.0, 0.0]]).values == ["default"]
        info = import_store(other, [empty])
        assert (info.name, info.count, info.embedding_model) == ("empty", 0, "m")


def test_export_reads_one_snapshot(filled: StoreRegistry) -> None:
    store = filled.get("docs")
    before = stored_rows(filled, "docs")
    export = open_export(filled, "docs", rows_per_chunk=10)  # the snapshot is taken here
    # Writes after the snapshot began: a new batch, a delete, an overwrite. None may show.
    store.set([[9.0] * 16, [8.0] * 16], ["late", "late"])
    store.delete([np.frombuffer(before[5][0], dtype="<f4").tolist()])
    store.set([np.frombuffer(before[6][0], dtype="<f4").tolist()], ["overwritten"])
    data = b"".join(export)
    lines = read_lines(data)
    assert lines[0]["count"] == lines[-1]["count"] == len(lines) - 2 == 300
    assert [(base64.b64decode(r["key"]), r["value"]) for r in lines[1:-1]] == [(k, v) for k, v, _ in before]


def test_export_under_concurrent_writes_has_whole_batches(registry: StoreRegistry) -> None:
    store = registry.get("live")
    store.set([[1.0, 0.0, 0.0]], ["seed"])
    stop = threading.Event()
    written: list[int] = []
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            for batch in range(400):
                if stop.is_set():
                    return
                store.set([[float(batch), float(j), 1.0] for j in range(10)], [f"{batch}:{j}" for j in range(10)])
                written.append(batch)
        except BaseException as exc:  # surfaced by the assertion below
            failures.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    exports: list[bytes] = []
    overlapped: list[bool] = []
    try:
        for target in (5, 40, 120, 250):  # export at several points while the writer keeps going
            deadline = time.monotonic() + 30
            while len(written) < target and thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.002)
            exports.append(b"".join(open_export(registry, "live", rows_per_chunk=7)))
            overlapped.append(thread.is_alive())
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not failures and any(overlapped), (failures, "no export ran while the writer was writing")
    for data in exports:
        lines = read_lines(data)
        rows = lines[1:-1]
        assert lines[0]["count"] == lines[-1]["count"] == len(rows)
        per_batch: dict[str, int] = {}
        for row in rows[1:]:
            batch = row["value"].split(":")[0]
            per_batch[batch] = per_batch.get(batch, 0) + 1
        assert set(per_batch.values()) <= {10}, per_batch  # each batch wholly or not at all
        assert len(rows) == 1 + 10 * len(per_batch)


def wal_checkpoint_blocked(data_path: Path) -> bool:
    """True while some reader still holds a snapshot older than the last commit."""
    conn = sqlite3.connect(data_path / "stores.sqlite3", timeout=0)
    try:
        return bool(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
    finally:
        conn.close()


def test_an_abandoned_export_releases_its_snapshot(filled: StoreRegistry, data_path: Path) -> None:
    export = open_export(filled, "docs", rows_per_chunk=5)
    assert export.next_chunk()
    filled.get("docs").set([[3.0] * 16], ["after"])
    assert wal_checkpoint_blocked(data_path)
    export.close()
    assert not wal_checkpoint_blocked(data_path)
    assert export.next_chunk() is None


def test_unknown_store_is_not_found_before_any_byte(registry: StoreRegistry) -> None:
    from stores.errors import StoreNotFound

    with pytest.raises(StoreNotFound):
        open_export(registry, "nope")


def _mutations() -> dict[str, tuple[Callable[[bytes], bytes], str]]:
    """Each turns a good gzip backup into a bad one, with a phrase the error must contain."""

    def plain(edit: Callable[[list[bytes]], list[bytes]]) -> Callable[[bytes], bytes]:
        return lambda data: b"\n".join(edit(gzip.decompress(data).split(b"\n")))

    def header(**changes: Any) -> Callable[[bytes], bytes]:
        def edit(lines: list[bytes]) -> list[bytes]:
            return [json.dumps({**json.loads(lines[0]), **changes}).encode(), *lines[1:]]

        return plain(edit)

    def row(index: int, **changes: Any) -> Callable[[bytes], bytes]:
        def edit(lines: list[bytes]) -> list[bytes]:
            lines = list(lines)
            lines[index] = json.dumps({**json.loads(lines[index]), **changes}).encode()
            return lines

        return plain(edit)

    return {
        "empty": (lambda data: b"", "empty"),
        "not json": (lambda data: b"hello\n", "not valid json"),
        "other format": (header(format="something.else"), "not an appliance store export"),
        "newer version": (header(version=FORMAT_VERSION + 1), "upgrade"),
        "cut gzip": (lambda data: data[: len(data) // 2], "truncated"),
        "bad crc": (lambda data: data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:], "not valid gzip"),
        "no end line": (plain(lambda lines: lines[:-2]), "truncated"),
        "a row missing": (plain(lambda lines: lines[:2] + lines[3:]), "truncated"),
        "short key": (row(4, key=key64(1.0, 2.0)), "line 5: key has 8 bytes"),
        "key not base64": (row(4, key="***"), "base64"),
        "nan key": (row(250, key=key64(*([math.nan] * 16))), "line 251: key must be finite"),
        "zero key": (row(3, key=key64(*([0.0] * 16))), "line 4"),
        "value not str": (row(4, value=7), "'value' must be a string"),
        "metadata list": (row(4, metadata=[1]), "'metadata' must be an object"),
        "edited value": (row(4, value="tampered"), "sha256"),
        "after end": (plain(lambda lines: [*lines, b'{"key": "x"}']), "nothing may follow"),
        "unknown index": (header(store={"name": "x", "dimension": 16, "index_kind": "lsh"}), "index_kind"),
    }


@pytest.mark.parametrize("case", list(_mutations()))
def test_bad_files_change_nothing(filled: StoreRegistry, case: str) -> None:
    mutate, phrase = _mutations()[case]
    data = mutate(export_bytes(filled, "docs"))
    before = (filled.list(), all_store_names(filled), stored_rows(filled, "docs"))
    with pytest.raises(InvalidInput) as raised:
        import_store(filled, [data], name="restored", batch_rows=16)
    assert phrase.lower() in raised.value.message.lower(), raised.value.message
    with pytest.raises(InvalidInput):
        import_store(filled, [data], name="docs", replace=True, batch_rows=16)
    assert (filled.list(), all_store_names(filled), stored_rows(filled, "docs")) == before


def test_hand_written_file_follows_the_documented_format(registry: StoreRegistry) -> None:
    rows = [{"key": key64(1.0, 0.0), "value": "x", "metadata": {"a": 1}}, {"key": key64(0.0, 1.0), "value": "y"}]
    info = import_store(registry, [backup_file(rows)])
    assert (info.name, info.count, info.dimension) == ("hand", 2, 2)
    assert registry.get("hand").find([1.0, 0.1], 1).metadata == [{"a": 1}]
    with pytest.raises(InvalidInput, match="truncated"):
        import_store(registry, [backup_file(rows, end=False)], name="other")
    with pytest.raises(InvalidInput, match="more rows"):
        import_store(registry, [backup_file(rows, count=1)], name="other")
    deep = backup_file(rows).replace(b'{"a": 1}', b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(InvalidInput, match="line 2: JSON nested too deeply"):
        import_store(registry, [deep], name="other")
    assert [i.name for i in registry.list()] == ["hand"]


def test_existing_target_needs_replace_which_swaps_atomically(filled: StoreRegistry, data_path: Path) -> None:
    filled.get("docs").checkpoint()
    old_store = filled.get("docs")
    old_files = sorted(p.name for p in (data_path / "index").iterdir() if p.stem == str(old_store.id))
    assert old_files
    replacement = backup_file([{"key": key64(0.0, 1.0), "value": "new"}])
    with pytest.raises(StoreExists):
        import_store(filled, [replacement], name="docs")
    assert filled.describe("docs").count == 300 and ".import-" not in "".join(all_store_names(filled))

    info = import_store(filled, [replacement], name="docs", replace=True)
    assert (info.name, info.count, info.dimension, info.embedding_model) == ("docs", 1, 2, None)
    store = filled.get("docs")
    assert store is not old_store and store.name == "docs"
    assert store.find([0.0, 1.0], 5).values == ["new"]
    store.set([[1.0, 1.0]], ["written after the swap"])
    assert filled.describe("docs").count == 2
    assert not any(p.stem == str(old_store.id) for p in (data_path / "index").iterdir())
    assert all_store_names(filled) == ["docs"]


def test_staging_store_is_hidden_while_importing(filled: StoreRegistry) -> None:
    data = export_bytes(filled, "docs")
    seen: list[tuple[list[str], list[str]]] = []

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 2000):
            yield data[start : start + 2000]
            seen.append(([i.name for i in filled.list()], all_store_names(filled)))

    import_store(filled, chunks(), name="copy", batch_rows=16)
    assert any(any(n.startswith(".import-") for n in names) for _, names in seen), "staging never observed"
    assert all(listed == ["docs"] for listed, _ in seen)
    assert [i.name for i in filled.list()] == ["copy", "docs"]


def test_leftover_staging_is_dropped_at_open(data_path: Path) -> None:
    with StoreRegistry(data_path, checkpoint_every=1) as registry:
        registry.create(".import-crashed")
        registry.get(".import-crashed").set([[1.0, 0.0]], ["half"])
        registry.get("kept").set([[1.0, 0.0]], ["kept"])
        assert [i.name for i in registry.list()] == ["kept"]
    assert len(list((data_path / "index").iterdir())) == 4
    with StoreRegistry(data_path) as registry:
        assert all_store_names(registry) == ["kept"]
        assert len(list((data_path / "index").iterdir())) == 2


def test_reserved_target_names_are_refused(filled: StoreRegistry) -> None:
    with pytest.raises(InvalidInput, match="reserved"):
        import_store(filled, [export_bytes(filled, "docs")], name=".sneaky")


def test_public_prefix_matches_the_protocol() -> None:
    from appliance.protocol.stores import RESERVED_PREFIX
    from stores.registry import HIDDEN_PREFIX, STAGING_PREFIX

    assert RESERVED_PREFIX == HIDDEN_PREFIX and STAGING_PREFIX.startswith(HIDDEN_PREFIX)


@pytest.mark.parametrize("kind", INDEX_KINDS)
def test_every_index_kind_keeps_its_config(registry: StoreRegistry, tmp_path: Path, kind: str) -> None:
    registry.create("s", index_kind=kind)
    keys = np.random.default_rng(9).standard_normal((40, 8)).astype("<f4")
    registry.get("s").set(keys, [str(i) for i in range(40)])
    with StoreRegistry(tmp_path / "other") as other:
        info = import_store(other, [export_bytes(registry, "s")])
        assert (info.index_kind, info.index_options, info.count) == (kind, registry.describe("s").index_options, 40)
        assert other.get("s").find(keys[3].tolist(), 1).values == ["3"]
