"""Loading a backend leaves nothing behind in TMPDIR: onnxruntime's telemetry stays off (found by the soak)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import os
from inference.backends.registry import BackendRegistry
BackendRegistry().backend_class("piper")
import onnxruntime, piper  # what a voice's load imports
print(os.environ.get("ORT_DISABLE_TELEMETRY", "unset"))
"""


def _run(tmp_path: Path, **extra: str) -> tuple[str, list[str]]:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env |= {"TMPDIR": str(tmpdir), **extra}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), sorted(p.name for p in tmpdir.iterdir())


def test_onnxruntime_telemetry_is_off_and_tmpdir_stays_empty(tmp_path: Path) -> None:
    for module in ("onnxruntime", "piper"):
        pytest.importorskip(module)
    value, left = _run(tmp_path)
    assert value == "1"
    assert left == []  # with telemetry on, onnxruntime 1.2x+ leaves a `.ses` session file here


def test_a_value_the_user_set_wins(tmp_path: Path) -> None:
    pytest.importorskip("piper")
    value, _ = _run(tmp_path, ORT_DISABLE_TELEMETRY="0")
    assert value == "0"
