"""Chat in a real browser against a real server on fake models: answers stream and show their token
figures, a stream stops with the button and with Esc, an API error is shown as its message, Enter
sends while Shift+Enter and an input method's Enter do not, questions can be edited and answers
regenerated, and conversations are kept, searched, exported and imported."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import assert_accessible


def mark_answers(page: Any) -> None:
    """Tag the answers on screen, so wait_answered waits for a new one."""
    page.evaluate("document.querySelectorAll('article[aria-label=Answer]').forEach((a) => { a.dataset.seen = '1'; })")


def ask(page: Any, model: str, question: str) -> Any:
    """Pick `model`, send `question` with Enter; returns the locator of the newest answer."""
    mark_answers(page)
    page.get_by_label("Model").select_option(model)
    box = page.get_by_role("textbox", name="Message", exact=True)
    box.fill(question)
    box.press("Enter")
    return page.get_by_role("article", name="Answer").last


def wait_answered(page: Any) -> None:
    """Until a new answer is there, none streams, and every answer's markdown has caught up."""
    page.wait_for_function(
        "() => document.querySelector('article[aria-label=Answer]:not([data-seen])')"
        " && !document.querySelector('[aria-busy=true]') && [...document.querySelectorAll("
        "'article[aria-label=Answer] .markdown')].every((m) => m.dataset.state === 'done')"
    )


def test_an_answer_streams_into_the_log_with_its_token_figures(page: Any) -> None:
    answer = ask(page, "chatty", "hello there")
    wait_answered(page)
    log = page.get_by_role("log", name="Conversation")
    assert log.get_by_role("article", name="Your message").locator(".message-body").inner_text() == ("hello there")
    text = answer.locator(".markdown").inner_text().strip()
    assert len(text.split()) >= 4, text  # the fake model answers 4 to 40 words
    stats = answer.locator(".message-stats").inner_text()
    assert re.search(r"\d+ prompt \+ \d+ completion tokens", stats), stats
    assert "tokens/s" in stats and "s to first token" in stats, stats
    assert_accessible(page, "Chat with an answer")


def test_a_stream_stops_with_the_button_and_with_escape(page: Any) -> None:
    for how in ("button", "escape"):
        answer = ask(page, "slowpoke", f"tell me a long story ({how})")
        stop = page.get_by_role("button", name="Stop")
        stop.wait_for()
        page.wait_for_function(
            "el => el.innerText.trim().length > 0", arg=answer.locator(".markdown").element_handle()
        )
        if how == "button":
            stop.click()
        else:
            page.keyboard.press("Escape")
        answer.get_by_text("Stopped.").wait_for()
        wait_answered(page)
        partial = answer.locator(".markdown").inner_text().strip()
        assert partial, "the words streamed before the stop are kept"
        page.wait_for_timeout(300)  # nothing more arrives after a stop
        assert answer.locator(".markdown").inner_text().strip() == partial


def test_an_api_error_is_shown_as_its_message(page: Any) -> None:
    answer = ask(page, "broken", "are you there?")
    alert = page.get_by_role("alert").filter(has_text="The model could not answer")
    alert.wait_for()
    assert "fail" in alert.inner_text().lower(), alert.inner_text()
    assert "fail" in answer.locator(".message-error").inner_text().lower()
    assert_accessible(page, "Chat with an error")
    alert.get_by_role("button", name="Dismiss this error").click()
    assert page.get_by_role("alert").filter(has_text="The model could not answer").count() == 0


def test_enter_sends_shift_enter_and_composition_do_not(page: Any) -> None:
    page.get_by_label("Model").select_option("chatty")
    box = page.get_by_role("textbox", name="Message", exact=True)
    box.fill("first line")
    box.press("Shift+Enter")
    box.type("second line")
    assert box.input_value() == "first line\nsecond line"
    # An input method's Enter (isComposing) commits the composition, it does not send.
    box.evaluate(
        "el => el.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', isComposing: true, bubbles: true, cancelable: true}))"
    )
    page.wait_for_timeout(200)
    assert page.get_by_role("article").count() == 0
    box.press("Enter")
    wait_answered(page)
    assert page.get_by_role("article", name="Your message").locator(".message-body").inner_text() == ("first line\nsecond line")


def test_edit_a_question_and_regenerate_an_answer(page: Any) -> None:
    ask(page, "chatty", "alpha question")
    wait_answered(page)
    first = page.get_by_role("article", name="Answer").locator(".markdown").inner_text()
    mark_answers(page)
    page.get_by_role("article", name="Your message").get_by_role("button", name="Edit").click()
    page.get_by_label("Edit your message").fill("bravo question")
    page.get_by_role("button", name="Save and send").click()
    wait_answered(page)
    assert page.get_by_role("article", name="Your message").count() == 1
    assert page.get_by_role("article", name="Your message").locator(".message-body").inner_text() == ("bravo question")
    edited = page.get_by_role("article", name="Answer").locator(".markdown").inner_text()
    assert edited != first  # the fake model's words hash the prompt
    mark_answers(page)
    page.get_by_role("button", name="Regenerate").click()
    wait_answered(page)
    assert page.get_by_role("article", name="Answer").count() == 1
    assert page.get_by_role("article", name="Answer").locator(".markdown").inner_text() == edited  # same prompt, same words


def test_sampling_settings_and_system_prompt_reach_the_request(page: Any) -> None:
    page.get_by_role("button", name="Settings").click()
    page.get_by_label("System prompt").fill("be brief")
    page.get_by_label("Temperature").fill("0.2")
    page.get_by_label("Top p").fill("0.9")
    page.get_by_label("Max tokens").fill("5")
    with page.expect_request("**/v1/chat/completions") as caught:
        ask(page, "chatty", "count the stars")
    body = json.loads(caught.value.post_data)
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.2, 0.9, 5)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    wait_answered(page)
    stats = page.get_by_role("article", name="Answer").locator(".message-stats").inner_text()
    assert re.search(r"\+ [1-5] completion tokens", stats), stats  # max_tokens 5 bounds the answer


def test_conversations_are_kept_searched_exported_and_imported(open_page: Callable[..., Any], tmp_path: Path) -> None:
    handle = open_page("chat")
    page = handle.page
    ask(page, "chatty", "the zebra question")
    wait_answered(page)
    page.get_by_role("button", name="New chat").click()
    ask(page, "chatty", "the yak question")
    wait_answered(page)
    page.reload()
    side = page.get_by_role("complementary", name="Conversations")
    side.get_by_role("button", name="the zebra question", exact=True).wait_for()
    side.get_by_role("button", name="the yak question", exact=True).wait_for()
    side.get_by_label("Search conversations").fill("zebra")
    assert side.locator(".conv-link").all_inner_texts() == ["the zebra question"]
    side.get_by_role("button", name="the zebra question", exact=True).click()
    assert page.get_by_role("article", name="Your message").locator(".message-body").inner_text() == ("the zebra question")
    with page.expect_download() as caught:
        side.get_by_role("button", name="Export").click()
    exported = tmp_path / "conversations.json"
    caught.value.save_as(exported)
    data = json.loads(exported.read_text())
    assert sorted(c["title"] for c in data["conversations"]) == ["the yak question", "the zebra question"]
    # A fresh browser imports them, and a bad file is refused with a message.
    fresh = open_page("chat").page
    fresh_side = fresh.get_by_role("complementary", name="Conversations")
    bad = tmp_path / "bad.json"
    bad.write_text("{\"nothing\": 1}")
    fresh_side.get_by_label("Import conversations").set_input_files(str(bad))
    fresh.get_by_role("alert").filter(has_text="Not a conversations export").wait_for()
    fresh_side.get_by_label("Import conversations").set_input_files(str(exported))
    fresh_side.get_by_text("Imported 2 conversations.").wait_for()
    fresh_side.get_by_role("button", name="the yak question", exact=True).click()
    fresh.wait_for_function("() => document.querySelector('article[aria-label=Answer] .markdown[data-state=done]')")
    assert fresh.get_by_role("article", name="Answer").locator(".markdown").inner_text().strip()


def test_chat_passes_axe_with_its_panels_open_in_both_themes(open_page: Callable[..., Any]) -> None:
    page = open_page("chat").page
    page.get_by_role("button", name="Settings").click()
    page.get_by_label("Documents").check()
    page.get_by_role("group", name="Answer from these vector stores").or_(page.get_by_text("No vector store yet")).first.wait_for()
    ask(page, "chatty", "a question with `code` and **bold**")
    page.get_by_role("alert").filter(has_text="Pick at least one vector store").wait_for()  # none ticked
    assert page.get_by_role("article").count() == 0
    assert_accessible(page, "Chat (light) with settings, documents and an error open")
    page.get_by_label("Documents").uncheck()
    mark_answers(page)
    page.get_by_role("textbox", name="Message", exact=True).press("Enter")
    wait_answered(page)
    assert page.get_by_role("article", name="Answer").count() == 1
    page.evaluate("document.documentElement.dataset.theme = 'dark'")
    assert_accessible(page, "Chat (dark) with settings open and an answer")


def test_chat_works_at_390_px(open_page: Callable[..., Any]) -> None:
    page = open_page("chat", viewport={"width": 390, "height": 844}).page
    ask(page, "chatty", "small screen question")
    wait_answered(page)
    side = page.get_by_role("complementary", name="Conversations")
    assert not side.is_visible()  # folded away on a phone
    page.get_by_role("button", name="Conversations").click()
    side.get_by_role("button", name="small screen question", exact=True).wait_for()
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert_accessible(page, "Chat at 390 px")


def test_copy_a_code_block_and_a_whole_answer(open_page: Callable[..., Any]) -> None:
    handle = open_page("chat")
    handle.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=handle.server.base)
    page = handle.page
    page.get_by_label("Model").locator("option[value=writer]").wait_for(state="attached")
    offered = page.get_by_label("Model").locator("option").all_inner_texts()
    assert "writer" in offered and "all-minilm-l6-v2" not in offered  # chat models only, not the embedder
    answer = ask(page, "writer", "write code")
    wait_answered(page)
    first_code = answer.locator("pre code").first
    assert first_code.get_attribute("class") and "hljs" in first_code.get_attribute("class")  # highlighted when done
    answer.get_by_role("button", name="Copy code").first.click()
    assert page.evaluate("navigator.clipboard.readText()") == "def part_1(x):\n    return x * 1  # multiply\n"
    answer.locator(".message-tools").get_by_role("button", name="Copy", exact=True).click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("## Part 1\n\nThis part explains step 1") and "```python" in copied  # the markdown source
