"""Hugging Face sources (`huggingface://`, `hf://`): where a file of a Hub repository is downloaded from.

The URL is the Hub's `{HF_ENDPOINT}/{owner}/{repo}/resolve/{revision}/{path}`, and `HF_TOKEN` (or the
older `HUGGING_FACE_HUB_TOKEN`) goes, as `Authorization: Bearer`, to the endpoint's origin only, never
to the CDN it redirects to. Both are read at each download, so a mirror or a token set for the
server process applies without a restart. The bytes then travel through the same `Fetcher` as any
other file: `huggingface_hub`'s own client follows the Hub's CDN redirects where the address policy
cannot see them (and hands Xet-backed files to a native transfer engine), which would leave exactly
the redirect check this package promises unenforced. For LFS files the Hub names the sha256 in
`X-Linked-Etag`; a download without a given sha256 is verified against it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from appliance.gallery.errors import InvalidSource
from appliance.gallery.uris import SourceURI, check_http_url

DEFAULT_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class HubLocation:
    url: str
    origin: tuple[str, str, int]  # (scheme, host, port) the token may be sent to
    token: str | None

    def headers_for(self, url: str) -> dict[str, str]:
        """The Authorization header for a hop to the endpoint's own origin; nothing for other hosts."""
        if self.token and origin_of(url) == self.origin:
            return {"Authorization": f"Bearer {self.token}"}
        return {}


def endpoint() -> str:
    value = (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip().rstrip("/")
    try:
        return check_http_url(value)
    except InvalidSource as exc:
        raise InvalidSource(f"HF_ENDPOINT: {exc.message}") from None


def hub_location(source: SourceURI) -> HubLocation:
    """Where `source` (a parsed huggingface:// or hf:// URI) is served, and the token for it."""
    base = endpoint()
    path = quote(source.repo_path, safe="/")
    url = f"{base}/{quote(source.repo_id, safe='/')}/resolve/{quote(source.revision, safe='')}/{path}"
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None
    return HubLocation(url=url, origin=origin_of(base), token=token)


def origin_of(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)
