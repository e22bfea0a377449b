"""The Go text/template engine against Go's documented semantics (outputs checked against Go 1.19+)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest

from inference.errors import InvalidModelConfig, TemplateError
from inference.prompts.gotemplate import parse_template
from inference.prompts.templates import TemplateCache


def render(source: str, data: Any = None) -> str:
    return TemplateCache().render(source, data)


@dataclass(frozen=True)
class Message:
    RoleName: str = ""
    Content: str = ""
    FunctionCall: Any = None


# ---------------------------------------------------------------- whitespace trimming


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a \n\t {{- 1 -}} \n\t b", "a1b"),  # all spaces, tabs and newlines on both sides
        ("a {{- 1}} b", "a1 b"),
        ("a {{1 -}} b", "a 1b"),
        ("a {{-1}} b", "a -1 b"),  # "-" without a space after it is a negative number, not a trim marker
        ("line1\n{{- if true }}\nyes\n{{- end }}\nline3", "line1\nyes\nline3"),
        ("x  {{- /* note */ -}}  y", "xy"),
        ("x\n{{/* a comment\nover lines */}}\ny", "x\n\ny"),
        ("{{ 1 -}}\n\n   \n{{ 2 }}", "12"),
    ],
)
def test_trim_markers_strip_adjacent_whitespace_like_go(source: str, expected: str) -> None:
    assert render(source) == expected


# ---------------------------------------------------------------- conditionals and truthiness


@pytest.mark.parametrize(
    ("value", "truth"),
    [("", False), ("x", True), (0, False), (7, True), (0.0, False), ([], False), ([0], True),
     ({}, False), ({"a": 1}, True), (None, False), (False, False), (True, True), (Message(), True)],
)
def test_if_uses_go_truthiness(value: Any, truth: bool) -> None:
    assert render("{{if .V}}T{{else}}F{{end}}", {"V": value}) == ("T" if truth else "F")


def test_missing_map_key_is_false_and_prints_no_value() -> None:
    assert render("{{if .Nope}}T{{else}}F{{end}} {{.Nope}} {{.A.B.C}}", {"A": {}}) == "F <no value> <no value>"


@pytest.mark.parametrize(
    ("role", "expected"),
    [("user", "U"), ("system", "SA"), ("assistant", "SA"), ("tool", "T"), ("other", "O")],
)
def test_else_if_chain_and_eq_with_several_operands(role: str, expected: str) -> None:
    source = (
        '{{if eq .RoleName "user"}}U{{else if eq .RoleName "system" "assistant"}}SA'
        '{{else if eq .RoleName "tool"}}T{{else}}O{{end}}'
    )
    assert render(source, Message(RoleName=role)) == expected


def test_comparisons_and_logic() -> None:
    source = '{{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1.5 2.5}} {{and 1 0 2}} {{or 0 "" "z"}} {{not ""}}'
    assert render(source) == "true true true true false 0 z true"


def test_and_short_circuits_before_a_nil_field() -> None:
    assert render("[{{if and .X .X.Y}}yes{{end}}]", {"X": None}) == "[]"


def test_comparing_different_kinds_is_an_error() -> None:
    with pytest.raises(TemplateError, match="incompatible types for comparison"):
        render('{{if eq .N "1"}}x{{end}}', {"N": 1})


# ---------------------------------------------------------------- range and with


def test_range_rebinds_dot_and_runs_else_when_empty() -> None:
    source = "{{range .L}}[{{.}}]{{else}}empty{{end}}"
    assert render(source, {"L": ["a", 1, None]}) == "[a][1][<no value>]"
    assert render(source, {"L": []}) == "empty"
    assert render(source, {}) == "empty"


def test_range_with_index_and_element_variables_and_root() -> None:
    source = "{{range $i, $e := .L}}{{$i}}={{$e}}{{$.Sep}}{{end}}"
    assert render(source, {"L": ["a", "b"], "Sep": ";"}) == "0=a;1=b;"


def test_range_variables_hold_the_collection_in_else_as_in_go() -> None:
    assert render("{{range $i, $e := .L}}x{{else}}[{{len $e}}]{{end}}", {"L": []}) == "[0]"


def test_range_over_a_map_visits_keys_in_sorted_order() -> None:
    assert render("{{range $k, $v := .M}}{{$k}}={{$v}} {{end}}", {"M": {"b": 2, "a": 1}}) == "a=1 b=2 "


def test_range_break_and_continue() -> None:
    source = '{{range .L}}{{if eq . "b"}}{{continue}}{{end}}{{if eq . "d"}}{{break}}{{end}}{{.}}{{end}}'
    assert render(source, {"L": ["a", "b", "c", "d", "e"]}) == "ac"


def test_variables_assigned_inside_range_persist() -> None:
    source = '{{$t := ""}}{{range .L}}{{$t = print $t . " "}}{{end}}[{{$t}}]'
    assert render(source, {"L": ["x", "y"]}) == "[x y ]"


def test_with_rebinds_dot_or_runs_else() -> None:
    source = "{{with .A}}<{{.B}}>{{else}}none{{end}}"
    assert render(source, {"A": {"B": "b"}}) == "<b>"
    assert render(source, {"A": ""}) == "none"


# ---------------------------------------------------------------- fields, pipelines, literals, functions


def test_nested_fields_on_maps_structs_variables_and_subexpressions() -> None:
    data = {"A": {"B": {"C": "deep"}}, "M": Message(RoleName="user")}
    assert render("{{.A.B.C}} {{.M.RoleName}} {{$x := .A}}{{$x.B.C}} {{(.A.B).C}}", data) == "deep user deep deep"


def test_pipelines_pass_the_value_as_the_last_argument() -> None:
    assert render('{{.S | printf "%s-%s" "a"}} {{.S | trim | upper}}', {"S": "  b  "}) == "a-  b   B"


def test_string_raw_and_number_literals() -> None:
    assert render('{{"tab\\t\\"q\\" \\u00e9"}}|{{`raw\\n`}}|{{0x1F}} {{-3}} {{1.50}} {{1e6}}') == 'tab\t"q" é|raw\\n|31 -3 1.5 1e+06'


def test_print_and_printf_follow_fmt() -> None:
    assert render('{{print "a" 1 2 "b" true 3}}') == "a1 2btrue 3"  # a space only between non-strings
    source = '{{printf "%s|%d|%v|%q|%5s|%-4s|%03d|%.2f|%x|%%" "s" 42 .L "q" "ab" "ab" 7 3.14159 255}}'
    assert render(source, {"L": [1, "a", None]}) == 's|42|[1 a <nil>]|"q"|   ab|ab  |007|3.14|ff|%'
    assert render('{{printf "%d %s" "x"}}') == "%!d(string=x) %!s(MISSING)"


def test_len_and_index() -> None:
    data = {"L": ["a", "b"], "M": {"k": "v"}, "S": "héllo"}
    assert render('{{len .L}} {{len .M}} {{len .S}} {{index .L 1}} {{index .M "k"}}', data) == "2 1 6 b v"


def test_to_json_marshals_like_go() -> None:
    data = {"b": "<a> & \"q\"\n", "a": [1, 2.5, None, True, 1e21, 100.0]}
    assert render("{{toJson .}}", data) == '{"a":[1,2.5,null,true,1e+21,100],"b":"\\u003ca\\u003e \\u0026 \\"q\\"\\n"}'


def test_sprig_string_functions() -> None:
    source = (
        '{{contains "b" "abc"}} {{hasPrefix "a" "abc"}} {{hasSuffix "x" "abc"}} {{replace "a" "o" "banana"}} '
        '{{lower "AbC"}} {{join ", " .L}} {{default "none" .Empty}} {{default "none" .Full}} {{trim "  x "}}'
    )
    assert render(source, {"L": ["a", "b"], "Empty": "", "Full": "f"}) == "true true false bonono abc a, b none f x"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("Hi {{ .Input ", "unclosed action"),
        ("{{if .A}}x", "{{if}} has no matching {{end}}"),
        ("{{range .L}}x{{else}}y", "{{range}} has no matching {{end}}"),
        ("x{{end}}", "unexpected {{end}}"),
        ("{{ frobnicate .A }}", "function 'frobnicate' not defined"),
        ("{{ .A | frobnicate }}", "function 'frobnicate' not defined"),
        ("{{ $nope }}", "undefined variable '$nope'"),
        ("{{/* never closed", "unclosed comment"),
        ('{{define "x"}}{{end}}', "{{define}} is not supported"),
        ("{{ .A .B }}", "can't give argument to non-function .A"),
        ("{{len}}", "wrong number of args for len"),
        ('{{ "unterminated }}', "unterminated quoted string"),
    ],
)
def test_bad_templates_raise_template_error_naming_the_problem(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(source, {"A": 1, "B": 2, "L": []})
    assert message in caught.value.message
    assert caught.value.code == "invalid_template"
    assert isinstance(caught.value, InvalidModelConfig)


def test_error_names_line_column_and_action() -> None:
    with pytest.raises(TemplateError) as caught:
        render("first line\nsecond {{ .Bogus }} line", Message())
    message = caught.value.message
    assert message.startswith("line 2, column 11: can't evaluate field Bogus in type Message")
    assert "{{ .Bogus }}" in message


def test_field_of_nil_and_of_a_string_are_errors() -> None:
    with pytest.raises(TemplateError, match=r"nil pointer evaluating interface \{\}\.Name"):
        render("{{.FunctionCall.Name}}", Message())
    with pytest.raises(TemplateError, match="can't evaluate field X in type string"):
        render("{{.Content.X}}", Message(Content="text"))


def test_function_errors_name_the_function() -> None:
    with pytest.raises(TemplateError, match="error calling index: index out of range: 3"):
        render("{{index .L 3}}", {"L": [1]})
    with pytest.raises(TemplateError, match="error calling upper: wrong type for value; expected string; got int"):
        render("{{upper 3}}")


# ---------------------------------------------------------------- the cache


def test_cache_compiles_each_source_once_and_evicts_least_recently_used() -> None:
    cache = TemplateCache(max_entries=2)
    first = cache.compile("{{.A}}")
    assert cache.compile("{{.A}}") is first
    cache.compile("{{.B}}")
    cache.compile("{{.A}}")  # now most recently used
    cache.compile("{{.C}}")  # evicts {{.B}}
    assert len(cache) == 2
    assert cache.compile("{{.A}}") is first


def test_cache_does_not_keep_templates_that_fail_to_parse() -> None:
    cache = TemplateCache()
    for _ in range(2):
        with pytest.raises(TemplateError):
            cache.compile("{{if}}")
    assert len(cache) == 0


def test_a_compiled_template_renders_concurrently() -> None:
    template = parse_template("{{range .L}}{{.}}{{end}}")
    results: list[str] = []

    def work(n: int) -> None:
        results.append(template.render({"L": [n] * 200}))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [str(n) * 200 for n in range(8)]
