"""The sources a model file or gallery document may come from, parsed into one `SourceURI`.

LocalAI's spellings: `https://`, `http://`, `huggingface://owner/repo/path[@rev]` and `hf://…` (a
Hugging Face Hub repository, see `hub`), `github:owner/repo/path[@branch]` and `github://…`
(a raw.githubusercontent.com URL), and `file://` (a file inside the models path only). Parsing is
pure: it never touches the network or the disk.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urljoin, urlsplit

from appliance.gallery.errors import InvalidSource

Kind = Literal["http", "hf", "file"]

HF_PREFIXES = ("huggingface://", "hf://")
GITHUB_PREFIXES = ("github://", "github:")
SCHEMES = "https://, http:// (with a sha256), huggingface://, hf://, github: or file://"
MAX_URI_LENGTH = 4096


@dataclass(frozen=True)
class SourceURI:
    """One parsed source. `url` is what is fetched: an http(s) URL, or for `file` an absolute path."""

    original: str
    kind: Kind
    url: str
    # Hugging Face: the repository ("owner/repo"), the file in it and the revision.
    repo_id: str = ""
    repo_path: str = ""
    revision: str = "main"

    @property
    def is_plain_http(self) -> bool:
        return self.kind == "http" and self.url.lower().startswith("http://")

    @property
    def filename(self) -> str:
        """The last path component, the name a download gets when nothing else names it."""
        if self.kind == "hf":
            return posixpath.basename(self.repo_path)
        if self.kind == "file":
            return posixpath.basename(self.url)
        return posixpath.basename(unquote(urlsplit(self.url).path))


def looks_like_uri(text: str) -> bool:
    """Whether `text` is written as one of the accepted sources (not a gallery model name)."""
    lowered = text.strip().lower()
    return lowered.startswith(("https://", "http://", "file://", *HF_PREFIXES, *GITHUB_PREFIXES))


def parse_uri(text: str) -> SourceURI:
    """Parse a source, or raise InvalidSource naming what is accepted."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidSource(f"empty source; use {SCHEMES}")
    value = text.strip()
    if len(value) > MAX_URI_LENGTH or any(ord(ch) < 32 for ch in value):
        raise InvalidSource(f"source {value[:80]!r} is too long or holds control characters")
    lowered = value.lower()
    for prefix in HF_PREFIXES:
        if lowered.startswith(prefix):
            return _huggingface(value, value[len(prefix) :])
    for prefix in GITHUB_PREFIXES:
        if lowered.startswith(prefix):
            return _github(value, value[len(prefix) :])
    if lowered.startswith("file://"):
        path = unquote(value[len("file://") :])
        if not path.startswith("/"):
            raise InvalidSource(f"file source {value!r} must be an absolute path: file:///models/…")
        return SourceURI(original=value, kind="file", url=path)
    if lowered.startswith(("https://", "http://")):
        return SourceURI(original=value, kind="http", url=check_http_url(value))
    raise InvalidSource(f"unsupported source {value[:200]!r}; use {SCHEMES}")


def check_http_url(url: str) -> str:
    """An http(s) URL with a host and no credentials, or InvalidSource."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidSource(f"invalid URL {url[:200]!r}: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidSource(f"unsupported URL scheme in {url[:200]!r}; use https:// or http://")
    if not parts.hostname:
        raise InvalidSource(f"URL {url[:200]!r} names no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidSource(f"URL {url[:200]!r} carries credentials; they are not sent anywhere")
    if port == 0:
        raise InvalidSource(f"URL {url[:200]!r} names port 0")
    return url


def resolve_relative(base_url: str, reference: str) -> str:
    """A gallery entry's scheme-less `url:` resolved against the folder of the index it came from.

    `github:` bases keep their `@branch` suffix. A reference that climbs out with `..` or is absolute
    is refused: published data must not point at anything but its own gallery's files.
    """
    clean = reference.strip()
    parts = [p for p in clean.replace("\\", "/").split("/") if p not in ("", ".")]
    if clean.startswith(("/", "\\")) or ".." in parts or not parts:
        raise InvalidSource(f"gallery entry url {reference!r} is not a path inside the gallery")
    relative = "/".join(parts)
    lowered = base_url.lower()
    if lowered.startswith(GITHUB_PREFIXES + HF_PREFIXES):
        cut = base_url.rfind("/")
        tail = base_url[cut:]
        suffix = tail[tail.index("@") :] if "@" in tail else ""
        return base_url[: cut + 1] + relative + suffix
    if lowered.startswith("file://"):
        return "file://" + posixpath.join(posixpath.dirname(base_url[len("file://") :]), relative)
    return urljoin(base_url, relative)


def _huggingface(original: str, rest: str) -> SourceURI:
    """`owner/repo/path/in/repo[@revision]`, also `owner/repo@revision/path` (LocalAI writes both)."""
    revision = "main"
    pieces = rest.split("/")
    if len(pieces) >= 2 and "@" in pieces[1]:
        pieces[1], revision = pieces[1].split("@", 1)
    elif "@" in pieces[-1]:
        pieces[-1], revision = pieces[-1].rsplit("@", 1)
    if len(pieces) < 3 or not all(pieces) or not revision:
        raise InvalidSource(
            f"Hugging Face source {original!r} must be huggingface://owner/repo/path/to/file[@revision]"
        )
    if any(p in (".", "..") for p in pieces):
        raise InvalidSource(f"Hugging Face source {original!r} contains a '.' or '..' path component")
    return SourceURI(
        original=original,
        kind="hf",
        url=original,
        repo_id="/".join(pieces[:2]),
        repo_path="/".join(pieces[2:]),
        revision=revision,
    )


def _github(original: str, rest: str) -> SourceURI:
    """`owner/repo/path[@branch]` -> https://raw.githubusercontent.com/owner/repo/branch/path."""
    branch = "main"
    if "@" in rest:
        rest, branch = rest.rsplit("@", 1)
    pieces = rest.strip("/").split("/")
    if len(pieces) < 3 or not all(pieces) or not branch or "/" in branch and ".." in branch.split("/"):
        raise InvalidSource(f"GitHub source {original!r} must be github:owner/repo/path/to/file[@branch]")
    if any(p in (".", "..") for p in pieces):
        raise InvalidSource(f"GitHub source {original!r} contains a '.' or '..' path component")
    owner, repo, path = pieces[0], pieces[1], "/".join(pieces[2:])
    url = f"https://raw.githubusercontent.com/{owner}/{repo}/{branch}/{path}"
    return SourceURI(original=original, kind="http", url=check_http_url(url))
