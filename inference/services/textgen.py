"""Text generation as a service: chat, completions, edits and tokenize over scheduler leases.

It builds the prompt (the model's own chat template, or LocalAI's Go templates when the config
gives them), merges stop words, constrains output for tools and JSON modes, streams the backend's
events from the model's worker thread, post-processes finished text as LocalAI does (echo,
cutstrings, extract_regex, trimspace, trimsuffix) and measures usage and timings. Protocol-free.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from inference.capabilities import Capability
from inference.catalog.catalog import Catalog
from inference.catalog.config import ModelConfig
from inference.errors import InvalidModelConfig
from inference.generation import Finished, ResponseFormat, SamplingParams, TextDelta
from inference.prompts.templates import (
    TemplateCache,
    build_chat_prompt,
    build_completion_prompt,
    build_edit_prompt,
    uses_go_templates,
)
from inference.prompts.tools import ToolCall, ToolPlan, parse_tool_output, plan_tools
from inference.services.metrics import Metrics


@dataclass(frozen=True)
class Timings:
    prompt_ms: float  # start of generation to the first token: prompt processing plus one decode
    predicted_ms: float  # first token to the last
    predicted_per_second: float | None


@dataclass(frozen=True)
class Delta:
    text: str
    index: int = 0


@dataclass(frozen=True)
class ToolCalls:
    calls: tuple[ToolCall, ...]
    index: int = 0


@dataclass(frozen=True)
class Done:
    finish_reason: str  # "stop", "length" or "tool_calls"
    prompt_tokens: int
    completion_tokens: int
    timings: Timings
    index: int = 0
    stop_sequence: str | None = None  # the stop string that ended the generation, when one did


TextEvent = Delta | ToolCalls | Done


@dataclass(frozen=True)
class TextResult:
    """A finished, post-processed generation (non-streaming)."""

    text: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    timings: Timings
    index: int = 0
    stop_sequence: str | None = None


class LeaseLike(Protocol):
    entry: Any
    backend: Any

    async def run(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any: ...

    def stream(self, produce: Callable[..., Any]) -> AsyncIterator[Any]: ...


class TextService:
    def __init__(
        self,
        scheduler: Any,
        catalog: Catalog,
        models_path: Path,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.scheduler = scheduler
        self.catalog = catalog
        self.models_path = models_path
        self.metrics = metrics
        self.templates = TemplateCache()
        self._clock = clock

    def model_config(self, model: str) -> ModelConfig:
        """The config a request for `model` runs with (its sampling defaults, stop words, templates)."""
        return self.catalog.get(model).config

    async def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: SamplingParams,
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
    ) -> AsyncIterator[TextEvent]:
        """Stream a chat reply. With tools in play the reply is buffered and ends as content or calls."""
        plan = plan_tools(tools, tool_choice)
        async with self.scheduler.lease(model, Capability.CHAT) as lease:
            config: ModelConfig = lease.entry.config
            if uses_go_templates(config, models_path=self.models_path):
                # LocalAI hands config.system_prompt to the templates as .SystemPrompt, never as a message.
                constrained = plan is not None or params.response_format is not None
                prompt = build_chat_prompt(
                    config,
                    messages,
                    models_path=self.models_path,
                    cache=self.templates,
                    functions=[tool["function"] for tool in plan.tools] if plan else None,
                    use_function_template=bool(plan and config.template.function),
                    grammar=params.grammar or ("json" if constrained else None),
                )
                template_stop: tuple[str, ...] = ()
            else:
                rendered = await lease.run(
                    lease.backend.apply_chat_template,
                    _with_system_prompt(messages, config),
                    tools=list(plan.tools) if plan else None,
                )
                prompt, template_stop = rendered.text, rendered.stop
            params = _finalize(params, config, template_stop, plan)
            if plan is None:
                async for event in self._generate(lease, prompt, params):
                    yield event
                return
            text: list[str] = []
            async for event in self._generate(lease, prompt, params):
                if isinstance(event, Delta):
                    text.append(event.text)
                    continue
                content, calls = parse_tool_output("".join(text), plan)
                if calls:
                    yield ToolCalls(tuple(calls))
                    yield replace(event, finish_reason="tool_calls")
                else:
                    yield Delta(content or "")
                    yield event

    async def complete(
        self, model: str, prompts: Sequence[str], params: SamplingParams, *, echo: bool = False
    ) -> AsyncIterator[TextEvent]:
        """Stream completions of each prompt in turn (choice `index` = the prompt's position)."""
        async with self.scheduler.lease(model, Capability.COMPLETE) as lease:
            config: ModelConfig = lease.entry.config
            params = _finalize(params, config, (), None)
            for index, text in enumerate(prompts):
                prompt = build_completion_prompt(config, text, models_path=self.models_path, cache=self.templates)
                if echo:
                    yield Delta(text, index)
                async for event in self._generate(lease, prompt, params, index=index):
                    yield event

    async def edit(self, model: str, instruction: str, text: str, params: SamplingParams) -> AsyncIterator[TextEvent]:
        async with self.scheduler.lease(model, Capability.COMPLETE) as lease:
            config: ModelConfig = lease.entry.config
            prompt = build_edit_prompt(config, instruction, text, models_path=self.models_path, cache=self.templates)
            async for event in self._generate(lease, prompt, _finalize(params, config, (), None)):
                yield event

    async def collect(self, events: AsyncIterator[TextEvent], config: ModelConfig) -> list[TextResult]:
        """Gather a stream into finished results, post-processed with the config's rules."""
        texts: dict[int, list[str]] = {}
        calls: dict[int, tuple[ToolCall, ...]] = {}
        results: list[TextResult] = []
        async for event in events:
            if isinstance(event, Delta):
                texts.setdefault(event.index, []).append(event.text)
            elif isinstance(event, ToolCalls):
                calls[event.index] = event.calls
            else:
                tool_calls = calls.get(event.index, ())
                text = None if tool_calls else postprocess("".join(texts.get(event.index, [])), config)
                results.append(
                    TextResult(
                        text=text,
                        tool_calls=tool_calls,
                        finish_reason=event.finish_reason,
                        prompt_tokens=event.prompt_tokens,
                        completion_tokens=event.completion_tokens,
                        timings=event.timings,
                        index=event.index,
                        stop_sequence=event.stop_sequence,
                    )
                )
        return results

    async def largest_fitting(
        self, model: str, build: Callable[[int], Sequence[Mapping[str, Any]]], most: int, reserve: int
    ) -> int:
        """The largest n <= `most` whose messages `build(n)` render (with the model's own template)
        to a prompt that leaves `reserve` tokens of the context free; 0 when even `build(0)` does not."""
        async with self.scheduler.lease(model, Capability.CHAT) as lease:
            config: ModelConfig = lease.entry.config
            backend = lease.backend

            def prompt_tokens(n: int) -> int:
                messages = build(n)
                if uses_go_templates(config, models_path=self.models_path):
                    text = build_chat_prompt(config, messages, models_path=self.models_path, cache=self.templates)
                else:
                    text = backend.apply_chat_template(_with_system_prompt(messages, config)).text
                return len(backend.tokenize(text))

            def search() -> int:
                limit = backend.context_size() - reserve
                for n in range(most, 0, -1):  # a handful of sources: a linear walk down is enough
                    if prompt_tokens(n) <= limit:
                        return n
                return 0

            return await lease.run(search)

    async def tokenize(self, model: str, text: str) -> list[int]:
        async with self.scheduler.lease(model, Capability.TOKENIZE) as lease:
            return await lease.run(lease.backend.tokenize, text)

    async def detokenize(self, model: str, tokens: Sequence[int]) -> str:
        async with self.scheduler.lease(model, Capability.TOKENIZE) as lease:
            return await lease.run(lease.backend.detokenize, list(tokens))

    async def _generate(
        self, lease: LeaseLike, prompt: str, params: SamplingParams, *, index: int = 0
    ) -> AsyncIterator[TextEvent]:
        backend = lease.backend
        started = self._clock()
        first: float | None = None
        async for event in lease.stream(lambda cancel: backend.generate(prompt, params, cancel)):
            if isinstance(event, TextDelta):
                if first is None:
                    first = self._clock()
                if event.text:
                    yield Delta(event.text, index)
            elif isinstance(event, Finished):
                ended = self._clock()
                timings = _timings(started, first, ended, event.completion_tokens)
                if self.metrics is not None:
                    self.metrics.observe_generation(
                        lease.entry.name,
                        prompt_tokens=event.prompt_tokens,
                        completion_tokens=event.completion_tokens,
                        ttft=None if first is None else first - started,
                        decode_seconds=0.0 if first is None else ended - first,
                    )
                yield Done(
                    event.finish_reason,
                    event.prompt_tokens,
                    event.completion_tokens,
                    timings,
                    index,
                    stop_sequence=event.stop_sequence,
                )


def _timings(started: float, first: float | None, ended: float, completion_tokens: int) -> Timings:
    if first is None:
        return Timings(prompt_ms=(ended - started) * 1000, predicted_ms=0.0, predicted_per_second=None)
    decode = ended - first
    speed = (completion_tokens - 1) / decode if completion_tokens > 1 and decode > 0 else None
    return Timings(prompt_ms=(first - started) * 1000, predicted_ms=decode * 1000, predicted_per_second=speed)


def _with_system_prompt(messages: Sequence[Mapping[str, Any]], config: ModelConfig) -> list[Mapping[str, Any]]:
    """For the model's own template: the config's `system_prompt` leads unless the request has one."""
    if config.system_prompt and not any(m.get("role") == "system" for m in messages):
        return [{"role": "system", "content": config.system_prompt}, *messages]
    return list(messages)


def _finalize(
    params: SamplingParams, config: ModelConfig, template_stop: Sequence[str], plan: ToolPlan | None
) -> SamplingParams:
    """Add the config's stop words and the template's, and constrain the output for tools."""
    stop = tuple(dict.fromkeys(s for s in (*params.stop, *config.stopwords, *template_stop) if s))
    params = replace(params, stop=stop)
    if plan is not None and params.grammar is None:
        params = replace(params, response_format=ResponseFormat("json_schema", plan.schema()))
    return params


def _regex(pattern: str, field: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidModelConfig(f"{field} pattern {pattern!r} is not a valid regular expression: {exc}") from None


def postprocess(text: str, config: ModelConfig) -> str:
    """LocalAI's finetuning of a finished prediction: cutstrings, extract_regex, trimspace, trimsuffix."""
    for pattern in config.cutstrings:
        text = _regex(pattern, "cutstrings").sub("", text)
    extracted = "".join(m.group(0) for p in config.extract_regex if (m := _regex(p, "extract_regex").search(text)))
    if extracted:
        text = extracted
    for prefix in config.trimspace:
        text = text.removeprefix(prefix).strip()
    for suffix in config.trimsuffix:
        text = text.strip().removesuffix(suffix)
    return text
