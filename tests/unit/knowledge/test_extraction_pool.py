"""ExtractionPool: files are read in child processes; a crash, hang, memory blow-up or cancel fails one file.

Misbehaving files use the worker's test hooks (a file starting with "TEST-HOOK <action>", honoured only
with APPLIANCE_EXTRACTION_TEST_HOOKS=1); each hook writes the worker's pid to `<file>.pid` first.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from appliance.knowledge.extraction import ExtractionFailed, ExtractionLimits, ExtractionPool
from fixtures import documents

T = TypeVar("T")


@pytest.fixture(autouse=True)
def test_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_EXTRACTION_TEST_HOOKS", "1")


def hook(folder: Path, action: str, name: str | None = None) -> Path:
    return documents.write_bytes(folder, name or f"{action}.txt", f"TEST-HOOK {action}\nThe file text.\n")


def worker_pid(path: Path) -> int:
    return int(Path(f"{path}.pid").read_text())


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def with_pool(scenario: Callable[[ExtractionPool], Awaitable[T]], **options: object) -> T:
    async def run() -> T:
        pool = ExtractionPool(**options)  # type: ignore[arg-type]
        try:
            return await scenario(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


async def failure(pool: ExtractionPool, path: Path) -> ExtractionFailed:
    with pytest.raises(ExtractionFailed) as caught:
        await pool.extract(path, path.name)
    return caught.value


def test_pool_extracts_each_format_and_reports_pdf_pages(tmp_path: Path) -> None:
    pdf = documents.write_text_pdf(tmp_path, pages=12, marker="Marker ERR-4021-X", marker_page=7)
    others = [documents.write_docx(tmp_path), documents.write_html(tmp_path), documents.write_markdown(tmp_path)]
    progress: list[tuple[int, int | None]] = []

    async def scenario(pool: ExtractionPool) -> None:
        document = await pool.extract(
            pdf, "manual.pdf", "application/pdf", lambda done, total: progress.append((done, total))
        )
        assert document.pages == 12
        assert [b.page for b in document.blocks if "ERR-4021-X" in b.text] == [7]
        formats = [(await pool.extract(path, path.name)).format for path in others]
        assert formats == ["docx", "html", "markdown"]

    with_pool(scenario)
    assert progress == [(page, 12) for page in range(1, 13)]


def test_one_worker_serves_many_files_in_turn(tmp_path: Path) -> None:
    files = [documents.write_html(tmp_path, f"page{i}.html") for i in range(30)]
    first, last = hook(tmp_path, "pid", "first.txt"), hook(tmp_path, "pid", "last.txt")

    async def scenario(pool: ExtractionPool) -> float:
        await pool.extract(first, first.name)
        started = time.monotonic()
        extracted = await asyncio.gather(*(pool.extract(path, path.name) for path in files))
        elapsed = time.monotonic() - started
        assert all(document.title == "Field Service Manual" for document in extracted)
        await pool.extract(last, last.name)
        return elapsed

    assert with_pool(scenario) < 5
    assert worker_pid(first) == worker_pid(last)  # long-lived: one process read all 32 files
    assert not is_running(worker_pid(first))  # close() stopped it


def test_workers_read_files_side_by_side(tmp_path: Path) -> None:
    slow = [hook(tmp_path, "hang", f"hang{i}.txt") for i in range(2)]

    async def scenario(pool: ExtractionPool) -> float:
        started = time.monotonic()
        errors = await asyncio.gather(*(failure(pool, path) for path in slow))
        assert [error.code for error in errors] == ["extraction_timeout"] * 2
        return time.monotonic() - started

    assert with_pool(scenario, workers=2, limits=ExtractionLimits(timeout_s=0.5)) < 1.0  # not 0.5 + 0.5
    assert worker_pid(slow[0]) != worker_pid(slow[1])


def test_size_emptiness_and_format_are_checked_before_a_worker_runs(tmp_path: Path) -> None:
    big = documents.write_bytes(tmp_path, "big.txt", "x" * 2000)
    empty = documents.write_bytes(tmp_path, "empty.txt", b"")
    image = documents.write_bytes(tmp_path, "photo.png", b"\x89PNG\r\n\x1a\n" + bytes(100))

    async def scenario(pool: ExtractionPool) -> list[str]:
        codes = [(await failure(pool, path)).code for path in (big, empty, image)]
        assert pool._running == set() and pool._idle == []  # no worker was started
        return codes

    assert with_pool(scenario, limits=ExtractionLimits(max_bytes=1000)) == [
        "file_too_large",
        "no_text",
        "unsupported_file",
    ]


def test_bad_documents_fail_with_their_code_and_the_worker_goes_on(tmp_path: Path) -> None:
    bad = {
        "encrypted_file": documents.write_encrypted_pdf(tmp_path),
        "no_text": documents.write_image_pdf(tmp_path),
        "invalid_file": documents.write_corrupt_pdf(tmp_path),
        "zip_bomb": documents.write_docx_zip_bomb(tmp_path, uncompressed_mb=40),
    }
    blank = documents.write_bytes(tmp_path, "blank.md", "\n\n   \n")
    marker = hook(tmp_path, "pid")

    async def scenario(pool: ExtractionPool) -> dict[str, str]:
        await pool.extract(marker, marker.name)
        pid = worker_pid(marker)
        codes = {code: (await failure(pool, path)).code for code, path in bad.items()}
        codes["blank"] = (await failure(pool, blank)).code
        await pool.extract(marker, marker.name)
        assert worker_pid(marker) == pid  # a file's failure does not retire the worker
        return codes

    assert with_pool(scenario) == {code: code for code in bad} | {"blank": "no_text"}


@pytest.mark.parametrize(
    ("action", "code"),
    [
        ("crash", "invalid_file"),  # SIGSEGV
        ("exit", "invalid_file"),
        ("xcpu", "extraction_timeout"),  # what RLIMIT_CPU sends
        ("memory", "extraction_out_of_memory"),  # RLIMIT_AS turns the hog into MemoryError
        ("garbage", "invalid_file"),  # a confused child that breaks the protocol
    ],
)
def test_a_failing_child_fails_only_its_file(tmp_path: Path, action: str, code: str) -> None:
    bad = hook(tmp_path, action)
    good = documents.write_text(tmp_path)

    async def scenario(pool: ExtractionPool) -> ExtractionFailed:
        error = await failure(pool, bad)
        assert not is_running(worker_pid(bad))
        assert (await pool.extract(good, good.name)).format == "text"
        return error

    error = with_pool(scenario, limits=ExtractionLimits(memory_mb=512))
    assert error.code == code
    assert error.message.endswith(".")


def test_a_worker_killed_while_idle_is_replaced_without_failing_the_next_file(tmp_path: Path) -> None:
    marker = hook(tmp_path, "pid")

    async def scenario(pool: ExtractionPool) -> None:
        await pool.extract(marker, marker.name)
        pid = worker_pid(marker)
        os.kill(pid, signal.SIGKILL)  # e.g. the kernel's OOM killer, between two files
        assert (await pool.extract(marker, marker.name)).format == "text"
        assert worker_pid(marker) != pid

    with_pool(scenario)


def test_wall_clock_timeout_kills_the_child(tmp_path: Path) -> None:
    hang = hook(tmp_path, "hang")
    good = documents.write_text(tmp_path)

    async def scenario(pool: ExtractionPool) -> float:
        started = time.monotonic()
        assert (await failure(pool, hang)).code == "extraction_timeout"
        elapsed = time.monotonic() - started
        assert not is_running(worker_pid(hang))
        assert (await pool.extract(good, good.name)).format == "text"
        return elapsed

    assert 0.5 <= with_pool(scenario, limits=ExtractionLimits(timeout_s=0.5)) < 2.0


def test_cancelling_kills_the_child_within_a_second_and_the_pool_goes_on(tmp_path: Path) -> None:
    hang = hook(tmp_path, "hang")
    good = documents.write_text_pdf(tmp_path, pages=2)

    async def scenario(pool: ExtractionPool) -> float:
        started = asyncio.Event()
        task = asyncio.create_task(pool.extract(hang, hang.name, None, lambda done, total: started.set()))
        await asyncio.wait_for(started.wait(), 10)
        pid = worker_pid(hang)
        assert is_running(pid)
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        elapsed = time.monotonic() - cancelled_at
        assert not is_running(pid)
        assert (await pool.extract(good, good.name)).pages == 2
        return elapsed

    assert with_pool(scenario) < 1.0


def test_close_stops_the_workers_and_a_later_file_starts_a_new_one(tmp_path: Path) -> None:
    marker = hook(tmp_path, "pid")

    async def scenario(pool: ExtractionPool) -> None:
        await pool.extract(marker, marker.name)
        pid = worker_pid(marker)
        assert is_running(pid)
        await pool.close()
        assert not is_running(pid)
        await pool.extract(marker, marker.name)
        assert worker_pid(marker) != pid

    with_pool(scenario)


def test_a_closed_pool_works_again_in_a_new_event_loop(tmp_path: Path) -> None:
    """The app's lifespan may end and start again in a fresh loop with the same pool."""
    marker = hook(tmp_path, "pid")
    pool = ExtractionPool()

    async def lifespan() -> int:
        try:
            await pool.extract(marker, marker.name)
            return worker_pid(marker)
        finally:
            await pool.close()

    first = asyncio.run(lifespan())
    second = asyncio.run(lifespan())
    assert first != second
    assert not is_running(first) and not is_running(second)


def test_importing_the_package_loads_no_parser() -> None:
    code = (
        "import sys, appliance.knowledge.extraction, appliance.knowledge.document\n"
        "print(sorted(m for m in ('pypdfium2', 'selectolax', 'docx', 'markdown_it', 'lxml') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
