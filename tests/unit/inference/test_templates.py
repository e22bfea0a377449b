"""LocalAI prompt assembly: gallery model YAMLs turned into the exact prompt text LocalAI builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inference.catalog.config import ModelConfig, load_config_file
from inference.errors import TemplateError
from inference.prompts.templates import (
    TemplateCache,
    build_chat_prompt,
    build_completion_prompt,
    build_edit_prompt,
    resolve_template,
    uses_go_templates,
)

CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]

TOOL_TURNS = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 20}'},
]

# The template sections of LocalAI's gallery/*.yaml, as users have them in their model YAMLs.
CHATML = """\
name: chatml
parameters:
  model: chatml.gguf
template:
  chat: |
    {{.Input -}}
    <|im_start|>assistant
  chat_message: |
    <|im_start|>{{ .RoleName }}
    {{ if .FunctionCall -}}
    Function call:
    {{ else if eq .RoleName "tool" -}}
    Function response:
    {{ end -}}
    {{ if .Content -}}
    {{.Content }}
    {{ end -}}
    {{ if .FunctionCall -}}
    {{toJson .FunctionCall}}
    {{ end -}}<|im_end|>
  completion: |
    {{.Input}}
"""

LLAMA3 = """\
name: llama3-instruct
template:
  chat_message: |
    <|start_header_id|>{{if eq .RoleName "assistant"}}assistant{{else if eq .RoleName "system"}}system{{else if eq .RoleName "tool"}}tool{{else if eq .RoleName "user"}}user{{end}}<|end_header_id|>

    {{ if .FunctionCall -}}
    Function call:
    {{ else if eq .RoleName "tool" -}}
    Function response:
    {{ end -}}
    {{ if .Content -}}
    {{.Content -}}
    {{ else if .FunctionCall -}}
    {{ toJson .FunctionCall -}}
    {{ end -}}
    <|eot_id|>
  chat: |
    {{.Input }}
    <|start_header_id|>assistant<|end_header_id|>
"""  # noqa: E501

MISTRAL = """\
name: mistral-0.3
template:
  join_chat_messages_by_character: "" ## No newlines between messages
  chat: |
    {{.Input -}}
  chat_message: |-
    {{if eq .RoleName "user" -}}
    [INST] {{.Content }} [/INST]
    {{- else if .FunctionCall -}}
    [TOOL_CALLS] {{toJson .FunctionCall}} [/TOOL_CALLS]
    {{- else if eq .RoleName "tool" -}}
    [TOOL_RESULTS] {{.Content}} [/TOOL_RESULTS]
    {{- else -}}
    {{ .Content -}}
    {{ end -}}
  function: |-
    [AVAILABLE_TOOLS] [{{range .Functions}}{"type": "function", "function": {"name": "{{.Name}}", "description": "{{.Description}}", "parameters": {{toJson .Parameters}} }}{{end}} ] [/AVAILABLE_TOOLS]{{.Input }}
"""  # noqa: E501

PHI3 = """\
name: phi-3-chat
template:
  chat_message: |
    <|{{ .RoleName }}|>
    {{.Content}}<|end|>
  chat: |
    {{.Input}}
    <|assistant|>
"""

VICUNA = """\
name: vicuna-chat
roles:
  user: "User: "
  system: "System: "
  assistant: "Assistant: "
template:
  completion: |
    Complete the following sentence: {{.Input}}
  chat: |
      {{.Input}}
      ASSISTANT:
"""


@pytest.fixture
def cache() -> TemplateCache:
    return TemplateCache()


@pytest.fixture
def load(models_path: Path):
    def load(text: str) -> ModelConfig:
        path = models_path / "model.yaml"
        path.write_text(text, encoding="utf-8")
        return load_config_file(path)[0]

    return load


def config(**fields: Any) -> ModelConfig:
    return ModelConfig.model_validate({"name": "m", **fields})


def chat(cfg: ModelConfig, messages: list[dict[str, Any]], models_path: Path, cache: TemplateCache, **kw: Any) -> str:
    return build_chat_prompt(cfg, messages, models_path=models_path, cache=cache, **kw)


# ---------------------------------------------------------------- gallery templates, worked out by hand


def test_chatml_gallery_template(load, models_path: Path, cache: TemplateCache) -> None:
    expected = (
        "<|im_start|>system\nYou are a helpful assistant.\n<|im_end|>\n"
        "\n<|im_start|>user\nWhat is the capital of France?\n<|im_end|>\n"
        "\n<|im_start|>assistant\nParis.\n<|im_end|>\n"
        "\n<|im_start|>user\nAnd of Italy?\n<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert chat(load(CHATML), CONVERSATION, models_path, cache) == expected


def test_llama3_gallery_template(load, models_path: Path, cache: TemplateCache) -> None:
    expected = (
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>\n"
        "\n<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>\n"
        "\n<|start_header_id|>assistant<|end_header_id|>\n\nParis.<|eot_id|>\n"
        "\n<|start_header_id|>user<|end_header_id|>\n\nAnd of Italy?<|eot_id|>\n"
        "\n<|start_header_id|>assistant<|end_header_id|>\n"
    )
    assert chat(load(LLAMA3), CONVERSATION, models_path, cache) == expected


def test_mistral_gallery_template_joins_without_newlines(load, models_path: Path, cache: TemplateCache) -> None:
    expected = (
        "You are a helpful assistant.[INST] What is the capital of France? [/INST]Paris.[INST] And of Italy? [/INST]"
    )
    assert chat(load(MISTRAL), CONVERSATION, models_path, cache) == expected


def test_phi3_gallery_template(load, models_path: Path, cache: TemplateCache) -> None:
    expected = (
        "<|system|>\nYou are a helpful assistant.<|end|>\n"
        "\n<|user|>\nWhat is the capital of France?<|end|>\n"
        "\n<|assistant|>\nParis.<|end|>\n"
        "\n<|user|>\nAnd of Italy?<|end|>\n"
        "\n<|assistant|>\n"
    )
    assert chat(load(PHI3), CONVERSATION, models_path, cache) == expected


def test_roles_prefix_each_message_without_a_chat_message_template(load, models_path: Path, cache) -> None:
    expected = (
        "System: You are a helpful assistant.\nUser: What is the capital of France?\n"
        "Assistant: Paris.\nUser: And of Italy?\nASSISTANT:\n"
    )
    assert chat(load(VICUNA), CONVERSATION, models_path, cache) == expected


def test_chatml_tool_calls_and_tool_results(load, models_path: Path, cache: TemplateCache) -> None:
    call = '[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\\"city\\":\\"Paris\\"}"}}]'
    expected = (
        "<|im_start|>user\nWeather in Paris?\n<|im_end|>\n"
        f"\n<|im_start|>assistant\nFunction call:\n{call}\n<|im_end|>\n"
        '\n<|im_start|>tool\nFunction response:\n{"temp": 20}\n<|im_end|>\n'
        "<|im_start|>assistant\n"
    )
    assert chat(load(CHATML), TOOL_TURNS, models_path, cache) == expected


def test_mistral_function_template_lists_the_tools(load, models_path: Path, cache: TemplateCache) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    cfg = load(MISTRAL)
    prompt = chat(cfg, TOOL_TURNS[:1], models_path, cache, functions=tools, use_function_template=True)
    assert prompt == (
        '[AVAILABLE_TOOLS] [{"type": "function", "function": {"name": "get_weather", "description": '
        '"Weather for a city", "parameters": {"properties":{"city":{"type":"string"}},"type":"object"} }} ]'
        " [/AVAILABLE_TOOLS][INST] Weather in Paris? [/INST]"
    )
    # without tools in play the chat template is used
    assert chat(cfg, TOOL_TURNS[:1], models_path, cache, functions=tools) == "[INST] Weather in Paris? [/INST]"


# ---------------------------------------------------------------- assembly rules


def test_list_of_parts_content_keeps_only_the_text_parts(models_path: Path, cache: TemplateCache) -> None:
    cfg = config(template={"chat_message": "{{.RoleName}}: {{.Content}}"})
    content = [
        {"type": "text", "text": "Describe "},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this."},
    ]
    assert chat(cfg, [{"role": "user", "content": content}], models_path, cache) == "user: Describe this."


def test_join_character_and_blank_messages_dropped(models_path: Path, cache: TemplateCache) -> None:
    cfg = config(
        template={
            "chat_message": '{{if ne .RoleName "system"}}{{.RoleName}}={{.Content}}{{end}}',
            "join_chat_messages_by_character": " | ",
        }
    )
    assert chat(cfg, CONVERSATION, models_path, cache) == (
        "user=What is the capital of France? | assistant=Paris. | user=And of Italy?"
    )


def test_message_data_fields(models_path: Path, cache: TemplateCache) -> None:
    cfg = config(
        system_prompt="Be brief.",
        roles={"user": "U:"},
        template={"chat_message": "{{.MessageIndex}} {{.Role}} {{.RoleName}} {{.LastMessage}} {{.Function}} {{.SystemPrompt}}"},
    )
    messages = CONVERSATION[1:3]
    assert chat(cfg, messages, models_path, cache) == "0 U: user false false Be brief.\n1  assistant true false Be brief."
    assert chat(cfg, messages, models_path, cache, grammar="root ::= x").endswith("1  assistant true true Be brief.")


def test_fallback_renders_tool_calls_as_json_after_the_role_prefix(models_path: Path, cache) -> None:
    cfg = config(roles={"assistant": "A:", "tool": "T:"})
    call = '[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\\"city\\":\\"Paris\\"}"}}]'
    assert chat(cfg, TOOL_TURNS[1:], models_path, cache) == f'A: {call}\nT:{{"temp": 20}}'


def test_assistant_function_call_role_is_used_for_calls(models_path: Path, cache: TemplateCache) -> None:
    cfg = config(roles={"assistant": "A:", "assistant_function_call": "CALL:"})
    legacy = {"role": "assistant", "content": "Let me check.", "function_call": {"name": "f", "arguments": "{}"}}
    assert chat(cfg, [legacy], models_path, cache) == 'CALL:Let me check.\nCALL: {"arguments":"{}","name":"f"}'


def test_system_prompt_is_suppressed_when_the_request_has_a_system_message(models_path: Path, cache) -> None:
    cfg = config(
        system_prompt="Default system.",
        template={"chat": "{{if not .SuppressSystemPrompt}}{{.SystemPrompt}}\n{{end}}{{.Input}}"},
    )
    assert chat(cfg, CONVERSATION[1:2], models_path, cache) == "Default system.\nWhat is the capital of France?"
    assert chat(cfg, CONVERSATION[:2], models_path, cache) == (
        "You are a helpful assistant.\nWhat is the capital of France?"
    )


def test_no_templates_means_the_joined_messages(models_path: Path, cache: TemplateCache) -> None:
    assert chat(config(), CONVERSATION[1:3], models_path, cache) == "What is the capital of France?\nParis."


def test_template_errors_name_the_model_and_the_field(models_path: Path, cache: TemplateCache) -> None:
    cfg = config(template={"chat_message": "{{.Nonsense}}"})
    with pytest.raises(TemplateError) as caught:
        chat(cfg, CONVERSATION, models_path, cache)
    assert caught.value.message.startswith("model 'm', template.chat_message: line 1, column 3: can't evaluate field")
    assert caught.value.param == "template.chat_message"


# ---------------------------------------------------------------- completion, edit, and which path applies


def test_completion_template(load, models_path: Path, cache: TemplateCache) -> None:
    cfg = load(VICUNA)
    assert build_completion_prompt(cfg, "The sky is", models_path=models_path, cache=cache) == (
        "Complete the following sentence: The sky is\n"
    )
    assert build_completion_prompt(config(), "raw", models_path=models_path, cache=cache) == "raw"


def test_edit_template_and_localai_fallback(models_path: Path, cache: TemplateCache) -> None:
    cfg = config(system_prompt="S", template={"edit": "{{.SystemPrompt}}|{{.Instruction}}|{{.Input}}"})
    assert build_edit_prompt(cfg, "Fix", "teh cat", models_path=models_path, cache=cache) == "S|Fix|teh cat"
    assert build_edit_prompt(config(), "Fix", "teh cat", models_path=models_path, cache=cache) == "teh cat"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ({"chat": "{{.Input}}"}, True),
        ({"chat_message": "{{.Content}}"}, True),
        ({"chat": "{{.Input}}", "use_tokenizer_template": True}, False),
        ({"completion": "{{.Input}}"}, False),
        ({}, False),
    ],
)
def test_uses_go_templates(template: dict[str, Any], expected: bool) -> None:
    assert uses_go_templates(config(template=template)) is expected


# ---------------------------------------------------------------- .tmpl files


def test_template_named_by_a_tmpl_file_in_the_models_path(models_path: Path, cache: TemplateCache) -> None:
    (models_path / "chatml.tmpl").write_text("<|{{.RoleName}}|>{{.Content}}", encoding="utf-8")
    cfg = config(template={"chat_message": "chatml"})
    assert chat(cfg, CONVERSATION[1:2], models_path, cache) == "<|user|>What is the capital of France?"
    assert resolve_template("no-such-file", models_path) == "no-such-file"  # not a file: inline text


def test_model_file_tmpl_is_the_default_prompt_template(models_path: Path, cache: TemplateCache) -> None:
    (models_path / "tiny.gguf.tmpl").write_text("Q: {{.Input}}\nA:", encoding="utf-8")
    cfg = config(parameters={"model": "tiny.gguf"})
    assert build_completion_prompt(cfg, "2+2?", models_path=models_path, cache=cache) == "Q: 2+2?\nA:"
    assert uses_go_templates(cfg, models_path=models_path)
    assert not uses_go_templates(cfg)


@pytest.mark.parametrize("value", ["../secret", "/etc/secret", "sub/../../secret"])
def test_template_paths_out_of_the_models_path_are_refused(tmp_path: Path, models_path: Path, value: str) -> None:
    (tmp_path / "secret.tmpl").write_text("TOP SECRET", encoding="utf-8")
    with pytest.raises(TemplateError, match="outside the models path"):
        resolve_template(value, models_path)


def test_a_refused_template_path_names_the_model_and_field(tmp_path: Path, models_path: Path, cache) -> None:
    (tmp_path / "secret.tmpl").write_text("TOP SECRET {{.Input}}", encoding="utf-8")
    cfg = config(template={"completion": "../secret"})
    with pytest.raises(TemplateError) as caught:
        build_completion_prompt(cfg, "x", models_path=models_path, cache=cache)
    assert caught.value.message.startswith("model 'm', template.completion: template '../secret' points outside")


def test_an_empty_tmpl_file_is_an_empty_template(models_path: Path) -> None:
    (models_path / "blank.tmpl").write_text("", encoding="utf-8")
    assert resolve_template("blank", models_path) == ""


def test_only_plain_names_are_looked_up_as_files(models_path: Path) -> None:
    (models_path / "sub").mkdir()
    (models_path / "sub" / "x.tmpl").write_text("FROM FILE", encoding="utf-8")
    assert resolve_template("sub/x", models_path) == "sub/x"
    assert resolve_template("</s>{{.Input}}", models_path) == "</s>{{.Input}}"

