"""The gallery's errors: each is an `ApplianceError`, so a route raising one answers in the envelope.

Raised at request time they are 4xx/5xx responses; raised inside a job they end it as failed, with
their message in the job's `error` field.
"""

from __future__ import annotations

from appliance.errors import ApplianceError, BadRequest, NotFound


class GalleryError(ApplianceError):
    """Base of every gallery problem; the message says what failed and what to do."""


class InvalidSource(BadRequest):
    """A URI the downloader does not accept (scheme, syntax, http:// without a sha256, file:// outside)."""

    code = "invalid_source"


class UnsafeName(BadRequest):
    """A model name or file name that would land outside the models path."""

    code = "unsafe_path"


class DownloadRefused(BadRequest):
    """A host the address policy refuses (private, loopback, link-local… without the setting)."""

    code = "download_refused"


class DownloadFailed(GalleryError):
    """A transfer that did not complete: HTTP error, checksum mismatch, size cap, bad response."""

    status, type, code = 502, "server_error", "download_failed"


class DownloadTooLarge(DownloadFailed):
    """A file over `--max-download-size`; what was written of it is removed."""

    code = "download_too_large"


class DownloadCancelled(GalleryError):
    """The job was cancelled while it ran."""

    status, type, code = 409, "invalid_request_error", "cancelled"


class DownloadBusy(GalleryError):
    """Another process or job is writing the same file right now."""

    status, type, code = 409, "invalid_request_error", "download_in_progress"


class InvalidDefinition(BadRequest):
    """A gallery index, model definition or config that cannot be used."""

    code = "invalid_model_definition"


class GalleryNotFound(NotFound):
    code = "gallery_not_found"


class GalleryModelNotFound(NotFound):
    code = "model_not_found"


class GalleryExists(GalleryError):
    status, type, code = 409, "invalid_request_error", "gallery_exists"


class GalleryUnavailable(GalleryError):
    """A gallery index that could not be fetched and was never cached."""

    status, type, code = 502, "server_error", "gallery_unavailable"


class JobNotFound(NotFound):
    code = "job_not_found"


class JobFinished(GalleryError):
    status, type, code = 409, "invalid_request_error", "job_finished"


class TooManyJobs(GalleryError):
    status, type, code = 429, "server_error", "rate_limit_exceeded"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "5"})


class ModelNotInstalled(NotFound):
    code = "model_not_found"
