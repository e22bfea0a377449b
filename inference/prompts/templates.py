"""LocalAI's prompt templates: a model config's Go templates turned into the prompt text.

Owns ``.tmpl`` files in the models path, the compiled-template cache, and the prompt assembly rules of
LocalAI's chat, completion and edit endpoints. The data templates see is `inference.prompts.template_data`,
the sprig functions and Go's JSON `inference.prompts.sprig`; both are re-exported here.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.catalog.config import ModelConfig
from inference.errors import TemplateError
from inference.prompts.gotemplate import Functions, GoTemplate, parse_template
from inference.prompts.sprig import SPRIG_FUNCTIONS, go_json
from inference.prompts.template_data import (
    ChatMessageData,
    FunctionCallData,
    FunctionData,
    PromptData,
    ToolCallData,
)

__all__ = [
    "SPRIG_FUNCTIONS",
    "ChatMessageData",
    "FunctionCallData",
    "FunctionData",
    "PromptData",
    "TemplateCache",
    "ToolCallData",
    "build_chat_prompt",
    "build_completion_prompt",
    "build_edit_prompt",
    "go_json",
    "resolve_template",
    "uses_go_templates",
]

_PLAIN_NAME = re.compile(r"\w[\w.+-]{0,199}\Z")


# ---------------------------------------------------------------- template text and the cache


def resolve_template(value: str, models_path: Path) -> str:
    """The template text a config value stands for: ``<models_path>/<value>.tmpl`` when ``value`` is
    a plain file name and that file exists (as LocalAI does), else ``value`` itself (inline text).

    A value that is a path out of the models path (absolute, or with a ``..`` part) is refused.
    """
    if "{{" in value:
        return value
    if _PLAIN_NAME.match(value) and ".." not in value:
        text = _read_template(models_path / f"{value}.tmpl")
        return value if text is None else text
    if value.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", value):
        raise TemplateError(
            f"template {value!r} points outside the models path; name a .tmpl file in the models "
            "path without its extension, or write the template inline"
        )
    return value


def _read_template(path: Path) -> str | None:
    try:
        if not path.is_file():
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"template file {path.name}: cannot read it: {exc}") from None


class TemplateCache:
    """Compiled templates by source text, the least recently used evicted first; thread-safe.

    Build one per engine and hand it down. A template that fails to parse is not cached, so a
    corrected config takes effect without a restart.
    """

    def __init__(self, max_entries: int = 256, functions: Mapping[str, Callable[..., Any]] | None = None) -> None:
        """``functions``: those beyond Go's builtins; by default the sprig ones LocalAI templates use."""
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._functions = Functions.with_extra(SPRIG_FUNCTIONS if functions is None else functions)
        self._compiled: OrderedDict[str, GoTemplate] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._compiled)

    def compile(self, source: str) -> GoTemplate:
        """The parsed template for ``source``; raises TemplateError naming line, column and action."""
        with self._lock:
            if (template := self._compiled.get(source)) is not None:
                self._compiled.move_to_end(source)
                return template
        template = parse_template(source, self._functions)
        with self._lock:
            self._compiled[source] = template
            while len(self._compiled) > self._max_entries:
                self._compiled.popitem(last=False)
        return template

    def render(self, source: str, data: Any) -> str:
        return self.compile(source).render(data)


# ---------------------------------------------------------------- LocalAI's prompt assembly


def uses_go_templates(config: ModelConfig, *, models_path: Path | None = None) -> bool:
    """Whether chat prompts come from the config's Go templates rather than the model's own (Jinja)
    chat template: ``template.chat`` or ``chat_message`` is set (or, given ``models_path``, a
    ``<parameters.model>.tmpl`` file exists) and ``template.use_tokenizer_template`` is not true."""
    if config.template.use_tokenizer_template:
        return False
    if config.template.chat or config.template.chat_message:
        return True
    return models_path is not None and _model_file_template(config, models_path) is not None


def build_chat_prompt(
    config: ModelConfig,
    messages: Sequence[Mapping[str, Any]],
    *,
    models_path: Path,
    cache: TemplateCache,
    functions: Sequence[Mapping[str, Any]] | None = None,
    use_function_template: bool = False,
    grammar: str | None = None,
    reasoning_effort: str = "",
    metadata: Mapping[str, str] | None = None,
) -> str:
    """The prompt for OpenAI chat ``messages``, assembled as LocalAI's chat endpoint does.

    Each message renders through ``template.chat_message`` (a blank result drops the message) or,
    without one, becomes its ``roles:`` prefix + text, with any function/tool calls as JSON. The
    pieces join with ``template.join_chat_messages_by_character`` (default newline) and then render
    as ``.Input`` through ``template.function`` (when ``use_function_template``, i.e. tools are in
    play, and it is set) or ``template.chat``. ``functions`` are the offered tools (OpenAI function
    objects or ``{"type": "function", "function": ...}`` tools). ``grammar`` is the grammar the reply
    will be constrained by (None: the config's); it sets ``.Function`` on the last message.
    """
    source = None
    if config.template.chat_message:
        with _context(config, "template.chat_message"):
            source = resolve_template(config.template.chat_message, models_path)
    system_prompt = config.system_prompt or ""
    constrained = bool(config.grammar if grammar is None else grammar)
    parts: list[str] = []
    suppress_system_prompt = False
    last = len(messages) - 1
    for index, raw in enumerate(messages):
        message = _Message.parse(raw)
        role = message.role
        if role == "assistant" and message.has_calls and config.roles.get("assistant_function_call"):
            role = "assistant_function_call"
        prefix = config.roles.get(role, "")
        if source is None:
            parts.append(message.plain(prefix))
            suppress_system_prompt |= role == "system" and message.content != ""
            continue
        data = ChatMessageData(
            SystemPrompt=system_prompt,
            Role=prefix,
            RoleName=role,
            FunctionName=message.name,
            Content=message.content,
            MessageIndex=index,
            Function=constrained and index == last,
            FunctionCall=message.tool_calls or message.function_call,
            LastMessage=index == last,
        )
        with _context(config, "template.chat_message"):
            text = cache.render(source, data)
        if text:
            parts.append(text)
    joiner = config.template.join_chat_messages_by_character
    joined = ("\n" if joiner is None else joiner).join(parts)
    kind = "function" if use_function_template and config.template.function else "chat"
    data = PromptData(
        SystemPrompt=system_prompt,
        SuppressSystemPrompt=suppress_system_prompt,
        Input=joined,
        Functions=None if functions is None else tuple(_function(f) for f in functions),
        ReasoningEffort=reasoning_effort,
        Metadata=dict(metadata or {}),
    )
    return _render_prompt(config, kind, data, models_path, cache)


def build_completion_prompt(
    config: ModelConfig,
    prompt: str,
    *,
    models_path: Path,
    cache: TemplateCache,
    reasoning_effort: str = "",
    metadata: Mapping[str, str] | None = None,
) -> str:
    """``template.completion`` rendered with ``.Input`` = the prompt; without one, the prompt as is."""
    data = PromptData(
        SystemPrompt=config.system_prompt or "",
        Input=prompt,
        ReasoningEffort=reasoning_effort,
        Metadata=dict(metadata or {}),
    )
    return _render_prompt(config, "completion", data, models_path, cache)


def build_edit_prompt(
    config: ModelConfig,
    instruction: str,
    input: str,
    *,
    models_path: Path,
    cache: TemplateCache,
    reasoning_effort: str = "",
    metadata: Mapping[str, str] | None = None,
) -> str:
    """``template.edit`` rendered with ``.Instruction`` and ``.Input``. Without one LocalAI sends the
    input alone (the instruction is dropped), and so do we."""
    data = PromptData(
        SystemPrompt=config.system_prompt or "",
        Input=input,
        Instruction=instruction,
        ReasoningEffort=reasoning_effort,
        Metadata=dict(metadata or {}),
    )
    return _render_prompt(config, "edit", data, models_path, cache)


def _render_prompt(config: ModelConfig, kind: str, data: PromptData, models_path: Path, cache: TemplateCache) -> str:
    """``template.<kind>`` rendered with ``data``; without it, LocalAI's fallback for every prompt
    kind, a ``<parameters.model>.tmpl`` file beside the model; without that, ``data.Input``."""
    value = getattr(config.template, kind)
    where = f"template.{kind}" if value else f"{config.parameters.model}.tmpl"
    with _context(config, where):
        source = resolve_template(value, models_path) if value else _model_file_template(config, models_path)
        return data.Input if source is None else cache.render(source, data)


def _model_file_template(config: ModelConfig, models_path: Path) -> str | None:
    model = config.parameters.model
    if not model:
        return None
    path = models_path / f"{model}.tmpl"
    try:
        inside = path.resolve().is_relative_to(models_path.resolve())
    except (OSError, RuntimeError):
        return None
    return _read_template(path) if inside else None


@contextmanager
def _context(config: ModelConfig, where: str) -> Iterator[None]:
    """Name the model and the template field in a TemplateError raised inside."""
    try:
        yield
    except TemplateError as exc:
        raise TemplateError(f"model {config.name!r}, {where}: {exc.message}", param=where) from None


@dataclass(frozen=True)
class _Message:
    """One OpenAI chat message, as LocalAI reads it."""

    role: str
    name: str
    content: str  # the text: a string, or the text parts of a list of content parts, joined
    function_call: Any
    tool_calls: tuple[ToolCallData, ...] | None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> _Message:
        content = raw.get("content")
        if isinstance(content, list | tuple):
            content = "".join(
                str(part.get("text") or "")
                for part in content
                if isinstance(part, Mapping) and part.get("type") == "text"
            )
        calls = raw.get("tool_calls")
        return cls(
            role=str(raw.get("role") or ""),
            name=str(raw.get("name") or ""),
            content=content if isinstance(content, str) else "",
            function_call=raw.get("function_call"),
            tool_calls=None if calls is None else tuple(_tool_call(c) for c in calls if isinstance(c, Mapping)),
        )

    @property
    def has_calls(self) -> bool:
        return self.function_call is not None or self.tool_calls is not None

    def plain(self, prefix: str) -> str:
        """LocalAI's rendering without a chat_message template: prefix + text, then each call as
        JSON (after the prefix and a space) on a line of its own; a later call replaces an earlier
        one when there is no text, as in LocalAI."""
        text = prefix + self.content if self.content else ""
        for call in (self.function_call, self.tool_calls):
            if call is None:
                continue
            try:
                encoded = go_json(call)
            except (ValueError, RecursionError):
                continue
            encoded = f"{prefix} {encoded}" if prefix else encoded
            text = f"{text}\n{encoded}" if self.content else encoded
        return text


def _tool_call(raw: Mapping[str, Any]) -> ToolCallData:
    function = raw.get("function") if isinstance(raw.get("function"), Mapping) else {}
    arguments = function.get("arguments", "")
    return ToolCallData(
        Index=raw.get("index") if isinstance(raw.get("index"), int) else 0,
        ID=str(raw.get("id") or ""),
        Type=str(raw.get("type") or ""),
        FunctionCall=FunctionCallData(
            Name=str(function.get("name") or ""),
            Arguments=arguments if isinstance(arguments, str) else go_json(arguments),
        ),
    )


def _function(raw: Mapping[str, Any]) -> FunctionData:
    if raw.get("type") == "function" and isinstance(raw.get("function"), Mapping):
        raw = raw["function"]
    parameters = raw.get("parameters")
    return FunctionData(
        Name=str(raw.get("name") or ""),
        Description=str(raw.get("description") or ""),
        Strict=raw.get("strict") is True,
        Parameters=parameters if isinstance(parameters, Mapping) else None,
    )
