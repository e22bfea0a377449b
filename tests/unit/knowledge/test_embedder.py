"""DocumentEmbedder.embed: groups of a document go through the embeddings service with a bound on how
many are in flight over ALL documents together, and parallel documents take turns."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np

from appliance.knowledge.embedder import INGEST_GROUP, INGEST_IN_FLIGHT, DocumentEmbedder


class CountingEmbeddings:
    """Answers each call after a short sleep, recording how many calls overlapped and their order."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.calls: list[str] = []

    async def embed(self, model: str, texts: list[str]) -> SimpleNamespace:
        self.running += 1
        self.most = max(self.most, self.running)
        self.calls.append(texts[0][0])
        await asyncio.sleep(0.005)
        self.running -= 1
        return SimpleNamespace(vectors=[[float(len(text)), 1.0] for text in texts])


def test_groups_in_flight_are_bounded_over_every_document_and_documents_take_turns() -> None:
    service = CountingEmbeddings()
    embedder = DocumentEmbedder(scheduler=None, embeddings=service)
    done: list[int] = []

    async def both() -> list[np.ndarray]:
        first = embedder.embed("m", [f"a{n}" for n in range(10 * INGEST_GROUP)], done.append)
        second = embedder.embed("m", [f"b{n:03d}" for n in range(5 * INGEST_GROUP + 3)])
        return await asyncio.gather(first, second)

    a, b = asyncio.run(both())
    assert a.shape == (10 * INGEST_GROUP, 2) and b.shape == (5 * INGEST_GROUP + 3, 2)
    assert a.dtype == np.float32 and set(a[:, 0]) == {2.0, 3.0} and set(b[:, 0]) == {4.0}
    assert service.most == INGEST_IN_FLIGHT  # not INGEST_IN_FLIGHT per document
    assert sum(done) == 10 * INGEST_GROUP
    # the second document started long before the first one ended
    assert service.calls.index("b") < len(service.calls) - service.calls[::-1].index("a") - 5
