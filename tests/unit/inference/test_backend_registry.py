"""BackendRegistry: names and aliases, dependency checks without imports, lazy class loading."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from inference.backends.fake import FakeBackend
from inference.backends.registry import BackendRegistry
from inference.catalog.known_backends import BackendSpec
from inference.errors import BackendNotFound, BackendUnavailable

REPO_ROOT = Path(__file__).resolve().parents[3]
HEAVY = {"torch", "llama_cpp", "diffusers", "faster_whisper", "piper", "faiss", "numpy", "sentence_transformers"}


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("llama-cpp", "llama-cpp"),
        ("llama", "llama-cpp"),
        ("llama.cpp", "llama-cpp"),
        ("llama-cpp-python", "llama-cpp"),
        ("sentencetransformers", "sentencetransformers"),
        ("sentence-transformers", "sentencetransformers"),
        ("sentence_transformers", "sentencetransformers"),
        ("diffusers", "diffusers"),
        ("whisper", "faster-whisper"),
        ("faster_whisper", "faster-whisper"),
        ("Faster-Whisper", "faster-whisper"),
        ("piper", "piper"),
        ("fake", "fake"),
    ],
)
def test_localai_aliases_resolve_to_canonical_names(alias, canonical):
    assert BackendRegistry().canonical(alias) == canonical


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(BackendNotFound) as info:
        BackendRegistry().canonical("vllm")

    assert "vllm" in str(info.value) and "llama-cpp" in str(info.value) and "piper" in str(info.value)


def test_specs_carry_targets_requirements_and_extras():
    registry = BackendRegistry()

    assert registry.names() == ["diffusers", "fake", "faster-whisper", "llama-cpp", "piper", "sentencetransformers"]
    spec = registry.spec("sentence-transformers")
    assert spec.target == "inference.backends.sentence_transformers:SentenceTransformersBackend"
    assert spec.requires == ("sentence_transformers", "torch") and spec.extra == "embed"
    assert registry.spec("whisper").extra == "stt"


def test_check_available_names_the_missing_package_and_the_extra():
    registry = BackendRegistry()
    registry.register(
        BackendSpec(name="ghost", target="ghost_backend:Ghost", requires=("no_such_module_x1",), extra="ghostly")
    )

    with pytest.raises(BackendUnavailable) as info:
        registry.check_available("ghost")

    assert info.value.missing == "no_such_module_x1" and info.value.extra == "ghostly"
    assert "appliance[ghostly]" in str(info.value)
    with pytest.raises(BackendUnavailable):
        registry.backend_class("ghost")


def test_backend_class_imports_the_target_lazily():
    assert BackendRegistry().backend_class("fake") is FakeBackend


def test_a_target_module_that_does_not_exist_is_backend_not_found():
    registry = BackendRegistry()
    registry.register(BackendSpec(name="later", target="inference.backends.not_written_yet:Later"))

    with pytest.raises(BackendNotFound, match="not_written_yet"):
        registry.backend_class("later")


def test_a_target_missing_a_dependency_is_backend_unavailable(tmp_path, monkeypatch):
    (tmp_path / "needs_dep_backend.py").write_text("import dependency_not_installed_x2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = BackendRegistry()
    registry.register(BackendSpec(name="needy", target="needs_dep_backend:Needy", extra="needy"))

    with pytest.raises(BackendUnavailable) as info:
        registry.backend_class("needy")

    assert info.value.missing == "dependency_not_installed_x2"


def test_a_target_that_is_not_a_backend_class_is_rejected():
    registry = BackendRegistry()
    registry.register(BackendSpec(name="notone", target="inference.backends.registry:BackendSpec"))

    with pytest.raises(BackendNotFound, match="not a Backend class"):
        registry.backend_class("notone")


def test_an_alias_cannot_be_claimed_twice():
    registry = BackendRegistry()
    with pytest.raises(ValueError, match="llama"):
        registry.register(BackendSpec(name="other", target="x:Y", aliases=("llama",)))


def test_re_registering_replaces_a_spec():
    registry = BackendRegistry()
    registry.register(BackendSpec(name="fake", target="inference.backends.fake:FakeBackend", aliases=("dummy",)))
    assert registry.canonical("dummy") == "fake"


def test_a_target_must_name_module_and_class():
    with pytest.raises(ValueError, match="module:Class"):
        BackendSpec(name="bad", target="just_a_module")


def test_listing_and_checking_import_nothing_heavy():
    # A fresh interpreter: other tests in this process may have imported anything.
    script = textwrap.dedent(
        """
        import json, sys
        import inference, inference.catalog.catalog, inference.scheduling.scheduler, inference.backends.fake
        from inference.backends.registry import BackendRegistry
        from inference.errors import BackendUnavailable
        registry = BackendRegistry()
        for name in registry.names():
            registry.spec(name)
            try:
                registry.check_available(name)
            except BackendUnavailable:
                pass
        registry.backend_class("fake")
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in %r)))
        """
        % (sorted(HEAVY),)
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60, cwd=REPO_ROOT
    )

    assert json.loads(result.stdout) == []
