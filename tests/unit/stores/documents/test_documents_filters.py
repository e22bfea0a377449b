"""OpenAI attribute filters: every comparison, nesting, type rules, missing keys, and a clear
InvalidInput for each malformed shape; filter_files applies them to a store's files."""

from __future__ import annotations

from typing import Any

import pytest

from stores.documents.filters import compile_filter
from stores.documents.library import DocumentLibrary
from stores.errors import InvalidInput

ATTRS: dict[str, Any] = {"author": "ann", "year": 2021, "score": 4.5, "draft": False, "tag": "b"}


def cmp(kind: str, key: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "key": key, "value": value}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (cmp("eq", "author", "ann"), True),
        (cmp("eq", "author", "bob"), False),
        (cmp("eq", "year", 2021.0), True),
        (cmp("eq", "draft", False), True),
        (cmp("eq", "draft", 0), False),  # booleans equal only booleans
        (cmp("eq", "year", "2021"), False),
        (cmp("ne", "author", "bob"), True),
        (cmp("ne", "author", "ann"), False),
        (cmp("ne", "missing", "x"), False),  # a missing key matches no comparison
        (cmp("gt", "year", 2020), True),
        (cmp("gt", "year", 2021), False),
        (cmp("gte", "year", 2021), True),
        (cmp("lt", "score", 5), True),
        (cmp("lt", "score", 4.5), False),
        (cmp("lte", "score", 4.5), True),
        (cmp("gt", "author", "am"), True),  # strings order lexicographically
        (cmp("gt", "author", 1), False),  # across kinds: false, not an error
        (cmp("lt", "missing", 1), False),
        (cmp("in", "tag", ["a", "b"]), True),
        (cmp("in", "tag", ["c"]), False),
        (cmp("in", "year", [2020, 2021]), True),
        (cmp("nin", "tag", ["c", "d"]), True),
        (cmp("nin", "tag", ["b"]), False),
        (cmp("nin", "missing", ["b"]), False),
        (cmp("in", "tag", []), False),
        ({"type": "and", "filters": [cmp("eq", "author", "ann"), cmp("gte", "year", 2021)]}, True),
        ({"type": "and", "filters": [cmp("eq", "author", "ann"), cmp("gt", "year", 2021)]}, False),
        ({"type": "or", "filters": [cmp("eq", "author", "bob"), cmp("eq", "tag", "b")]}, True),
        ({"type": "or", "filters": [cmp("eq", "author", "bob"), cmp("eq", "tag", "c")]}, False),
        (
            {
                "type": "and",
                "filters": [
                    {"type": "or", "filters": [cmp("eq", "author", "bob"), cmp("lt", "score", 5)]},
                    {"type": "and", "filters": [cmp("eq", "draft", False), cmp("nin", "tag", ["x"])]},
                ],
            },
            True,
        ),
    ],
)
def test_filter_semantics(spec: dict, expected: bool) -> None:
    assert compile_filter(spec)(ATTRS) is expected


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("eq", "must be an object"),
        ({}, "type must be one of"),
        ({"type": "like", "key": "a", "value": 1}, "type must be one of"),
        ({"type": "eq", "value": 1}, "key must be a non-empty string"),
        ({"type": "eq", "key": "", "value": 1}, "key must be a non-empty string"),
        ({"type": "eq", "key": "a"}, "value is required"),
        ({"type": "eq", "key": "a", "value": [1]}, "must be a string, a finite number or a boolean"),
        ({"type": "eq", "key": "a", "value": None}, "must be a string"),
        ({"type": "eq", "key": "a", "value": float("inf")}, "finite"),
        ({"type": "gt", "key": "a", "value": True}, "not booleans"),
        ({"type": "in", "key": "a", "value": "x"}, "must be a list"),
        ({"type": "in", "key": "a", "value": [{"x": 1}]}, "filters.value[0]"),
        ({"type": "and", "filters": []}, "non-empty list"),
        ({"type": "or"}, "non-empty list"),
        ({"type": "and", "filters": [cmp("eq", "a", 1), {"type": "?"}]}, "filters.filters[1].type"),
    ],
)
def test_bad_filters_are_invalid_input_naming_the_part(spec: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_filter(spec)
    assert fragment in caught.value.message


def test_unknown_fields_are_ignored() -> None:
    assert compile_filter({"type": "eq", "key": "year", "value": 2021, "filters": None, "note": "x"})(ATTRS)


def test_too_deep_nesting_is_refused() -> None:
    spec: dict[str, Any] = cmp("eq", "a", 1)
    for _ in range(20):
        spec = {"type": "and", "filters": [spec]}
    with pytest.raises(InvalidInput):
        compile_filter(spec)


def test_filter_files_over_stores(shelf, library: DocumentLibrary, store_id: str) -> None:
    a = shelf.document(store_id, ["a"], attributes={"lang": "en", "year": 2020})
    b = shelf.document(store_id, ["b"], attributes={"lang": "de", "year": 2024})
    other = library.create_store(name="other").id
    c = shelf.document(other, ["c"], attributes={"lang": "en"})
    assert library.filter_files([store_id], None) is None
    assert library.filter_files([store_id], cmp("eq", "lang", "en")) == {a.file_id}
    assert library.filter_files([store_id, other], cmp("eq", "lang", "en")) == {a.file_id, c.file_id}
    assert library.filter_files([store_id], cmp("gte", "year", 2021)) == {b.file_id}
    assert library.filter_files([store_id], cmp("eq", "lang", "fr")) == set()
    library.update_attributes(store_id, b.file_id, {"lang": "en"})
    assert library.filter_files([store_id], cmp("eq", "lang", "en")) == {a.file_id, b.file_id}
    with pytest.raises(InvalidInput):
        library.filter_files([store_id], {"type": "eq"})
