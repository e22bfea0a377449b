"""Safe transfers: small documents (gallery indexes, model definitions) and model files.

Every http(s) hop is vetted by the `AddressPolicy` and connected to the vetted address; redirects
are followed here, a bounded number of times, each one vetted again. A model file is written to
`.NAME.partial` beside its target and renamed into place only once complete, within the size cap
and, when a sha256 is given, verified; an interrupted transfer resumes with `Range` and `If-Range`.
Everything blocks: callers run it in a worker thread, and cancellation is checked between chunks.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from appliance.gallery.errors import (
    DownloadCancelled,
    DownloadFailed,
    DownloadRefused,
    DownloadTooLarge,
    InvalidSource,
)
from appliance.gallery.hub import HubLocation, hub_location
from appliance.gallery.partial import Discard, PartialFile
from appliance.gallery.paths import is_inside
from appliance.gallery.policy import AddressPolicy, IPAddress, is_public
from appliance.gallery.uris import SourceURI, check_http_url

logger = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]  # (bytes written so far, total bytes or None)
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class CancelToken:
    """Set from any thread; checked by transfers between chunks. A transfer waiting on a silent
    server registers a callback that breaks the wait, so a cancel never waits for the read timeout."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            with contextlib.suppress(Exception):
                callback()

    @contextlib.contextmanager
    def interrupts(self, callback: Callable[[], None]) -> Iterator[None]:
        """Run `callback` if the token is cancelled while this block runs (or was already)."""
        with self._lock:
            self._callbacks.append(callback)
            already = self._event.is_set()
        try:
            if already:
                callback()
            yield
        finally:
            with self._lock:
                self._callbacks.remove(callback)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise DownloadCancelled("cancelled")


@dataclass(frozen=True)
class FetchLimits:
    """Bounds of every transfer. Timeouts are per operation (a stalled read fails after `read_timeout`)."""

    max_download_size: int = 64 * 1024**3
    max_document_size: int = 16 * 1024 * 1024
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    max_redirects: int = 10
    chunk_size: int = 256 * 1024


def normalize_sha256(value: str | None, *, field: str = "sha256") -> str | None:
    """A lowercase hex digest, None when absent; anything else is a 400."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip().lower().removeprefix("sha256:")
    if not _SHA256.match(text):
        raise InvalidSource(f"{field} {value!r} is not a sha256 hex digest (64 hex characters)", param=field)
    return text


def require_integrity(source: SourceURI, sha256: str | None, *, field: str = "uri") -> None:
    """A model file over plain http:// must carry a sha256: nothing else protects it in transit."""
    if source.is_plain_http and sha256 is None:
        raise InvalidSource(
            f"{field} {source.original!r} is plain http://; give its sha256 or use https://", param=field
        )


def file_sha256(path: Path, cancel: CancelToken | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            if cancel is not None:
                cancel.check()
            digest.update(block)
    return digest.hexdigest()


class Fetcher:
    """Reads documents and downloads files under one models path, within one policy and limits."""

    def __init__(
        self,
        models_path: Path,
        policy: AddressPolicy,
        limits: FetchLimits = FetchLimits(),
    ) -> None:
        self.models_path = Path(models_path)
        self.policy = policy
        self.limits = limits

    # ------------------------------------------------------------------ documents

    def fetch_document(self, source: SourceURI, cancel: CancelToken | None = None) -> bytes:
        """The bytes of a small document (an index or a definition), at most `max_document_size`."""
        cancel = cancel or CancelToken()
        limit = self.limits.max_document_size
        if source.kind == "file":
            path = self._local_file(source)
            if path.stat().st_size > limit:
                raise DownloadFailed(f"{source.original}: larger than {limit} bytes, too large for a gallery document")
            return path.read_bytes()
        url, auth = self._where(source)
        with self._open(url, {}, integrity=False, auth=auth) as response:
            if response.status_code != 200:
                raise DownloadFailed(f"{source.original}: HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes(self.limits.chunk_size):
                cancel.check()
                body += chunk
                if len(body) > limit:
                    raise DownloadFailed(f"{source.original}: larger than {limit} bytes, too large for a gallery document")
            return bytes(body)

    # ------------------------------------------------------------------ files

    def download(
        self,
        source: SourceURI,
        target: Path,
        *,
        sha256: str | None = None,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> bool:
        """Put the file at `target`; False when a verified (or unverifiable) copy was already there."""
        cancel = cancel or CancelToken()
        progress = progress or (lambda done, total: None)
        require_integrity(source, sha256)
        if target.is_file():
            if sha256 is None or file_sha256(target, cancel) == sha256:
                size = target.stat().st_size
                progress(size, size)
                return False
            logger.info("event=download_replacing file=%s reason=sha256_mismatch", target)
        target.parent.mkdir(parents=True, exist_ok=True)
        with PartialFile(target) as part:
            try:
                if source.kind == "file":
                    self._copy_local(source, part, sha256, progress, cancel)
                else:
                    self._download_http(source, part, sha256, progress, cancel)
            except (DownloadCancelled, Discard) as exc:
                part.discard()
                if isinstance(exc, Discard):
                    raise exc.error from None
                raise
            part.commit()
        return True

    def _copy_local(
        self, source: SourceURI, part: PartialFile, sha256: str | None, progress: Progress, cancel: CancelToken
    ) -> None:
        path = self._local_file(source)
        total = path.stat().st_size
        self._check_size(total, source)
        part.restart()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(self.limits.chunk_size), b""):
                cancel.check()
                part.write(block)
                progress(part.size, total)
        part.verify(sha256, source)

    def _where(self, source: SourceURI) -> tuple[str, HubLocation | None]:
        """The URL to GET for an http(s) or Hugging Face source, and the Hub's token rules if any."""
        if source.kind == "hf":
            location = hub_location(source)
            return location.url, location
        return source.url, None

    def _download_http(
        self, source: SourceURI, part: PartialFile, sha256: str | None, progress: Progress, cancel: CancelToken
    ) -> None:
        url, auth = self._where(source)
        validator = part.validator()
        if part.size and validator is None and sha256 is None:
            part.restart()  # nothing could tell us these bytes belong to the file the server has now
        for attempt in range(2):
            headers = {"Accept-Encoding": "identity"}
            if part.size:
                headers["Range"] = f"bytes={part.size}-"
                if validator:
                    headers["If-Range"] = validator
            hops: list[httpx.Headers] = []
            with self._open(url, headers, integrity=sha256 is not None, auth=auth, hops=hops) as response:
                status = response.status_code
                if status == 416 and part.size and attempt == 0:
                    part.restart()
                    continue
                total = self._expect(response, part, source)
                if total is None:
                    continue  # a range that does not continue the partial: it was emptied, ask again
                self._check_size(total, source)
                part.remember(_validator_of(response))
                try:
                    with cancel.interrupts(_breaker(response)):
                        for chunk in _body(response, self.limits.chunk_size):
                            cancel.check()
                            part.write(chunk)
                            if part.size > self.limits.max_download_size:
                                raise Discard(self._too_large(source))
                            progress(part.size, total if total >= 0 else None)
                except httpx.HTTPError as exc:
                    cancel.check()  # the cancel itself broke the connection
                    raise DownloadFailed(
                        f"{source.original}: transfer interrupted after {part.size} bytes ({_describe(exc)}); "
                        "the bytes so far are kept and the next try resumes from them"
                    ) from None
                cancel.check()
                if total >= 0 and part.size != total:
                    raise DownloadFailed(
                        f"{source.original}: the server sent {part.size} of {total} bytes; the next try resumes"
                    )
                part.verify(sha256 or _linked_sha256(hops), source)
                return
        raise DownloadFailed(f"{source.original}: the server refused to resume or restart the download")

    def _expect(self, response: httpx.Response, part: PartialFile, source: SourceURI) -> int | None:
        """The file's total size (-1 when unknown), after lining the partial up with the response.

        None when a 206 does not continue exactly where the partial ends (the caller starts over)."""
        status = response.status_code
        if status == 206 and part.size:
            match = _CONTENT_RANGE.match(response.headers.get("content-range", "").strip())
            if not match or int(match.group(1)) != part.size:
                part.restart()
                return None
            logger.info("event=download_resumed file=%s offset=%d", part.target, part.size)
            return int(match.group(3)) if match.group(3) != "*" else -1
        if status == 200:
            if part.size:
                logger.info("event=download_restarted file=%s reason=server_sent_whole_file", part.target)
                part.restart()
            length = response.headers.get("content-length")
            encoded = response.headers.get("content-encoding", "identity").lower() not in ("", "identity")
            return int(length) if length and length.isdigit() and not encoded else -1
        raise DownloadFailed(f"{source.original}: HTTP {status}")

    def _check_size(self, total: int | None, source: SourceURI) -> None:
        if total is not None and total > self.limits.max_download_size:
            raise Discard(self._too_large(source, total))

    def _too_large(self, source: SourceURI, total: int | None = None) -> DownloadFailed:
        size = f" ({total} bytes)" if total is not None else ""
        return DownloadTooLarge(
            f"{source.original}{size} is larger than --max-download-size ({self.limits.max_download_size} bytes)"
        )

    def _local_file(self, source: SourceURI) -> Path:
        path = Path(source.url)
        if not is_inside(self.models_path, path):
            raise InvalidSource(f"file source {source.original!r} is outside the models path; only files inside it may be read")
        if not path.is_file():
            raise DownloadFailed(f"file source {source.original!r} does not exist or is not a file")
        return path

    # ------------------------------------------------------------------ HTTP

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.limits.connect_timeout,
            read=self.limits.read_timeout,
            write=self.limits.read_timeout,
            pool=self.limits.connect_timeout,
        )

    @contextlib.contextmanager
    def _open(
        self,
        url: str,
        headers: dict[str, str],
        *,
        integrity: bool,
        auth: HubLocation | None = None,
        hops: list[httpx.Headers] | None = None,
    ) -> Iterator[httpx.Response]:
        """A streamed GET of `url` after following redirects, each hop vetted; closed on exit.

        `auth` adds the Hub token on hops to the Hub's own origin; `hops` collects each answer's headers."""
        with contextlib.ExitStack() as clients:
            direct = clients.enter_context(
                httpx.Client(timeout=self._timeout(), follow_redirects=False, trust_env=False)
            )
            proxied: dict[str, httpx.Client] = {}
            for _hop in range(self.limits.max_redirects + 1):
                parts = urlsplit(check_http_url(url))
                proxy = _proxy_for(parts.scheme.lower(), parts.hostname or "")
                if proxy is not None and proxy not in proxied:
                    proxied[proxy] = clients.enter_context(
                        httpx.Client(proxy=proxy, timeout=self._timeout(), follow_redirects=False, trust_env=False)
                    )
                client = direct if proxy is None else proxied[proxy]
                hop_headers = {**headers, **(auth.headers_for(url) if auth is not None else {})}
                response = self._send(client, url, hop_headers, integrity=integrity, via_proxy=proxy is not None)
                if hops is not None:
                    hops.append(response.headers)
                if response.status_code in REDIRECTS and response.headers.get("location"):
                    response.close()
                    url = urljoin(url, response.headers["location"])
                    logger.debug("event=download_redirect location=%s", url)
                    continue
                try:
                    yield response
                finally:
                    response.close()
                return
            raise DownloadFailed(f"more than {self.limits.max_redirects} redirects, the last to {url}")

    def _send(
        self, client: httpx.Client, url: str, headers: dict[str, str], *, integrity: bool, via_proxy: bool
    ) -> httpx.Response:
        """One GET, to a vetted address of the URL's host (through the environment's proxy if it names one)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        addresses = self.policy.vet(host, port)
        if scheme == "http" and not integrity and all(is_public(a) for a in addresses):
            raise DownloadRefused(
                f"{url}: plain http:// to a public host is refused without a sha256 to check the file by; use https://"
            )
        last: Exception | None = None
        for address in addresses[:1] if via_proxy else addresses:
            request_headers = dict(headers)
            extensions: dict[str, str] = {}
            target = url
            if not via_proxy:
                # Connect to the address just vetted, so a second DNS answer cannot differ from it.
                target = urlunsplit((scheme, _netloc(address, parts.port), parts.path or "/", parts.query, ""))
                request_headers["Host"] = parts.netloc.rpartition("@")[2]
                if scheme == "https":
                    extensions["sni_hostname"] = host
            try:
                request = client.build_request("GET", target, headers=request_headers, extensions=extensions)
                return client.send(request, stream=True)
            except httpx.ConnectError as exc:
                last = exc
            except httpx.HTTPError as exc:
                raise DownloadFailed(f"{url}: {_describe(exc)}") from None
        raise DownloadFailed(f"{url}: cannot connect ({_describe(last) if last else 'no address'})")


def _body(response: httpx.Response, chunk_size: int) -> Iterator[bytes]:
    """The body as it arrives (so an interrupted transfer keeps every byte it got), decoded only
    when the server compressed it anyway."""
    if response.headers.get("content-encoding", "identity").lower() in ("", "identity"):
        for chunk in response.iter_raw():
            for start in range(0, len(chunk), chunk_size):
                yield chunk[start : start + chunk_size]
    else:
        yield from response.iter_bytes(chunk_size)


def _breaker(response: httpx.Response) -> Callable[[], None]:
    """Shuts the response's socket down: a read blocked on it returns at once (closing alone may not)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None

    def shut() -> None:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        else:
            response.close()

    return shut


def _linked_sha256(hops: list[httpx.Headers]) -> str | None:
    """The sha256 the Hugging Face Hub names for an LFS file (`X-Linked-Etag` on its redirect)."""
    for headers in hops:
        value = headers.get("x-linked-etag", "").strip().strip('"').lower()
        if _SHA256.match(value):
            return value
    return None


def _validator_of(response: httpx.Response) -> str | None:
    """A strong ETag (If-Range takes no weak one), else Last-Modified."""
    etag = response.headers.get("etag", "").strip()
    if etag and not etag.startswith("W/"):
        return etag
    return response.headers.get("last-modified", "").strip() or None


def _netloc(address: IPAddress, port: int | None) -> str:
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"{host}:{port}" if port is not None else host


def _proxy_for(scheme: str, host: str) -> str | None:
    """The proxy the environment names for this scheme and host (HTTP(S)_PROXY, NO_PROXY), or None."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme)
    if not proxy or urllib.request.proxy_bypass_environment(host, proxies):
        return None
    return proxy


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
