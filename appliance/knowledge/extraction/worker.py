"""The extraction child: `python -m appliance.knowledge.extraction.worker --memory-mb N`.

It caps its own address space (RLIMIT_AS) at start and its CPU time (RLIMIT_CPU) afresh for each
job, then serves jobs from stdin until EOF, answering on a private copy of stdout (stray prints from
libraries go to stderr). Format modules, and so the parsing libraries, are imported here on first use,
never in the server process. Test hooks exist only when APPLIANCE_EXTRACTION_TEST_HOOKS=1 is set.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import resource
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import IO, Any

from appliance.knowledge.extraction import protocol
from appliance.knowledge.extraction.errors import ExtractionFailed, no_text
from appliance.knowledge.extraction.limits import ExtractionLimits

logger = logging.getLogger(__name__)

TEST_HOOKS_ENV = "APPLIANCE_EXTRACTION_TEST_HOOKS"
TEST_HOOK_PREFIX = b"TEST-HOOK "
KIND_NAMES = {
    "pdf": "PDF",
    "docx": "Word document",
    "html": "web page",
    "markdown": "Markdown file",
    "text": "text file",
}


class _Retire(Exception):
    """The job failed in a way that may leave this process unsound: answer, then exit."""


def apply_memory_limit(memory_mb: int) -> None:
    limit = memory_mb * 2**20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def apply_cpu_budget(seconds: float) -> None:
    """Let this job use `seconds` more CPU time; past it the kernel ends the process with SIGXCPU."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


class Worker:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.hooks = os.environ.get(TEST_HOOKS_ENV) == "1"

    def send(self, message: dict[str, Any], payload: bytes = b"") -> None:
        self.out.write(protocol.encode(message) + payload)
        self.out.flush()

    def serve(self, jobs: IO[bytes]) -> None:
        self.send({"type": "ready", "pid": os.getpid()})
        for line in jobs:
            job = protocol.decode(line)
            try:
                self.handle(job)
            except _Retire:
                return

    def handle(self, job: dict[str, Any]) -> None:
        job_id = protocol.expect_int(job, "id")
        self.send({"id": job_id, "type": "started"})
        path = Path(protocol.expect_str(job, "path"))
        fmt = protocol.expect_str(job, "format")
        limits = ExtractionLimits.from_dict(job.get("limits") or {})
        apply_cpu_budget(limits.timeout_s)

        def progress(done: int, total: int | None) -> None:
            self.send({"id": job_id, "type": "progress", "done": done, "total": total})

        try:
            if self.hooks:
                run_test_hook(path, progress, self.out)
            if fmt not in protocol.FORMAT_MODULES:
                raise ExtractionFailed("unsupported_file", f"No extractor for the format {fmt!r}.")
            module = _import_format(fmt)
            document = module.extract(path, limits, progress)
            if not any(block.text.strip() for block in document.blocks):
                raise no_text(KIND_NAMES[fmt])
            payload = document.to_json()
        except ExtractionFailed as exc:
            self.send({"id": job_id, "type": "error", "code": exc.code, "message": exc.message, "retire": False})
            return
        except MemoryError:
            document = payload = None  # free what we can before answering
            message = "Reading the file needed more memory than allowed for one file."
            self.send(
                {"id": job_id, "type": "error", "code": "extraction_out_of_memory", "message": message, "retire": True}
            )
            raise _Retire() from None
        except RecursionError:
            message = f"The {KIND_NAMES.get(fmt, 'file')} is nested too deeply to be read."
            self.send({"id": job_id, "type": "error", "code": "invalid_file", "message": message, "retire": True})
            raise _Retire() from None
        except Exception as exc:  # a parser bug or a file it chokes on: this file fails, the worker goes on
            logger.warning("extraction failed format=%s error=%s", fmt, type(exc).__name__)
            traceback.print_exc(file=sys.stderr)
            kind = KIND_NAMES.get(fmt, "file")
            message = f"The file could not be read as a {kind}; it may be damaged or incomplete."
            self.send({"id": job_id, "type": "error", "code": "invalid_file", "message": message, "retire": False})
            return
        self.send({"id": job_id, "type": "result", "size": len(payload)}, payload)


def _import_format(fmt: str) -> Any:
    try:
        return importlib.import_module(protocol.FORMAT_MODULES[fmt])
    except ImportError as exc:
        kind = KIND_NAMES.get(fmt, fmt)
        raise ExtractionFailed(
            "unsupported_file",
            f"Reading a {kind} needs the optional dependency {exc.name!r}: pip install 'appliance[docs]'.",
        ) from None


def run_test_hook(path: Path, progress: Any, out: IO[bytes]) -> None:
    """Misbehave on request, for the pool's tests: a file starting with b'TEST-HOOK <action>'.

    Every action first writes this process's pid to `<path>.pid`; an unknown action (e.g. "pid")
    then lets the file be extracted as usual.
    """
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head.startswith(TEST_HOOK_PREFIX):
        return
    action = head[len(TEST_HOOK_PREFIX) :].split()[0].decode("ascii", errors="replace")
    Path(f"{path}.pid").write_text(str(os.getpid()))
    progress(1, None)
    if action == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif action == "xcpu":  # what the kernel sends past RLIMIT_CPU
        os.kill(os.getpid(), signal.SIGXCPU)
    elif action == "exit":
        os._exit(3)
    elif action == "hang":
        time.sleep(3600)
    elif action == "spin":
        while True:
            pass
    elif action == "memory":
        hog = []
        while True:
            hog.append(bytearray(64 * 2**20))
    elif action == "garbage":
        out.write(b"this is not a message\n")
        out.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="appliance.knowledge.extraction.worker")
    parser.add_argument("--memory-mb", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="extraction-worker: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when workers stop
    # Answers go to a private copy of stdout; fd 1 becomes stderr so a library's print cannot corrupt them.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    apply_memory_limit(args.memory_mb)
    with os.fdopen(out_fd, "wb") as out:
        try:
            Worker(out).serve(sys.stdin.buffer)
        except BrokenPipeError:  # the server went away
            pass


if __name__ == "__main__":
    main()
