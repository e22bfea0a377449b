"""A GGUF model's own chat template, rendered with llama-cpp-python's ``Jinja2ChatFormatter``.

BOS/EOS texts come from the vocabulary; a model without a template gets ChatML. OpenAI messages are
normalised for Hugging Face templates: text parts joined, tool-call arguments given as objects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from inference.errors import InvalidModelConfig, InvalidRequest
from inference.generation import ChatPrompt

logger = logging.getLogger(__name__)

CHATML_STOP = "<|im_end|>"


class ChatTemplate:
    """One loaded model's chat template, compiled once. ``llm`` is the ``llama_cpp.Llama``."""

    def __init__(self, llm: Any, template: str | None, *, model_name: str) -> None:
        import jinja2
        import llama_cpp
        from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE, Jinja2ChatFormatter

        self.model_name = model_name
        vocab = llama_cpp.llama_model_get_vocab(llm.model)

        def text_of(token: int) -> str:
            return llama_cpp.llama_vocab_get_text(vocab, token).decode("utf-8", "replace") if token >= 0 else ""

        eos, bos = llm.token_eos(), llm.token_bos()
        stops = [text_of(eos), text_of(llama_cpp.llama_vocab_eot(vocab))]
        if template is None:
            logger.debug("event=chat_template_fallback model=%s template=chatml", model_name)
            template = CHATML_CHAT_TEMPLATE
            stops.append(CHATML_STOP)
        try:
            self._formatter = Jinja2ChatFormatter(
                template=template, eos_token=text_of(eos), bos_token=text_of(bos), stop_token_ids=[eos]
            )
        except jinja2.TemplateError as exc:
            raise InvalidModelConfig(
                f"model {model_name!r}: its GGUF chat template does not compile: {exc}", param="template"
            ) from exc
        self._stops = tuple(dict.fromkeys(s for s in stops if s))
        self._render_errors = (jinja2.TemplateError, ValueError, TypeError)

    def render(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None
    ) -> ChatPrompt:
        """The conversation ending in the assistant's turn; ``stop`` holds the end-of-turn texts.

        A template that rejects the conversation (``raise_exception``, a missing field) raises
        `InvalidRequest` with the template's own message.
        """
        try:
            response = self._formatter(
                messages=[template_message(message) for message in messages],
                tools=[dict(tool) for tool in tools] if tools else None,
            )
        except self._render_errors as exc:
            raise InvalidRequest(
                f"model {self.model_name!r}: its chat template rejected the messages: {exc}", param="messages"
            ) from exc
        extra = response.stop if isinstance(response.stop, list) else [response.stop] if response.stop else []
        return ChatPrompt(text=response.prompt, stop=tuple(dict.fromkeys(s for s in (*self._stops, *extra) if s)))


def template_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI message as HF chat templates expect it: text content, tool-call arguments as objects."""
    result = dict(message)
    content = result.get("content")
    if isinstance(content, list):
        result["content"] = "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type", "text") == "text"
        )
    elif content is None:
        result["content"] = ""
    calls = result.get("tool_calls")
    if calls:
        result["tool_calls"] = [_template_tool_call(call) for call in calls]
    return result


def _template_tool_call(call: Any) -> Any:
    if not isinstance(call, Mapping) or not isinstance(call.get("function"), Mapping):
        return call
    function = dict(call["function"])
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            function["arguments"] = parsed
    return {**call, "function": function}
