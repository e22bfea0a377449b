"""One response being produced: the text service's events in, output items and OpenAI's typed
stream events out, each with its `sequence_number`.

The same walk serves streamed and whole responses, so both give the same items. Its order is
OpenAI's: `response.created`, `response.in_progress`, then per output item `output_item.added`,
its content (`content_part.added`, `output_text.delta`..., `output_text.annotation.added`,
`output_text.done`, `content_part.done`; or `function_call_arguments.delta`/`.done`; or the
`file_search_call.*` steps), `output_item.done`; and last `response.completed` or `.incomplete`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from appliance.knowledge.answers import Source, file_citations
from appliance.protocol.responses import new_id
from appliance.responses.output import (
    Draft,
    file_search_item,
    function_call_item,
    message_item,
    output_text,
    shown,
    shown_item,
    usage,
)
from inference.services.textgen import Delta, Done, TextEvent, ToolCalls

LENGTH_REASON = "max_output_tokens"


class Turn:
    def __init__(
        self,
        draft: Draft,
        *,
        include_results: bool,
        sources: Sequence[Source] | None = None,
        finish_text: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.draft = draft
        self.include_results = include_results
        self.sources = sources  # None: no file search; else the sources the model was given
        self.finish_text = finish_text  # the whole reply's post-processing, applied when it closes
        self.output: list[dict[str, Any]] = []
        self.response: dict[str, Any] | None = None
        self._sequence = 0
        self._message: dict[str, Any] | None = None
        self._text: list[str] = []

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        payload = {"type": kind, **fields, "sequence_number": self._sequence}
        self._sequence += 1
        return payload

    def begin(self) -> list[dict[str, Any]]:
        in_progress = self.draft.object("in_progress", [])
        return [
            self.event("response.created", response=in_progress),
            self.event("response.in_progress", response=in_progress),
        ]

    def file_search(self, query: str) -> list[dict[str, Any]]:
        """The search already ran (its errors are HTTP errors); this reports it as its item."""
        index, item_id = len(self.output), new_id("fs")
        item = file_search_item(item_id, "completed", [query], self.sources or [])
        self.output.append(item)
        steps = ("in_progress", "searching", "completed")
        return [
            self.event("response.output_item.added", output_index=index,
                       item=file_search_item(item_id, "in_progress", [query], None)),
            *(self.event(f"response.file_search_call.{step}", output_index=index, item_id=item_id) for step in steps),
            self.event("response.output_item.done", output_index=index, item=shown_item(item, self.include_results)),
        ]

    def feed(self, event: TextEvent) -> list[dict[str, Any]]:
        if isinstance(event, Delta):
            events = self._open_message() if self._message is None else []
            if event.text:
                self._text.append(event.text)
                events.append(self.event("response.output_text.delta", item_id=self._message_id(),
                                         output_index=len(self.output), content_index=0, delta=event.text, logprobs=[]))
            return events
        if isinstance(event, ToolCalls):
            events = self._close_message("completed") if self._message is not None else []
            for call in event.calls:
                events += self._function_call(call)
            return events
        if isinstance(event, Done):
            return self._finish(event)
        return []

    def end(self) -> dict[str, Any]:
        """The closing event, sent once the finished response is stored."""
        assert self.response is not None
        kind = "response.incomplete" if self.response["status"] == "incomplete" else "response.completed"
        return self.event(kind, response=shown(self.response, self.include_results))

    def _finish(self, done: Done) -> list[dict[str, Any]]:
        cut = done.finish_reason == "length"
        events: list[dict[str, Any]] = []
        if self._message is None and not any(item["type"] == "function_call" for item in self.output):
            events += self._open_message()  # an empty reply is still a message
        if self._message is not None:
            events += self._close_message("incomplete" if cut else "completed")
        self.response = self.draft.object(
            "incomplete" if cut else "completed",
            self.output,
            usage=usage(done.prompt_tokens, done.completion_tokens),
            incomplete_reason=LENGTH_REASON if cut else None,
        )
        return events

    def _message_id(self) -> str:
        assert self._message is not None
        return self._message["id"]

    def _open_message(self) -> list[dict[str, Any]]:
        self._message = message_item(new_id("msg"), "in_progress")
        index, item_id = len(self.output), self._message["id"]
        return [
            self.event("response.output_item.added", output_index=index, item=message_item(item_id, "in_progress")),
            self.event("response.content_part.added", item_id=item_id, output_index=index, content_index=0,
                       part=output_text("")),
        ]

    def _close_message(self, status: str) -> list[dict[str, Any]]:
        assert self._message is not None
        index, item_id = len(self.output), self._message["id"]
        text = self.finish_text("".join(self._text))
        annotations = file_citations(text, self.sources) if self.sources else []
        part = output_text(text, annotations)
        item = message_item(item_id, status, [part])
        self.output.append(item)
        self._message, self._text = None, []
        at = {"item_id": item_id, "output_index": index, "content_index": 0}
        return [
            *(self.event("response.output_text.annotation.added", **at, annotation_index=n, annotation=annotation)
              for n, annotation in enumerate(annotations)),
            self.event("response.output_text.done", **at, text=text, logprobs=[]),
            self.event("response.content_part.done", **at, part=part),
            self.event("response.output_item.done", output_index=index, item=item),
        ]

    def _function_call(self, call: Any) -> list[dict[str, Any]]:
        index, item_id = len(self.output), new_id("fc")
        item = function_call_item(item_id, call, "completed")
        self.output.append(item)
        at = {"item_id": item_id, "output_index": index}
        return [
            self.event("response.output_item.added", output_index=index,
                       item=function_call_item(item_id, call, "in_progress", arguments="")),
            self.event("response.function_call_arguments.delta", **at, delta=call.arguments),
            self.event("response.function_call_arguments.done", **at, arguments=call.arguments, name=call.name),
            self.event("response.output_item.done", output_index=index, item=item),
        ]
