"""HTML via selectolax (lexbor): headings, paragraphs, lists, tables and preformatted code, in order.

Page chrome is left out: scripts, styles, forms, and navigation, headers, footers and asides that are
not part of an article. The charset comes from a BOM or a <meta> tag; otherwise UTF-8, with bad bytes
replaced rather than refused.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser, LexborNode

from appliance.knowledge.document import ExtractedDocument
from appliance.knowledge.extraction.formats.blocks import BlockList, clean_inline, list_item
from appliance.knowledge.extraction.limits import ExtractionLimits
from appliance.knowledge.extraction.formats.text import BOMS

SKIPPED = frozenset(
    "script style noscript template svg math iframe object embed canvas form button select textarea input"
    " nav dialog head".split()
)
CHROME = frozenset({"header", "footer", "aside"})  # skipped unless inside an article or main
CONTENT = frozenset({"article", "main"})
HEADINGS = {f"h{n}": n for n in range(1, 7)}
# Elements that end the running paragraph; everything else is inline and joins it.
BLOCK_ELEMENTS = frozenset(
    "address article aside blockquote body center dd details div dl dt fieldset figcaption figure footer header"
    " hgroup hr html li main p section summary caption tr td th".split()
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def decode_html(data: bytes) -> str:
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    match = _META_CHARSET.search(data[:4096])
    encoding = "utf-8"
    if match:
        try:
            encoding = codecs.lookup(match.group(1).decode("ascii")).name
        except LookupError:
            pass
    if encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-32"):  # a meta tag in ASCII cannot be UTF-16
        encoding = "utf-8"
    if encoding == "latin-1":
        encoding = "cp1252"  # as browsers do: ISO-8859-1 labels mean Windows-1252
    return data.decode(encoding, errors="replace")


def extract(path: Path, limits: ExtractionLimits, progress: Callable[[int, int | None], None]) -> ExtractedDocument:
    tree = LexborHTMLParser(decode_html(path.read_bytes()))
    title_node = tree.css_first("title")
    title = clean_inline(title_node.text()) if title_node is not None else ""
    blocks = BlockList()
    root = tree.body or tree.root
    if root is not None:
        _Walker(blocks).block(root, in_content=False)
    return ExtractedDocument(blocks=blocks.blocks(), pages=None, title=title or None, format="html")


class _Walker:
    """Depth-first over the DOM, keeping a buffer of inline text that block elements flush."""

    def __init__(self, out: BlockList) -> None:
        self.out = out
        self.inline: list[str] = []

    def flush(self) -> None:
        if self.inline:
            self.out.paragraph("".join(self.inline))
            self.inline = []

    def block(self, node: LexborNode, in_content: bool) -> None:
        for child in node.iter(include_text=True):
            self.visit(child, in_content)
        self.flush()

    def visit(self, node: LexborNode, in_content: bool) -> None:
        tag = node.tag or ""
        if tag == "-text":
            self.inline.append(node.text(deep=False) or "")
            return
        if tag.startswith(("-", "!", "#")) or tag in SKIPPED:
            return
        if tag in CHROME and not in_content:
            return
        if tag == "br":
            self.inline.append(" ")
            return
        if tag in HEADINGS:
            self.flush()
            self.out.heading(node.text(deep=True, separator=" "), HEADINGS[tag])
        elif tag in ("ul", "ol"):
            self.flush()
            self.out.items(_list_lines(node, 0))
        elif tag == "table":
            self.flush()
            self.out.table(_table_rows(node))
        elif tag == "pre":
            self.flush()
            self.out.code(node.text(deep=True))
        elif tag in BLOCK_ELEMENTS or tag in CONTENT:
            self.flush()
            self.block(node, in_content or tag in CONTENT)
        else:
            for child in node.iter(include_text=True):  # inline element: its text joins the paragraph
                self.visit(child, in_content)


def _inline_text(node: LexborNode) -> str:
    """The text of a node without its nested lists and skipped elements."""
    parts: list[str] = []
    for child in node.iter(include_text=True):
        tag = child.tag or ""
        if tag == "-text":
            parts.append(child.text(deep=False) or "")
        elif tag in ("ul", "ol") or tag in SKIPPED or tag.startswith(("-", "!", "#")):
            continue
        else:
            parts.append(
                " " + _inline_text(child) + " " if tag in BLOCK_ELEMENTS or tag == "br" else _inline_text(child)
            )
    return "".join(parts)


def _list_lines(node: LexborNode, depth: int) -> list[str]:
    ordered = node.tag == "ol"
    number = _start(node) if ordered else 0
    lines: list[str] = []
    for item in node.iter():
        if item.tag != "li":
            continue
        lines.append(list_item(f"{number}." if ordered else "-", _inline_text(item), depth))
        number += 1
        for nested in item.traverse():
            if nested.tag in ("ul", "ol") and _same(_parent_item(nested), item):
                lines.extend(_list_lines(nested, depth + 1))
    return lines


def _parent_item(node: LexborNode) -> LexborNode | None:
    parent = node.parent
    while parent is not None and parent.tag != "li":
        parent = parent.parent
    return parent


def _same(a: LexborNode | None, b: LexborNode) -> bool:
    """Node wrappers are made afresh on each access: compare the underlying DOM nodes."""
    return a is not None and a.mem_id == b.mem_id


def _start(node: LexborNode) -> int:
    try:
        return int((node.attributes.get("start") or "1").strip())
    except ValueError:
        return 1


def _table_rows(table: LexborNode) -> list[list[str]]:
    rows = []
    for row in table.css("tr"):
        if not _same(_owner_table(row), table):  # rows of a nested table belong to that table's cell
            continue
        rows.append([_inline_text(cell) for cell in row.iter() if cell.tag in ("td", "th")])
    caption = table.css_first("caption")
    if caption is not None and _same(_owner_table(caption), table):
        rows.insert(0, [_inline_text(caption)])
    return rows


def _owner_table(node: LexborNode) -> LexborNode | None:
    parent = node.parent
    while parent is not None and parent.tag != "table":
        parent = parent.parent
    return parent
