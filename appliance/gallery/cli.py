"""`appliance models install|available|remove`: the gallery on the models path, without a server.

As LocalAI's `local-ai models install`, the CLI writes into the models path directly, with the same
checks and files as the server's jobs; a running server sees the result at its next catalog scan.
Progress goes to stderr as one redrawn line per file; stdout carries only the results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TextIO

from appliance.config import Settings
from appliance.errors import ApplianceError
from appliance.gallery.errors import DownloadCancelled
from appliance.gallery.jobs import human_size
from appliance.gallery.service import ModelGallery
from inference.errors import InferenceError


class ProgressBar:
    """A text bar redrawn in place on a terminal, at most a few times a second elsewhere."""

    def __init__(self, stream: TextIO | None = None, width: int = 28) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self._last = 0.0
        self._file = ""
        self._done: tuple[str, int] | None = None

    def __call__(self, file: str, done: int, total: int | None, index: int, count: int) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if finished and self._done == (file, index):
            return  # a file reported complete twice (a verified copy already there, then the install)
        if not finished and (done == 0 and not self.tty or file == self._file and now - self._last < (0.1 if self.tty else 2.0)):
            return
        self._last, self._file = now, file
        if finished:
            self._done = (file, index)
        label = f"[{index + 1}/{count}] {file}" if count > 1 else file
        if total:
            share = min(done / total, 1.0)
            filled = int(share * self.width)
            line = f"{label} [{'#' * filled}{'.' * (self.width - filled)}] {share * 100:5.1f}% {human_size(done)}/{human_size(total)}"
        else:
            line = f"{label} {human_size(done)}"
        end = "\n" if finished or not self.tty else ""
        self.stream.write(("\r\x1b[K" if self.tty else "") + line + end)
        self.stream.flush()


def run_models_command(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.logs import configure_logging

    configure_logging("warning" if settings.log_level == "info" else settings.log_level)
    gallery = ModelGallery.from_settings(settings)
    try:
        if args.models_command == "available":
            return _available(gallery, as_json=args.json)
        if args.models_command == "remove":
            for name in args.names:
                removed = gallery.installer.remove(name)
                print(f"removed {name}: {', '.join(removed)}")
            return 0
        settings.models_path.mkdir(parents=True, exist_ok=True)
        if args.name and len(args.targets) > 1:
            print("appliance: --name takes one model at a time", file=sys.stderr)
            return 2
        for target in args.targets:
            plan = gallery.plan_target(target, name=args.name)
            print(f"installing {plan.element}", file=sys.stderr)
            name = gallery.run_blocking(plan, ProgressBar())
            print(f"installed {name}")
        return 0
    except KeyboardInterrupt:
        print("\nappliance: interrupted; run the same command again to resume the download", file=sys.stderr)
        return 130
    except DownloadCancelled:
        return 130
    except (ApplianceError, InferenceError) as exc:
        print(f"appliance: {exc.message}", file=sys.stderr)
        return 1


def _available(gallery: ModelGallery, *, as_json: bool) -> int:
    models = gallery.available()
    if as_json:
        print(json.dumps(models, indent=2))
        return 0
    if not gallery.index.galleries():
        print("no galleries configured; set --galleries (or GALLERIES) to LocalAI's JSON list", file=sys.stderr)
        return 0
    for model in models:
        mark = "*" if model["installed"] else "-"
        print(f" {mark} {model['id']}" + (" (installed)" if model["installed"] else ""))
    return 0
