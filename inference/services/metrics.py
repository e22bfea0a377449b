"""Metrics: request durations, tokens, speeds and model lifecycle, exported as Prometheus text.

Each app owns one `Metrics` (its own registry, no global state). Generation figures are recorded
as they happen; scheduler figures (loads, evictions, queue depth) are read from the scheduler at
scrape time, so they can never drift from the scheduler's own counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_SPEED_BUCKETS = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000)


class SchedulerView(Protocol):
    """What the scrape reads from the scheduler."""

    def stats(self) -> Any: ...


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "appliance_request_duration_seconds",
            "HTTP request duration by route template",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.prompt_tokens = Counter(
            "appliance_prompt_tokens", "Prompt tokens processed", ["model"], registry=self.registry
        )
        self.completion_tokens = Counter(
            "appliance_completion_tokens", "Completion tokens generated", ["model"], registry=self.registry
        )
        self.ttft_seconds = Histogram(
            "appliance_time_to_first_token_seconds",
            "Time from the start of generation to the first token",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens_per_second = Histogram(
            "appliance_generation_tokens_per_second",
            "Decode speed of each generation",
            ["model"],
            buckets=_SPEED_BUCKETS,
            registry=self.registry,
        )
        self._scheduler_collector: Collector | None = None

    def watch_scheduler(self, stats: Callable[[], Any]) -> None:
        """Export the scheduler's counters, read at every scrape."""
        collector = _SchedulerCollector(stats)
        self.registry.register(collector)
        self._scheduler_collector = collector

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.request_seconds.labels(method, route, str(status)).observe(seconds)

    def observe_generation(
        self, model: str, *, prompt_tokens: int, completion_tokens: int, ttft: float | None, decode_seconds: float
    ) -> None:
        self.prompt_tokens.labels(model).inc(prompt_tokens)
        self.completion_tokens.labels(model).inc(completion_tokens)
        if ttft is not None:
            self.ttft_seconds.labels(model).observe(ttft)
        if completion_tokens > 1 and decode_seconds > 0:
            self.tokens_per_second.labels(model).observe((completion_tokens - 1) / decode_seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _SchedulerCollector(Collector):
    def __init__(self, stats: Callable[[], Any]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Any]:
        stats = self._stats()
        for name, help_text, values in (
            ("appliance_model_loads", "Model loads", stats.loads),
            ("appliance_model_load_failures", "Model loads that failed", stats.load_failures),
            ("appliance_model_unloads", "Model unloads (any reason)", stats.unloads),
            ("appliance_model_evictions", "Models evicted to make room", stats.evictions),
        ):
            family = CounterMetricFamily(name, help_text, labels=["model"])
            for model, count in sorted(values.items()):
                family.add_metric([model], count)
            yield family
        yield GaugeMetricFamily("appliance_models_loaded", "Models loaded now", value=stats.loaded)
        yield GaugeMetricFamily("appliance_queue_depth", "Requests waiting for a model", value=stats.waiting)

    def describe(self) -> Iterator[Any]:
        return iter(())
