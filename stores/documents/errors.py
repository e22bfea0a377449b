"""The document library's own errors, as subclasses of ``stores.errors`` so the HTTP layer's table
of status codes covers them unchanged (NotFound -> 404 like StoreNotFound)."""

from __future__ import annotations

from stores.errors import StoreNotFound


class NotFound(StoreNotFound):
    """No object of ``kind`` (``file``, ``vector_store``, ``vector_store_file``, ``batch``) with ``object_id``."""

    code = "not_found"

    def __init__(self, kind: str, object_id: str, *, param: str | None = None) -> None:
        super().__init__(f"no {kind.replace('_', ' ')} found with id {object_id!r}", param=param)
        self.kind = kind
        self.object_id = object_id
