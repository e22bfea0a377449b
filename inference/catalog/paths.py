"""Safety checks for paths and names that come from configs or requests.

A value that names something under the models path must be relative, must not climb out with a
``..`` component, and must not carry a NUL byte. These checks are pure: they never touch the disk.
"""

from __future__ import annotations

import re

from inference.errors import UnsafePath

_SEPARATORS = re.compile(r"[\\/]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_BACKEND_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def unsafe_reason(value: str) -> str | None:
    """Why ``value`` cannot name something under the models path, or None when it can."""
    if "\x00" in value:
        return "contains a NUL byte"
    if value.startswith(("/", "\\")) or _DRIVE.match(value):
        return "is an absolute path"
    if ".." in _SEPARATORS.split(value):
        return "contains a '..' path component"
    return None


def ensure_relative(value: str, *, field: str) -> str:
    """Return ``value`` unchanged, or raise UnsafePath naming ``field`` and the value."""
    reason = unsafe_reason(value)
    if reason is not None:
        raise UnsafePath(
            f"{field} {value!r} {reason}; it must be relative to the models path", param=field
        )
    return value


def ensure_backend_name(value: str, *, field: str = "backend") -> str:
    """A backend is a plain name (letters, digits, '-', '_', '.'), never a path."""
    reason = unsafe_reason(value)
    if reason is None and (not _BACKEND_NAME.match(value) or ".." in value):
        reason = "is not a plain backend name (letters, digits, '-', '_', '.')"
    if reason is not None:
        raise UnsafePath(f"{field} {value!r} {reason}", param=field)
    return value
