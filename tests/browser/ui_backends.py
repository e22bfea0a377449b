"""Fake chat models for the browser tests, registered by tests/browser/serve.py.

`CitingFake` answers from the numbered sources in its prompt: one sentence per source quoting its
first words and citing it as [n] (no sources: a plain fake answer). `MarkdownStreamer` streams a long
markdown answer (paragraphs, lists, code blocks) one token at a time: option `tokens:N` (default
2000) and `token_delay_us:N` (default 0), so the UI's streaming can be measured.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

from inference.backends.fake import FakeBackend
from inference.catalog.known_backends import DEFAULT_BACKENDS, BackendSpec
from inference.generation import Finished, GenerationEvent, SamplingParams, TextDelta

SOURCE = re.compile(r"^\[(\d+)\] (.+)\n(.+)$", re.MULTILINE)
BROWSER_BACKENDS = (
    BackendSpec(name="citing-fake", target="ui_backends:CitingFake"),
    BackendSpec(name="markdown-fake", target="ui_backends:MarkdownStreamer"),
    BackendSpec(name="media-fake", target="media_backends:MediaFake"),  # images, speech, transcripts, sounds
)


def browser_backends() -> tuple[BackendSpec, ...]:
    return (*DEFAULT_BACKENDS, *BROWSER_BACKENDS)


class CitingFake(FakeBackend):
    name: ClassVar[str] = "citing-fake"

    def generate(
        self, prompt: str, params: SamplingParams, cancel: threading.Event | None = None
    ) -> Iterator[GenerationEvent]:
        sources = SOURCE.findall(prompt)
        if not sources:
            yield from super().generate(prompt, params, cancel)
            return
        sentences = []
        for number, _label, text in sources[:3]:
            words = " ".join(text.split()[:8]).rstrip(".,;:")
            sentences.append(f"The document says: {words} [{number}].")
        answer = " ".join(sentences)
        produced = 0
        for piece in re.findall(r"\S+\s*", answer):
            if cancel is not None and cancel.is_set():
                break
            produced += 1
            yield TextDelta(piece, 1)
        yield Finished("stop", len(prompt.encode()), produced)


class MarkdownStreamer(FakeBackend):
    name: ClassVar[str] = "markdown-fake"

    def generate(
        self, prompt: str, params: SamplingParams, cancel: threading.Event | None = None
    ) -> Iterator[GenerationEvent]:
        options = {k.strip(): v.strip() for k, _, v in (o.partition(":") for o in self.config.options)}
        total = int(options.get("tokens", "2000"))
        delay = int(options.get("token_delay_us", "0")) / 1e6
        produced = 0
        for piece in _markdown_tokens(total):
            if cancel is not None and cancel.is_set():
                break
            if delay:
                time.sleep(delay)
            produced += 1
            yield TextDelta(piece, 1)
        yield Finished("length" if produced >= total else "stop", len(prompt.encode()), produced)


def _markdown_tokens(total: int) -> Iterator[str]:
    """`total` pieces of markdown that cycle through headings, prose, lists and fenced code."""
    section = 0
    produced = 0
    while True:
        section += 1
        block = (
            f"## Part {section}\n\nThis part explains step {section} in plain words, with **bold** and `code` "
            f"and a [link](#/chat) so the renderer has real work to do on every block.\n\n"
            f"- first point of part {section}\n- second point, a little longer than the first\n\n"
            f"```python\ndef part_{section}(x):\n    return x * {section}  # multiply\n```\n\n"
        )
        for piece in re.findall(r"\S+\s*|\s+", block):
            if produced >= total:
                return
            produced += 1
            yield piece
