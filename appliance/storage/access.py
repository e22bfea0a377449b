"""The app's handle on the vector stores: one registry per data path, opened on first use.

Opening loads faiss and numpy and takes the data path's lock, so it waits until a store is
asked for (start-up stays light) and runs in a worker thread; closing checkpoints every store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stores.registry import StoreRegistry
    from stores.store import VectorStore


class StoreAccess:
    def __init__(self, data_path: Path) -> None:
        self.path = data_path / "stores"
        self._registry: StoreRegistry | None = None
        self._opening = asyncio.Lock()

    async def registry(self) -> StoreRegistry:
        if self._registry is None:
            async with self._opening:
                if self._registry is None:
                    self._registry = await asyncio.to_thread(self._open)
        return self._registry

    async def get(self, name: str | None) -> VectorStore:
        registry = await self.registry()
        return await asyncio.to_thread(registry.get, name or "")

    async def close(self) -> None:
        if self._registry is not None:
            registry, self._registry = self._registry, None
            await asyncio.to_thread(registry.close)

    def _open(self) -> StoreRegistry:
        from stores.registry import StoreRegistry

        self.path.mkdir(parents=True, exist_ok=True)
        return StoreRegistry(self.path).open()
