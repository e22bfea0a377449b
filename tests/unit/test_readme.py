"""The README documents every setting: a setting added without a line in its table fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance.config import Settings, env_names, flag_names

README = Path(__file__).resolve().parents[2] / "README.md"


def settings_rows() -> dict[str, str]:
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`(--[a-z0-9-]+)`", line)
        if match:
            rows[match.group(1)] = line
    return rows


@pytest.mark.parametrize("field", list(Settings.model_fields))
def test_setting_is_in_the_readme_table(field: str) -> None:
    rows = settings_rows()
    flag = flag_names(field)[0]
    assert flag in rows, f"README settings table has no row for {flag}"
    for name in env_names(field):
        assert name in rows[flag], f"README row for {flag} does not name {name}"


def test_readme_table_has_no_stale_rows() -> None:
    known = {flag_names(field)[0] for field in Settings.model_fields}
    assert set(settings_rows()) <= known


def test_readme_names_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "./scripts/run" in text and "./scripts/test" in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "./scripts/test" in ci
