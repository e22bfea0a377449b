"""The vector store's exception tree.

Every error carries a stable ``code``; the HTTP layer maps the classes to status codes
(InvalidInput/DimensionMismatch -> 400, StoreNotFound -> 404, StoreExists/ModelMismatch -> 409,
DataPathLocked/StoreClosed/SchemaTooNew/SchemaMismatch -> 503).
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error raised by ``stores``."""

    code = "store_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidInput(StoreError):
    """The caller's data is unusable (length mismatch, empty keys, non-finite numbers, ...)."""

    code = "invalid_input"


class DimensionMismatch(InvalidInput):
    """A key's dimension differs from the one the store was fixed to."""

    code = "dimension_mismatch"


class StoreNotFound(StoreError):
    """The named store does not exist."""

    code = "store_not_found"


class StoreExists(StoreError):
    """``create`` named a store that already exists."""

    code = "store_exists"


class ModelMismatch(StoreError):
    """A request names an embedding model other than the one recorded for the store."""

    code = "model_mismatch"


class DataPathLocked(StoreError):
    """Another process holds the data path's lock file."""

    code = "data_path_locked"


class SchemaTooNew(StoreError):
    """The database was written by newer code than this one."""

    code = "schema_too_new"


class SchemaMismatch(StoreError):
    """An applied migration's checksum differs from the code's: the database was altered."""

    code = "schema_mismatch"


class StoreClosed(StoreError):
    """The registry (or store) was used after ``close``."""

    code = "store_closed"
