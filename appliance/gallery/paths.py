"""Where installed things may be written: every model name and file name stays inside the models path.

Checked twice: by spelling (no absolute path, no `..`, no hidden component, no control character),
and by resolving the real path (so a symlinked folder cannot carry a file outside). The temporary
names a download uses (`.NAME.partial`, its `.etag` sidecar) are hidden, which the catalog skips.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from appliance.gallery.errors import UnsafeName

MAX_NAME_LENGTH = 200
GALLERY_FILE_PREFIX = "._gallery_"
_DRIVE = re.compile(r"^[A-Za-z]:")


def install_name(name: str, *, field: str = "name") -> str:
    """A model name as LocalAI stores it (`/` becomes `__`), checked to be one plain file name."""
    if not isinstance(name, str) or not name.strip():
        raise UnsafeName(f"{field} must not be empty", param=field)
    raw = name.strip()
    reason = None
    if raw.startswith(("/", "\\")) or _DRIVE.match(raw):
        reason = "is an absolute path"
    for part in re.split(r"[\\/]", raw):
        reason = reason or _component_problem(part)
    value = raw.replace("/", "__")
    if reason is None and "\\" in value:
        reason = "contains a backslash"
    if reason is None and len(value) > MAX_NAME_LENGTH:
        reason = f"is longer than {MAX_NAME_LENGTH} characters"
    if reason is not None:
        raise UnsafeName(f"{field} {name!r} {reason}; a model name must be a plain file name", param=field)
    return value


def check_filename(filename: str, *, field: str = "filename") -> str:
    """A file's path relative to the models path (sub-folders allowed), checked by spelling only."""
    if not isinstance(filename, str) or not filename.strip():
        raise UnsafeName(f"{field} must not be empty", param=field)
    value = filename.strip()
    if value.startswith(("/", "\\")) or _DRIVE.match(value):
        raise UnsafeName(f"{field} {filename!r} is an absolute path; it must be relative to the models path", param=field)
    parts = re.split(r"[\\/]", value)
    for part in parts:
        reason = _component_problem(part)
        if reason is not None:
            raise UnsafeName(f"{field} {filename!r} {reason}; it must stay inside the models path", param=field)
    return "/".join(parts)


def resolve_inside(models_path: Path, relative: str, *, field: str = "filename") -> Path:
    """The absolute target for `relative`, refused when its real path leaves the models path."""
    clean = check_filename(relative, field=field)
    root = Path(os.path.realpath(models_path))
    target = root.joinpath(*clean.split("/"))
    real = Path(os.path.realpath(target))
    if real != target and not _is_within(real, root):
        raise UnsafeName(f"{field} {relative!r} resolves outside the models path (through a link)", param=field)
    if not _is_within(real, root) or real == root:
        raise UnsafeName(f"{field} {relative!r} is not a file inside the models path", param=field)
    return target


def is_inside(models_path: Path, path: Path) -> bool:
    """Whether the real path of `path` lies inside the real models path (for file:// sources)."""
    root = Path(os.path.realpath(models_path))
    real = Path(os.path.realpath(path))
    return real != root and _is_within(real, root)


def partial_path(target: Path) -> Path:
    """The hidden name a download is written under until it is complete and verified."""
    return target.with_name(f".{target.name}.partial")


def etag_path(target: Path) -> Path:
    """The sidecar that keeps the server's validator (ETag or Last-Modified) of a partial file."""
    return target.with_name(f".{target.name}.partial.etag")


def config_path(models_path: Path, name: str) -> Path:
    return Path(models_path) / f"{install_name(name)}.yaml"


def gallery_file_path(models_path: Path, name: str) -> Path:
    """LocalAI's record of what a gallery install wrote: `._gallery_<name>.yaml`."""
    return Path(models_path) / f"{GALLERY_FILE_PREFIX}{install_name(name)}.yaml"


def _component_problem(part: str) -> str | None:
    if part == "":
        return "has an empty path component"
    if part in (".", ".."):
        return f"contains a {part!r} path component"
    if part.startswith("."):
        return "contains a hidden path component (starting with '.')"
    if any(ord(ch) < 32 or ch == "\x7f" for ch in part):
        return "contains a control character"
    return None


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True
