"""The Responses API's work: prepare a request (stored chain, messages, tools, file search), run it
whole or streamed, store it, and read stored responses back.

Everything that can fail before output starts (unknown model or previous response, bad tools, a
missing vector store, a prompt too long) fails in `prepare`/`stream`'s priming, as an HTTP error.
The response store opens on first use in a worker thread; a streamed response is stored before its
`response.completed` event, so a client that saw it can continue from it at once.

File search goes through one injected function (`AnswerPlanner`): by default the knowledge
package's `plan_answer`, which retrieves for the latest user turn and fits the numbered sources into it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import BadRequest, NotFound, domain_status
from appliance.knowledge.answers import AnswerPlan, FileSearch, file_search_of, latest_user_text, plan_answer
from appliance.protocol.responses import ResponseCreateRequest, ToolSetup, new_id
from appliance.responses.conversation import chat_messages, history_items
from appliance.responses.output import Draft, shown, shown_item
from appliance.responses.turn import Turn
from inference.catalog.config import ModelConfig
from inference.errors import InferenceError
from inference.generation import SamplingParams
from inference.services.textgen import Delta, Done, TextEvent, TextService, Timings, postprocess
from stores.errors import StoreError
from stores.responses import ResponseStore

logger = logging.getLogger(__name__)

# (model, messages, what to search, tokens to keep free for the reply) -> the sources in the prompt
AnswerPlanner = Callable[[str, list[dict[str, Any]], FileSearch, int], Awaitable[AnswerPlan]]
REPLY_RESERVE = 512  # tokens kept free for the answer when the request sets no max_output_tokens


@dataclass(frozen=True)
class Prepared:
    """A checked request, ready to run."""

    request: ResponseCreateRequest
    draft: Draft
    config: ModelConfig
    params: SamplingParams
    inputs: list[dict[str, Any]]  # this request's input items, as stored and listed
    messages: list[dict[str, Any]]  # what the model is given
    tools: ToolSetup
    plan: AnswerPlan | None  # with file search: the sources, or a refusal
    query: str  # what was searched


class Responses:
    def __init__(self, data_path: Path, text: TextService, planner: AnswerPlanner) -> None:
        self.path = data_path / "responses"
        self.text = text
        self.planner = planner
        self._store: ResponseStore | None = None
        self._opening: asyncio.Future[ResponseStore] | None = None

    async def store(self) -> ResponseStore:
        if self._store is None:
            if self._opening is None:  # shielded: a cancelled request must not orphan the open (and its lock)
                self._opening = asyncio.ensure_future(asyncio.to_thread(ResponseStore(self.path).open))
            try:
                self._store = await asyncio.shield(self._opening)
            except StoreError:
                self._opening = None  # a locked or too-new database: the next request tries again
                raise
        return self._store

    async def close(self) -> None:
        if self._opening is not None and self._store is None:
            try:
                self._store = await self._opening
            except Exception:  # it never opened: nothing to close
                pass
        if self._store is not None:
            store, self._store, self._opening = self._store, None, None
            await asyncio.to_thread(store.close)

    async def prepare(self, request: ResponseCreateRequest) -> Prepared:
        config = self.text.model_config(request.model)
        params = request.to_sampling(config)
        tools = request.tool_setup()
        history: list[dict[str, Any]] = []
        if request.previous_response_id is not None:
            store = await self.store()
            turns = await asyncio.to_thread(store.conversation, request.previous_response_id)
            if turns is None:
                raise _unknown(request.previous_response_id, param="previous_response_id")
            history = history_items(turns)
        inputs = request.input_items()
        messages = chat_messages(request.instructions, history, inputs)
        if not any(message["role"] in ("user", "tool") for message in messages):
            raise _bad_input("input has no user message; send input (a string or message items)")
        plan, query = None, ""
        if tools.file_search is not None:
            search = file_search_of(tools.file_search)
            latest = latest_user_text(messages)
            query = latest[1] if latest is not None else ""
            plan = await self.planner(request.model, messages, search, request.max_output_tokens or REPLY_RESERVE)
            if not plan.refuse:
                messages = plan.messages
        draft = Draft(
            id=new_id("resp"),
            model=request.model,
            created_at=int(time.time()),
            previous_response_id=request.previous_response_id,
            instructions=request.instructions,
            max_output_tokens=request.max_output_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            tools=request.tools_echo(),
            tool_choice=request.tool_choice,
            parallel_tool_calls=request.parallel_tool_calls,
            text=request.text_echo(),
            store=request.store,
            metadata=dict(request.metadata or {}),
            user=request.user,
        )
        return Prepared(request, draft, config, params, inputs, messages, tools, plan, query)

    async def create(self, prepared: Prepared) -> dict[str, Any]:
        """Run a response whole; it is stored (unless `store` is false) before it is returned."""
        turn = self._turn(prepared, finish_text=lambda text: postprocess(text, prepared.config))
        turn.begin()
        if prepared.plan is not None:
            turn.file_search(prepared.query)
        events = self._generate(prepared)
        try:
            async for event in events:
                turn.feed(event)
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        assert turn.response is not None
        await self._save(prepared, turn.response)
        return shown(turn.response, prepared.request.wants_results())

    async def stream(self, prepared: Prepared) -> AsyncIterator[dict[str, Any]]:
        """Start a streamed response: the model's first event is awaited here (so its failures are
        HTTP errors); the returned iterator yields OpenAI's typed events, `error` on a failure."""
        events = self._generate(prepared)
        try:
            first = await anext(events)
        except BaseException:
            await events.aclose()  # type: ignore[attr-defined]
            raise
        return self._events(prepared, first, events)

    async def get(self, response_id: str, include_results: bool) -> dict[str, Any]:
        store = await self.store()
        response = await asyncio.to_thread(store.get, response_id)
        if response is None:
            raise _unknown(response_id)
        return shown(response, include_results)

    async def delete(self, response_id: str) -> dict[str, Any]:
        store = await self.store()
        if not await asyncio.to_thread(store.delete, response_id):
            raise _unknown(response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    async def input_items(
        self, response_id: str, *, limit: int, order: str, after: str | None, include_results: bool
    ) -> dict[str, Any]:
        store = await self.store()
        page = await asyncio.to_thread(store.input_items, response_id, limit=limit, order=order, after=after)
        if page is None:
            raise _unknown(response_id)
        data = [shown_item(item, include_results) for item in page.items]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": page.has_more,
        }

    def _turn(self, prepared: Prepared, **options: Any) -> Turn:
        sources = prepared.plan.sources if prepared.plan is not None else None
        return Turn(prepared.draft, include_results=prepared.request.wants_results(), sources=sources, **options)

    def _generate(self, prepared: Prepared) -> AsyncIterator[TextEvent]:
        if prepared.plan is not None and prepared.plan.refuse:
            return _refusal(prepared.plan)
        return self.text.chat(
            prepared.request.model,
            prepared.messages,
            prepared.params,
            tools=prepared.tools.functions,
            tool_choice=prepared.tools.choice,
        )

    async def _events(
        self, prepared: Prepared, first: TextEvent, rest: AsyncIterator[TextEvent]
    ) -> AsyncIterator[dict[str, Any]]:
        turn = self._turn(prepared)
        try:
            for event in turn.begin():
                yield event
            if prepared.plan is not None:
                for event in turn.file_search(prepared.query):
                    yield event
            for event in turn.feed(first):
                yield event
            async for text_event in rest:
                for event in turn.feed(text_event):
                    yield event
            assert turn.response is not None, "the text service ended without Done"
            await self._save(prepared, turn.response)
            yield turn.end()
        except Exception as exc:  # after the first byte an error can only be an event
            yield turn.event("error", **_stream_error(exc))
        finally:
            await rest.aclose()  # type: ignore[attr-defined]

    async def _save(self, prepared: Prepared, response: dict[str, Any]) -> None:
        if not prepared.request.store:
            return
        store = await self.store()
        await asyncio.to_thread(
            store.save, response["id"], prepared.request.previous_response_id, response["created_at"], response,
            prepared.inputs,
        )
        logger.debug("event=response_stored id=%s status=%s", response["id"], response["status"])


async def _refusal(plan: AnswerPlan) -> AsyncIterator[TextEvent]:
    """No source passed the floor: say so without asking the model to guess."""
    yield Delta(plan.refusal())
    yield Done("stop", 0, 0, Timings(prompt_ms=0.0, predicted_ms=0.0, predicted_per_second=None))


def _stream_error(exc: BaseException) -> dict[str, Any]:
    """The `error` event's fields: OpenAI's (code, message, param) and our envelope beside them."""
    if isinstance(exc, InferenceError):
        status, type_ = domain_status(exc)
        message, code, param = exc.message, exc.code, exc.param
    elif isinstance(exc, StoreError):
        status, type_, message, code, param = 503, "server_error", exc.message, exc.code, exc.param
    else:
        status, type_, message, code, param = 500, "server_error", "", "internal_error", None
    if status == 500:
        logger.error("event=response_stream_failed", exc_info=exc)
        message, code = "internal error", "internal_error"
    else:
        logger.warning("event=response_stream_error code=%s status=%d", code, status)
    return {
        "code": code,
        "message": message,
        "param": param,
        "error": {"message": message, "type": type_, "param": param, "code": code},
    }


def _unknown(response_id: str, param: str | None = None) -> NotFound:
    return NotFound(f"no stored response with id {response_id!r}", param=param, code="response_not_found")


def _bad_input(message: str) -> BadRequest:
    return BadRequest(message, param="input")


def planner_of(knowledge: Any, text: TextService) -> AnswerPlanner:
    """The default file search: the knowledge package's retrieval and source fitting."""

    async def plan(model: str, messages: list[dict[str, Any]], search: FileSearch, reserve: int) -> AnswerPlan:
        return await plan_answer(knowledge, text, model, messages, search, reserve=reserve)

    return plan

