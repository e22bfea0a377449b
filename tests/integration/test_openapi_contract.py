"""The OpenAPI document tells the truth: schemathesis, every check on (`--checks all`), all its
phases (coverage, fuzzing, and stateful chains along the document's links; the examples phase has
none to send), over every operation of a real server process with API keys set.

The server runs tiny real models of every kind (fake chat/embedding/rerank models, a piper voice, a
tiny Stable Diffusion, a tiny whisper, a tiny AudioLDM) so requests reach real code paths, and the
test first creates what paths name: uploaded files, vector stores with files and a batch, named
key stores, a stored response, a generated image. Fuzz dictionaries steer `model` fields to models
that exist (for the right capability) and path parameters to objects that exist, some of the time;
tests/fixtures/contract_hooks.py makes schema-valid cases obey the few rules JSON Schema cannot
state. Any finding fails the test, with schemathesis' report of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.piper_models import PiperVoices
from fixtures.whisper_models import write_tone_wav
from support import Server, free_port, write

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
pytest.importorskip("schemathesis")

KEY = "sk-contract"
DIMENSION = 4  # of every key the hooks generate for /stores
RUN_TIMEOUT_S = 600  # the whole schemathesis run; it normally takes a few minutes
MAX_EXAMPLES = 12  # per operation, in the coverage and fuzzing phases
STATEFUL_SCENARIOS = 400  # chains along the document's links (create, then read, change, delete)

MODELS_YAML = """
- name: chat
  backend: fake
  context_size: 1000000
  known_usecases: [chat, completion, edit, tokenize]
- name: embedder
  backend: fake
  known_usecases: [embeddings]
  options: ['dimensions:16']
- name: reranker
  backend: fake
  known_usecases: [rerank]
- name: voice
  backend: piper
  parameters: {model: voice.onnx}
- name: painter
  backend: diffusers
  parameters: {model: tiny-sd}
  step: 1
- name: tiny-audio
  backend: diffusers
  parameters: {model: tiny-audioldm}
  step: 1
  diffusers: {pipeline_type: AudioLDMPipeline, scheduler_type: ddim}
- name: whisper-1
  backend: whisper
  parameters: {model: tiny-whisper, temperature: 0}
  options: ['beam_size:1', 'best_of:1', 'condition_on_previous_text:false']
"""

PREFIXES = {"_v1": "/v1", "": ""}  # dictionary name suffix -> route prefix: OpenAI routes have both
# Models by capability (the fuzz dictionaries draw from these), and the model fields of each route.
CAPABLE = {
    "chat": ["chat"],
    "embed": ["embedder", "all-minilm-l6-v2"],
    "rerank": ["reranker"],
    "tts": ["voice"],
    "image": ["painter"],
    "sound": ["tiny-audio"],
    "stt": ["whisper-1"],
}
MODEL_FIELDS = {
    **{path: {"model": "chat"} for path in ("/chat/completions", "/completions", "/edits", "/messages", "/responses")},
    **{path: {"model": "chat"} for path in ("/tokenize", "/detokenize")},
    "/embeddings": {"model": "embed"},
    "/rerank": {"model": "rerank"},
    "/audio/speech": {"model": "tts"},
    "/tts": {"model": "tts"},
    "/text-to-speech/{voice_id}": {"model_id": "tts"},
    "/text-to-speech/{voice_id}/stream": {"model_id": "tts"},
    "/images/generations": {"model": "image"},
    "/sound-generation": {"model_id": "sound"},
    "/audio/transcriptions": {"model": "stt"},
    "/audio/translations": {"model": "stt"},
    "/vector_stores": {"embedding_model": "embed", "rerank_model": "rerank"},
    "/vector_stores/{store_id}": {"rerank_model": "rerank"},
    "/vector_stores/{store_id}/reindex": {"embedding_model": "embed"},
}

# Operations not run, each with its reason; every other operation of the document is run.
SKIPPED = {
    "POST /models/apply": "downloads from the URLs it is given: the fuzzer's would reach beyond loopback "
    "(tests/integration/test_gallery_*.py run it against local servers)",
    "POST /models/galleries": "adds a gallery whose index GET /models/available then downloads (network)",
}


@pytest.fixture(scope="module")
def models(
    tmp_path_factory: pytest.TempPathFactory,
    piper_voices: PiperVoices,
    tiny_stable_diffusion: Path,
    tiny_whisper: Path,
    tiny_audioldm: Path,
) -> Path:
    models = tmp_path_factory.mktemp("contract") / "models"
    models.mkdir()
    shutil.copy(piper_voices.single, models / "voice.onnx")
    shutil.copy(piper_voices.single.with_name(piper_voices.single.name + ".json"), models / "voice.onnx.json")
    (models / "tiny-sd").symlink_to(tiny_stable_diffusion, target_is_directory=True)
    (models / "tiny-audioldm").symlink_to(tiny_audioldm, target_is_directory=True)
    (models / "tiny-whisper").symlink_to(tiny_whisper, target_is_directory=True)
    write(models / "models.yaml", MODELS_YAML)
    return models


@pytest.fixture(scope="module")
def server(models: Path) -> Iterator[Server]:
    root = models.parent
    port = free_port()
    args = [
        "--address", f"127.0.0.1:{port}", "--models-path", str(models), "--data-path", str(root / "data"),
        "--api-keys", KEY, "--default-embedding-model", "embedder", "--image-max-size", "64x64",
        "--image-max-n", "2", "--disable-web-ui",
    ]  # fmt: skip
    server = Server(args, root, port)
    try:
        server.wait_healthy(timeout=60)
        yield server
    finally:
        server.stop()


def test_the_openapi_document_tells_the_truth(server: Server, tmp_path: Path) -> None:
    with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as http:
        seeded = seed(http, tmp_path)
        schema = tmp_path / "openapi.json"  # read with the key, as every route but the probes needs one
        schema.write_bytes(http.get("/openapi.json").content)
        names = [model["id"] for model in http.get("/v1/models").json()["data"]]
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config(seeded), encoding="utf-8")
    report = tmp_path / "report.json"
    env = {**os.environ, **hook_environment(tmp_path, names, seeded)}
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        str(schema), "--url", server.base, "--checks", "all",
        "--workers", "1", "--seed", "20261204", "--generation-database", "none", "--no-color",
        "--report", "json", "--report-json-path", str(report), "--request-timeout", "60",
    ]  # fmt: skip
    started = time.monotonic()
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    (tmp_path / "schemathesis.txt").write_text(output, encoding="utf-8")
    summary = json.loads(report.read_text()) if report.exists() else {}
    failures = summary.get("failures") or []
    errors = summary.get("errors") or []
    print(f"schemathesis ran {summary.get('test_cases', {})} in {elapsed:.0f} s")
    assert run.returncode == 0 and not failures and not errors, output[-30000:]
    assert summary.get("complete") is True, output[-5000:]


def hook_environment(folder: Path, models: list[str], seeded: dict[str, list[str]]) -> dict[str, str]:
    """What tests/fixtures/contract_hooks.py reads: files made by `seed`, and the models."""
    return {
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
        "CONTRACT_STORE_DIMENSION": str(DIMENSION),
        "CONTRACT_AUDIO": str(write_tone_wav(folder / "tone.wav", seconds=0.5)),
        "CONTRACT_IMAGE": str(folder / "image.png"),
        "CONTRACT_STORE_EXPORT": str(folder / "store.jsonl.gz"),
        "CONTRACT_MODELS": json.dumps({"capable": CAPABLE, "fields": MODEL_FIELDS, "all": models}),
        "CONTRACT_SEEDED": json.dumps(seeded),
    }


def seed(http: httpx.Client, folder: Path) -> dict[str, list[str]]:
    """Objects for path parameters and cursors to name, by the fuzz dictionary that offers them:
    some to read and change, others made to be deleted (each kind of delete has its own)."""

    def ok(response: httpx.Response) -> Any:
        assert response.status_code == 200, (response.request.url, response.status_code, response.text)
        return response.json() if response.headers.get("content-type", "").startswith("application/json") else None

    def upload(name: str) -> str:
        text = f"# {name}\n\nThe contract test keeps this note about {name}.\n"
        return ok(http.post("/v1/files", files={"file": (name, text.encode())}, data={"purpose": "assistants"}))["id"]

    def store(name: str, file_ids: list[str]) -> str:
        store_id = ok(http.post("/v1/vector_stores", json={"name": name, "file_ids": file_ids}))["id"]
        wait_ingested(http, store_id)
        return store_id

    def respond() -> str:
        return ok(http.post("/v1/responses", json={"model": "chat", "input": "hello", "max_output_tokens": 8}))["id"]

    files = [upload(f"kept-{n}.md") for n in range(2)]
    kept = store("kept", files)
    batch = ok(http.post(f"/v1/vector_stores/{kept}/file_batches", json={"file_ids": files[:1]}))["id"]
    for name in ("contract", ""):
        keys = [[1.0, 0.0, 0.0, float(n)] for n in range(3)]
        ok(http.post("/stores/set", json={"store": name, "keys": keys, "values": ["a", "b", "c"]}))
    ok(http.post("/stores/create", json={"name": "created"}))
    (folder / "store.jsonl.gz").write_bytes(http.post("/stores/export", json={"store": "contract"}).content)
    reply = respond()
    image = ok(http.post("/v1/images/generations", json={"model": "painter", "prompt": "a cat", "size": "32x32"}))
    name = image["data"][0]["url"].rsplit("/", 1)[-1]
    (folder / "image.png").write_bytes(http.get(f"/generated-images/{name}").content)
    doomed: dict[str, list[str]] = {}
    for prefix in PREFIXES:  # the /v1 and the bare route of each delete have their own objects
        detached = upload(f"detached{prefix}.md")
        doomed |= {
            f"doomed_files{prefix}": [upload(f"doomed{prefix}.md")],
            f"doomed_stores{prefix}": [store("doomed", [])],
            f"detaching_stores{prefix}": [store("detaching", [detached])],
            f"detached_files{prefix}": [detached],
            f"doomed_responses{prefix}": [respond()],
        }
    return {
        "files": files,
        "stores": [kept],
        "batches": [batch],
        "batch_files": files[:1],
        "responses": [reply],
        "items": [item["id"] for item in ok(http.get(f"/v1/responses/{reply}/input_items"))["data"]],
        "images": [name],
        **doomed,
    }


def wait_ingested(http: httpx.Client, store_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = http.get(f"/v1/vector_stores/{store_id}").json()["file_counts"]
        if counts["in_progress"] == 0:
            assert counts["failed"] == 0, counts
            return
        time.sleep(0.1)
    raise AssertionError(f"vector store {store_id} still ingesting after {timeout} s")


def toml_list(values: list[Any]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def schemathesis_config(seeded: dict[str, list[str]]) -> str:
    """Auth, hooks, and fuzz dictionaries: real models per capability and real ids, mixed with
    generated values (probability below 1) so unknown names and ids are tried too."""
    dictionaries = {
        **CAPABLE,
        "any_model": ["chat", "embedder", "reranker"],
        **seeded,
        "key_stores": ["contract", "", "created"],
        "languages": ["en", "de"],
        "tokens": [1, 8, 64],
        "sizes": ["32x32", "16x24", "auto"],
        "small": [1, 2],
        "seconds": [0.5, 1.0],
    }
    lines = [
        'hooks = "fixtures.contract_hooks"',
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        "[phases.stateful]",
        "max-steps = 12",
        "[phases.stateful.generation]",
        f"max-examples = {STATEFUL_SCENARIOS}",
        "[auth.openapi.bearer]",
        f'bearer = "{KEY}"',
    ]
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {toml_list(values)}"]
    # path parameters: globally, with deletes aimed at objects made to be deleted
    lines += [
        "[parameters]",
        '"path.file_id" = { dictionary = "files", probability = 0.8 }',
        '"path.store_id" = { dictionary = "stores", probability = 0.8 }',
        '"path.batch_id" = { dictionary = "batches", probability = 0.8 }',
        '"path.response_id" = { dictionary = "responses", probability = 0.8 }',
        '"path.name" = { dictionary = "images", probability = 0.8 }',
        '"path.model_id" = { dictionary = "any_model", probability = 0.8 }',
        '"path.voice_id" = { dictionary = "tts", probability = 0.8 }',
        '"query.model" = { dictionary = "any_model", probability = 0.8 }',
    ]
    model = "{ dictionary = \"%s\", probability = 0.8 }"
    # Token budgets the chat model's context holds (a larger one is a 400 context_length_exceeded).
    budget = {f"body.{name}": '{ dictionary = "tokens" }' for name in ("max_tokens", "max_completion_tokens")}
    cursor = '{ dictionary = "%s" }'  # a list cursor names an object of that list (else a 400)
    file = '{ dictionary = "files", probability = 0.8 }'
    per_operation = [  # disjoint: an operation takes the parameters of the first block it matches
        (r"/(chat/)?completions$|/edits$|/messages$", {"body.model": model % "chat", **budget}),
        (
            r"^(/v1)?/responses$",
            {"body.model": model % "chat", "body.max_output_tokens": '{ dictionary = "tokens" }',
             "body.previous_response_id": '{ dictionary = "responses", probability = 0.8 }'},
        ),
        (r"/tokenize$|/detokenize$", {"body.model": model % "chat"}),
        (r"^(/v1)?/files$", {"query.after": cursor % "files", "query.before": cursor % "files"}),
        (
            r"^(/v1)?/vector_stores$",
            {"query.after": cursor % "stores", "query.before": cursor % "stores", "body.file_ids[*]": file},
        ),
        (
            r"^(/v1)?/vector_stores/[^/]+/files$",
            {"query.after": cursor % "files", "query.before": cursor % "files", "body.file_id": file},
        ),
        (r"^(/v1)?/vector_stores/[^/]+/file_batches$", {"body.file_ids[*]": file, "body.files[*].file_id": file}),
        (
            r"/file_batches/[^/]+/files$",
            {"query.after": cursor % "batch_files", "query.before": cursor % "batch_files"},
        ),
        (r"/input_items$", {"query.after": cursor % "items"}),
        (r"/embeddings$", {"body.model": model % "embed"}),
        (r"/rerank$", {"body.model": model % "rerank"}),
        (r"/audio/speech$|^/tts$", {"body.model": model % "tts"}),
        (r"^/v1/text-to-speech/", {"body.model_id": model % "tts"}),
        (
            r"/sound-generation$",
            {"body.model_id": model % "sound", "body.duration_seconds": '{ dictionary = "seconds" }'},
        ),
        (r"^/backend/(load|shutdown)$", {"body.model": model % "any_model"}),
        (
            r"/images/generations$",
            {
                "body.model": model % "image",
                "body.size": '{ dictionary = "sizes" }',
                "body.n": '{ dictionary = "small" }',
                "body.step": '{ dictionary = "small" }',
            },
        ),
        (
            r"/audio/(transcriptions|translations)$",
            {"body.model": model % "stt", "body.language": '{ dictionary = "languages" }'},
        ),
        (r"^/stores/(set|get|delete|find|export)$", {"body.store": '{ dictionary = "key_stores", probability = 0.8 }'}),
    ]
    for pattern, parameters in per_operation:
        bindings = ", ".join(f'"{field}" = {binding}' for field, binding in parameters.items())
        lines += ["[[operations]]", f"include-path-regex = '{pattern}'", f"parameters = {{ {bindings} }}"]
    deletes = {  # each delete takes objects made for it
        r"/files/\{file_id\}": {"path.file_id": "doomed_files"},
        r"/vector_stores/\{store_id\}": {"path.store_id": "doomed_stores"},
        r"/vector_stores/\{store_id\}/files/\{file_id\}": {
            "path.store_id": "detaching_stores",
            "path.file_id": "detached_files",
        },
        r"/responses/\{response_id\}": {"path.response_id": "doomed_responses"},
    }
    for pattern, parameters in deletes.items():
        for prefix in PREFIXES:
            bindings = ", ".join(
                f'"{field}" = {{ dictionary = "{name}{prefix}" }}' for field, name in parameters.items()
            )
            lines += [
                "[[operations]]",
                f"include-name-regex = '^DELETE {PREFIXES[prefix]}{pattern}$'",
                f"parameters = {{ {bindings} }}",
            ]
    for operation, reason in SKIPPED.items():
        lines += ["[[operations]]", f"# {reason}", f"include-name = '{operation}'", "enabled = false"]
    return "\n".join(lines) + "\n"
