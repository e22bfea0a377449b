"""From positioned lines of PDF text to blocks: paragraphs by vertical gaps, headings by outline or size.

Pure functions over `Line` values (no PDF library), so the rules are testable on their own. A PDF has
no paragraphs, only lines: a new paragraph starts where the gap to the previous line is clearly wider
than the page's usual line pitch, the font size changes, or the text jumps up (a new column). Headings
come from the outline (bookmarks) matched to the text on their target page; a PDF without an outline
gets headings from lines set clearly larger than the body text.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from appliance.knowledge.document import Block
from appliance.knowledge.extraction.formats.blocks import BlockList, clean_inline

MAX_HEADING_CHARS = 200
HEADING_SIZE_RATIO = 1.2  # a line this much larger than the body text may be a heading
_WORD_CHARS = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Line:
    text: str
    top: float | None = None  # PDF units, y grows upwards; None when the geometry is unknown
    bottom: float | None = None
    size: float = 0.0  # font size of its first character


@dataclass(frozen=True)
class OutlineEntry:
    title: str
    level: int  # 1-based
    page: int  # 1-based


def layout(pages: Sequence[Sequence[Line]], outline: Sequence[OutlineEntry]) -> tuple[Block, ...]:
    """The blocks of a document whose page n (1-based) holds the lines pages[n-1]."""
    by_page: dict[int, list[OutlineEntry]] = {}
    for entry in outline:
        by_page.setdefault(entry.page, []).append(entry)
    body_size = _body_size(pages)
    size_levels = {} if outline else _size_levels(pages, body_size)
    out = BlockList()
    for number, lines in enumerate(pages, start=1):
        out.page = number
        headings = _match_outline(lines, by_page.get(number, []))
        for entry in by_page.get(number, []):
            if entry not in headings.values():  # not found in the text: still a heading of this page
                out.heading(entry.title, entry.level)
        for group, level in _paragraphs(lines, headings, size_levels):
            text = join_lines([line.text for line in group])
            if level:
                out.heading(text, level)
            else:
                out.paragraph(text)
    return out.blocks()


def join_lines(lines: Sequence[str]) -> str:
    """One paragraph from its lines; a word hyphenated across a line break is joined again."""
    text = ""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if text.endswith("-") and len(text) > 1 and text[-2].isalpha() and text[-2].islower() and line[0].islower():
            text = text[:-1] + line
        else:
            text = f"{text} {line}" if text else line
    return text


def _key(text: str) -> str:
    return _WORD_CHARS.sub("", text.casefold())


def _match_outline(lines: Sequence[Line], entries: Sequence[OutlineEntry]) -> dict[int, OutlineEntry]:
    """Line index -> outline entry, for each entry whose title is the text of one or a few lines."""
    found: dict[int, OutlineEntry] = {}
    for entry in entries:
        key = _key(entry.title)
        if not key:
            continue
        for start in range(len(lines)):
            if start in found:
                continue
            joined = ""
            for end in range(start, min(start + 4, len(lines))):
                if end in found:
                    break
                joined += _key(lines[end].text)
                if joined == key:
                    for index in range(start, end + 1):
                        found[index] = entry
                    break
                if not key.startswith(joined) or not joined:
                    break
            if entry in found.values():
                break
    return found


def _paragraphs(
    lines: Sequence[Line], headings: dict[int, OutlineEntry], size_levels: dict[float, int]
) -> list[tuple[list[Line], int]]:
    """Consecutive lines grouped into (lines, heading level or 0)."""
    pitch = _typical_pitch(lines)
    groups: list[tuple[list[Line], int]] = []
    previous: Line | None = None
    previous_level = -1
    for index, line in enumerate(lines):
        if not line.text.strip():
            continue
        if index in headings:
            level = headings[index].level
        elif _heading_by_size(line, size_levels):
            level = size_levels[_size_key(line.size)]
        else:
            level = 0
        continues_heading = index in headings and headings.get(index - 1) is headings[index]
        starts_heading = index in headings and not continues_heading
        if (
            previous is None
            or level != previous_level
            or starts_heading
            or (not continues_heading and _breaks(previous, line, pitch))
        ):
            groups.append(([], level))
        groups[-1][0].append(line)
        previous, previous_level = line, level
    return groups


def _breaks(previous: Line, line: Line, pitch: float | None) -> bool:
    if previous.top is None or line.top is None or previous.bottom is None or line.bottom is None:
        return False
    size = max(previous.size, line.size, 1.0)
    if abs(previous.size - line.size) > 0.15 * size:
        return True
    step = previous.bottom - line.bottom  # baseline to baseline, downwards
    if step < -0.5 * size:  # jumped up: a new column or a text box placed out of order
        return True
    if step > 4 * size:  # a wide gap, whatever the page's pitch
        return True
    if pitch is not None:
        return step > 1.3 * pitch + 0.5
    return step > 1.8 * size


def _typical_pitch(lines: Sequence[Line]) -> float | None:
    """The median baseline distance between consecutive same-size lines of a page."""
    steps = []
    for previous, line in zip(lines, lines[1:], strict=False):
        if previous.bottom is None or line.bottom is None or abs(previous.size - line.size) > 0.5:
            continue
        step = previous.bottom - line.bottom
        if 0.5 * line.size < step < 3 * max(line.size, 1.0):
            steps.append(step)
    return statistics.median(steps) if len(steps) >= 2 else None


def _size_key(size: float) -> float:
    return round(size * 2) / 2


def _body_size(pages: Sequence[Sequence[Line]]) -> float:
    """The font size most of the text is set in (by characters)."""
    weights: dict[float, int] = {}
    for lines in pages:
        for line in lines:
            if line.size > 0:
                weights[_size_key(line.size)] = weights.get(_size_key(line.size), 0) + len(line.text)
    return max(weights, key=lambda size: weights[size]) if weights else 0.0


def _size_levels(pages: Sequence[Sequence[Line]], body_size: float) -> dict[float, int]:
    """Heading level per font size larger than the body text: the largest is level 1."""
    if body_size <= 0:
        return {}
    sizes = {
        _size_key(line.size)
        for lines in pages
        for line in lines
        if line.size >= body_size * HEADING_SIZE_RATIO and 0 < len(clean_inline(line.text)) <= MAX_HEADING_CHARS
    }
    return {size: min(6, rank) for rank, size in enumerate(sorted(sizes, reverse=True), start=1)}


def _heading_by_size(line: Line, size_levels: dict[float, int]) -> bool:
    return bool(size_levels) and _size_key(line.size) in size_levels and len(line.text) <= MAX_HEADING_CHARS
