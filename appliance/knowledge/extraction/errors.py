"""Why a file could not be read: `ExtractionFailed` with a stable code and a sentence a user can act on.

The codes end up as a vector store file's `last_error.code`, so they are part of the API.
"""

from __future__ import annotations

from typing import Literal, get_args

FailureCode = Literal[
    "unsupported_file",
    "invalid_file",
    "encrypted_file",
    "no_text",
    "too_many_pages",
    "file_too_large",
    "zip_bomb",
    "extraction_timeout",
    "extraction_out_of_memory",
]
FAILURE_CODES: frozenset[str] = frozenset(get_args(FailureCode))

SUPPORTED = "Supported formats are PDF, Word (.docx), HTML, Markdown and plain text."


class ExtractionFailed(Exception):
    """A file that cannot be turned into text; `code` is one of FAILURE_CODES."""

    def __init__(self, code: str, message: str) -> None:
        if code not in FAILURE_CODES:
            raise ValueError(f"unknown extraction failure code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ExtractionFailed({self.code!r}, {self.message!r})"


def damaged(kind: str) -> ExtractionFailed:
    """The usual `invalid_file` for a file that claims to be `kind` but cannot be parsed as one."""
    return ExtractionFailed("invalid_file", f"The file could not be read as {kind}; it may be damaged or incomplete.")


def no_text(kind: str) -> ExtractionFailed:
    return ExtractionFailed("no_text", f"The {kind} contains no text to index.")
