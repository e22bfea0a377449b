"""The browser tests' gate: without chromium they skip and say what to install, but in CI (`CI` or
`APPLIANCE_REQUIRE_BROWSER` set, as .ci/run does) they fail, so CI can never pass by skipping them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BROWSER = Path(__file__).resolve().parents[1] / "browser"


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("browser_harness_under_test", BROWSER / "harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    module = load_harness()
    monkeypatch.setattr(module, "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("APPLIANCE_REQUIRE_BROWSER", raising=False)
    return module


def test_without_chromium_the_browser_tests_skip_saying_what_to_install(harness: ModuleType) -> None:
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        harness.require_browser()


@pytest.mark.parametrize("variable", ["CI", "APPLIANCE_REQUIRE_BROWSER"])
def test_in_ci_a_missing_browser_fails(harness: ModuleType, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "1")
    with pytest.raises(pytest.fail.Exception, match="CI must run them"):
        harness.require_browser()


def test_ci_installs_chromium_and_requires_the_browser_tests() -> None:
    script = (BROWSER.parents[1] / ".ci" / "run").read_text()
    assert "apt-get install -y" in script and "chromium" in script
    assert "export APPLIANCE_REQUIRE_BROWSER=1" in script
    assert script.rstrip().endswith("exec ./scripts/test")
