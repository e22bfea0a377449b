"""Background tuning: keeps a store's live approximate index at its ``target_recall``.

The measuring itself is ``stores.index_tuning``; this drives it for one store, in a thread of its
own, against whichever ``VectorIndex`` the store holds now.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from stores.index import VectorIndex
from stores.index_tuning import tune

logger = logging.getLogger(__name__)


class BackgroundTuner:
    """Keeps one store's live index tuned: measures it in a thread of its own when it asks to be
    (``VectorIndex.needs_tuning``), holding the store's index lock per batch only; a live index
    swapped out or a closing store stops the measurement. A rebuild measures its fresh index with
    ``measure(live=False)`` before the swap instead."""

    def __init__(
        self,
        name: Callable[[], str],
        index_lock: AbstractContextManager[Any],
        current: Callable[[], VectorIndex[Any] | None],
        closing: Callable[[], bool],
    ) -> None:
        self._name, self._index_lock, self._current, self._closing = name, index_lock, current, closing
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failed: VectorIndex[Any] | None = None  # not retried for the same index

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def maybe_start(self, *, rebuilding: bool) -> None:
        """Start measuring the live index when it wants it, unless a rebuild (which measures what
        it builds) or a measurement is running already."""
        index = self._current()
        if self._closing() or rebuilding or index is None or index is self._failed or not index.needs_tuning():
            return
        with self._mutex:
            if self.running:
                return
            self._thread = threading.Thread(target=self._run, args=(index,), name="stores-tune", daemon=True)
            self._thread.start()

    def measure(self, index: VectorIndex[Any], *, live: bool) -> bool:
        """Tune ``index`` (the live one, or a fresh one no find sees yet and no lock guards);
        False when stopped."""
        parameter = index.tuned_parameter
        if parameter is None:
            return True
        began = time.monotonic()
        tuning = tune(
            index,  # type: ignore[arg-type]  # the approximate kinds are Tunable
            parameter,
            index.options.target_recall,
            lock=self._index_lock if live else None,
            stop=lambda: self._closing() or (live and self._current() is not index),
        )
        if tuning is None:
            return False
        with self._index_lock:
            index.tuning = tuning
        logger.info(
            "stores_index_tuned store=%r kind=%s %s=%s recall=%.3f target=%s count=%s seconds=%.1f",
            self._name(), index.kind, parameter, tuning.value, tuning.recall, tuning.target, tuning.at_count,
            time.monotonic() - began,
        )
        return True

    def _run(self, index: VectorIndex[Any]) -> None:
        try:
            self.measure(index, live=True)
        except Exception:  # no caller to raise to; the index keeps the value it has
            self._failed = index
            logger.exception("stores_tuning_failed store=%r", self._name())
