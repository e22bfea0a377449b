"""`ModelGallery`: the one object the routes, the start-up preloads and the CLI install models through.

Plans are made in the caller's thread (they may read a gallery index), so bad input is refused
before a job exists. Jobs run one at a time, as LocalAI's gallery service runs them, each in its own
daemon thread (a transfer stuck in a read never holds up the event loop or the process exit);
`on_change` runs after every install and removal so the catalog sees the models path at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from appliance.config import Settings
from appliance.errors import ApplianceError
from appliance.gallery.errors import DownloadCancelled, DownloadFailed, InvalidSource, ModelNotInstalled
from appliance.gallery.fetch import CancelToken, Fetcher, FetchLimits
from appliance.gallery.index import FileEntry, Gallery, GalleryIndex
from appliance.gallery.install import (
    FileProgress,
    Installer,
    InstallPlan,
    plan_for_config,
    plan_for_definition,
    plan_for_entry,
    plan_for_file,
)
from appliance.gallery.jobs import Job, JobRegistry, human_size
from appliance.gallery.paths import install_name
from appliance.gallery.policy import AddressPolicy
from appliance.gallery.uris import looks_like_uri
from inference.errors import InferenceError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ModelGallery:
    """Galleries, installs, removals and their jobs for one models path."""

    def __init__(
        self,
        *,
        models_path: Path,
        data_path: Path,
        galleries: Sequence[Gallery] = (),
        allow_private: bool = False,
        max_download_size: int = 64 * 1024**3,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.models_path = Path(models_path)
        policy = AddressPolicy(allow_private=allow_private)
        self.fetcher = Fetcher(self.models_path, policy, FetchLimits(max_download_size=max_download_size))
        self.index = GalleryIndex(galleries, Path(data_path) / "galleries", self.fetcher)
        self.installer = Installer(self.models_path, self.fetcher)
        self.jobs = JobRegistry()
        self.on_change = on_change
        self._slot: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings, *, on_change: Callable[[], None] | None = None) -> ModelGallery:
        return cls(
            models_path=settings.models_path,
            data_path=settings.data_path,
            galleries=[Gallery(g["name"], g["url"]) for g in settings.galleries],
            allow_private=settings.allow_private_downloads,
            max_download_size=settings.max_download_size,
            on_change=on_change,
        )

    # ------------------------------------------------------------------ plans (blocking)

    def plan(
        self,
        *,
        id: str | None = None,  # noqa: A002 - LocalAI's field name
        url: str | None = None,
        config_url: str | None = None,
        name: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        files: Sequence[FileEntry] = (),
    ) -> InstallPlan:
        """LocalAI's /models/apply: `id` (a gallery model) wins, then `config_url`, then `url`."""
        if id:
            entry = self.index.find(id)
            return plan_for_entry(self.models_path, entry, name=name, overrides=overrides, files=files)
        if config_url:
            return plan_for_config(self.models_path, config_url, name=name, overrides=overrides, files=files)
        if url:
            return plan_for_definition(self.models_path, url, name=name, overrides=overrides, files=files)
        raise InvalidSource("give 'id' (a gallery model, 'gallery@name'), 'url' (a model definition) or 'config_url'", param="id")

    def plan_target(self, target: str, *, name: str | None = None) -> InstallPlan:
        """What `appliance models install TARGET` means: a URL is a file (or a model config), anything
        else a gallery model id."""
        if looks_like_uri(target):
            return plan_for_file(self.models_path, target, name=name)
        return plan_for_entry(self.models_path, self.index.find(target), name=name)

    def available(self) -> list[dict[str, Any]]:
        """LocalAI's /models/available: every gallery entry, with `installed` read from the models path."""
        return [m.metadata(installed=self.installer.installed(m.name)) for m in self.index.models()]

    def preload_plan(self, ident: str, known: Callable[[str], bool]) -> InstallPlan | None:
        """For `--preload-models`: a plan when `ident` is a gallery id or URL to install first, None when
        it is a plain model name (or already installed)."""
        if looks_like_uri(ident):
            plan = plan_for_file(self.models_path, ident)
            target = plan.name or (plan.files[0].filename if plan.files else "")
            return None if target and known(target) else plan
        if "@" not in ident and (known(ident) or not self.index.galleries()):
            return None
        entry = self.index.find(ident)
        if self.installer.installed(entry.name):
            return None
        return plan_for_entry(self.models_path, entry)

    async def prepare_preload(self, ident: str, known: Callable[[str], bool]) -> str:
        """The model name to load for a `--preload-models` entry, installing it first when it is a
        gallery id or URL not installed yet; raises with the job's reason when that install fails."""
        plan = await asyncio.to_thread(self.preload_plan, ident, known)
        if plan is None:
            return self.installed_name(ident) if "@" in ident or looks_like_uri(ident) else ident
        logger.info("event=preload_install element=%s", plan.element)
        job = await self.install(plan)
        if job.state != "completed":
            raise DownloadFailed(f"installing {ident!r} failed: {job.error or job.state}")
        return job.model

    def installed_name(self, ident: str) -> str:
        """The model name an id installs as (`gallery@name` -> `name`)."""
        if looks_like_uri(ident):
            plan = plan_for_file(self.models_path, ident)
            return plan.name or (plan.files[0].filename if plan.files else ident)
        return install_name(ident.split("@", 1)[1] if "@" in ident else ident)

    # ------------------------------------------------------------------ jobs (event loop)

    async def submit(self, plan: InstallPlan) -> Job:
        """Queue an install; returns its job at once."""
        job = self.jobs.create(plan.element)
        if plan.name:
            self.jobs.update(job, model=plan.name)
        task = asyncio.create_task(self._run(job, plan), name=f"model-install-{job.uuid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def install(self, plan: InstallPlan) -> Job:
        """Install and wait for the end (preloads); the finished job says how it went."""
        job = await self.submit(plan)
        while not job.processed:
            await asyncio.sleep(0.05)
        return job

    async def delete(self, name: str) -> Job:
        """Remove an installed model now, as a finished deletion job (LocalAI answers with one)."""
        name = install_name(name, field="name")
        if not self.installer.installed(name) and not (self.models_path / f"{name}.yml").is_file():
            raise ModelNotInstalled(f"model {name!r} is not installed in the models path (no {name}.yaml)", param="name")
        job = self.jobs.create(name, deletion=True)
        self.jobs.update(job, state="running", model=name, message=f"deleting model: {name}")
        async with self._one_at_a_time():
            try:
                await run_in_daemon_thread(self._remove, name)
            except (ApplianceError, InferenceError, OSError) as exc:
                message = getattr(exc, "message", None) or str(exc)
                self.jobs.update(job, state="failed", error=message, message=f"error: {message}")
                raise
        self.jobs.update(job, state="completed", progress=100.0, message="completed")
        return job

    async def close(self) -> None:
        """Cancel running jobs and wait (bounded) for them to notice."""
        self.jobs.cancel_all()
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for task in tasks:
            task.cancel()

    async def _run(self, job: Job, plan: InstallPlan) -> None:
        async with self._one_at_a_time():
            if job.processed or job.token.cancelled:
                self.jobs.update(job, state="cancelled", message="cancelled")
                return
            self.jobs.update(job, state="running", message=f"processing model: {plan.element}")
            try:
                name = await run_in_daemon_thread(self._install, plan, self._reporter(job), job.token)
            except DownloadCancelled:
                self.jobs.update(job, state="cancelled", message="cancelled")
                logger.info("event=model_install_cancelled job=%s element=%s", job.uuid, plan.element)
            except (ApplianceError, InferenceError) as exc:
                self.jobs.update(job, state="failed", error=exc.message, message=f"error: {exc.message}")
                logger.warning("event=model_install_failed job=%s element=%s reason=%s", job.uuid, plan.element, exc.message)
            except Exception as exc:  # noqa: BLE001 - a job reports every failure instead of dying silently
                logger.exception("event=model_install_crashed job=%s element=%s", job.uuid, plan.element)
                text = f"{type(exc).__name__}: {exc}"
                self.jobs.update(job, state="failed", error=text, message=f"error: {text}")
            else:
                self.jobs.update(job, state="completed", model=name, progress=100.0, message="completed")

    def _install(self, plan: InstallPlan, progress: FileProgress, cancel: CancelToken) -> str:
        name = self.installer.install(plan, progress, cancel)
        self._changed()
        return name

    def _remove(self, name: str) -> list[str]:
        removed = self.installer.remove(name)
        self._changed()
        return removed

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # noqa: BLE001 - the install itself succeeded
                logger.exception("event=catalog_refresh_failed")

    def _reporter(self, job: Job) -> FileProgress:
        def report(file: str, done: int, total: int | None, index: int, count: int) -> None:
            share = (done / total * 100.0) if total else 0.0
            overall = share / count + index * 100.0 / count if count > 1 else share
            self.jobs.update(
                job,
                file_name=file,
                file_size_bytes=total,
                downloaded_bytes=done,
                progress=min(overall, 100.0),
                message=f"processing file: {file}. Total: {human_size(total)}. Current: {human_size(done)}",
            )

        return report

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self):  # type: ignore[no-untyped-def]
        if self._slot is None:
            self._slot = asyncio.Semaphore(1)
        async with self._slot:
            yield

    # ------------------------------------------------------------------ the CLI (blocking)

    def run_blocking(self, plan: InstallPlan, progress: FileProgress, cancel: CancelToken | None = None) -> str:
        """Install in this thread (the CLI has no event loop): same checks, same files, no job."""
        return self.installer.install(plan, progress, cancel or CancelToken())


async def run_in_daemon_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a daemon thread, awaited: a transfer stuck in a socket read cannot hold up the
    process at exit the way a thread of the default executor would."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            outcome: tuple[Any, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name="model-download", daemon=True).start()
    return await future
