"""`import appliance, inference, stores` (and the app factory) must not import any model runtime."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["torch", "llama_cpp", "diffusers", "faster_whisper", "piper", "faiss", "sentence_transformers",
         "transformers", "ctranslate2", "onnxruntime", "pypdfium2", "docx", "selectolax", "markdown_it", "lxml"]

PROBE = """
import json, sys
import appliance, inference, stores, webui
import appliance.app, appliance.cli, appliance.config
import appliance.knowledge.service, appliance.routes.vector_stores, stores.documents
import inference.catalog.catalog, inference.scheduling.scheduler, inference.backends.registry, inference.backends.fake
from appliance.app import create_app
from appliance.config import Settings
import tempfile, pathlib
tmp = pathlib.Path(tempfile.mkdtemp())
(tmp / "m.yaml").write_text("name: m\\nbackend: llama-cpp\\nparameters:\\n  model: x.gguf\\n")
create_app(Settings(models_path=tmp, data_path=tmp / "data"))
heavy = %r
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def test_imports_stay_light() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
