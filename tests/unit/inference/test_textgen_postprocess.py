"""LocalAI's post-processing of finished text: cutstrings, extract_regex, trimspace, trimsuffix."""

from __future__ import annotations

import pytest

from inference.catalog.config import ModelConfig
from inference.errors import InvalidModelConfig
from inference.services.textgen import postprocess


def config(**fields: object) -> ModelConfig:
    return ModelConfig.model_validate({"name": "m", "backend": "fake", **fields})


def test_nothing_configured_leaves_text_alone() -> None:
    assert postprocess("  Hello <b>  ", config()) == "  Hello <b>  "


def test_cutstrings_remove_every_match() -> None:
    assert postprocess("a<|x|>b<|y|>c", config(cutstrings=[r"<\|[a-z]\|>"])) == "abc"


def test_extract_regex_keeps_only_the_match() -> None:
    text = "thinking... <answer>42</answer> done"
    assert postprocess(text, config(extract_regex=[r"<answer>.*?</answer>"])) == "<answer>42</answer>"
    assert postprocess("no tags", config(extract_regex=[r"<answer>.*?</answer>"])) == "no tags"


def test_trimspace_and_trimsuffix() -> None:
    assert postprocess("ANSWER:  yes  ", config(trimspace=["ANSWER:"])) == "yes"
    assert postprocess("  yes</s> ", config(trimsuffix=["</s>"])) == "yes"


def test_bad_pattern_is_a_config_error() -> None:
    with pytest.raises(InvalidModelConfig, match="cutstrings"):
        postprocess("x", config(cutstrings=["(unclosed"]))
