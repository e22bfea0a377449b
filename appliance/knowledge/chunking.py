"""Chunking: an ExtractedDocument cut into embeddable chunks that follow its headings.

Owns the chunking options (OpenAI's static rules plus the embedder's hard limit) and the cut itself:
sections by heading, atomic pieces (sentences, lines, words, characters) counted by the embedder's
tokenizer in a few batched calls, greedy packing, overlap inside a section, and a final check.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from appliance.knowledge.document import Block, ExtractedDocument

logger = logging.getLogger(__name__)

CountTokens = Callable[[list[str]], Sequence[int]]

PATH_SEPARATOR = " › "
STATIC_MIN_TOKENS = 100
STATIC_MAX_TOKENS = 4096
# Heading path elements are shortened to these lengths (characters) until the path takes at most a
# third of a chunk; the last resort keeps only the deepest heading, then no path at all.
_PATH_CAPS = (200, 64, 24, 10)
# How a piece too big for a chunk is cut next: sentences, lines, words; characters come last.
_SPLITTERS = (
    re.compile(r"[.!?…]+[\"'”’)\]]*\s+|[。！？]+[」』）\"'”’]*\s*"),
    re.compile(r"\n+"),
    re.compile(r"\s+"),
)
_SENTENCES, _LINES, _WORDS, _CHARACTERS = 0, 1, 2, 3
_MAX_CHECK_ROUNDS = 40


@dataclass(frozen=True)
class Chunk:
    text: str  # the chunk's content: exactly ExtractedDocument.text()[char_start:char_end]
    heading_path: tuple[str, ...]
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int
    tokens: int  # tokens of embedding_text() by the embedder's tokenizer, special tokens included

    def embedding_text(self) -> str:
        if self.heading_path:
            return PATH_SEPARATOR.join(self.heading_path) + "\n" + self.text
        return self.text


@dataclass(frozen=True)
class ChunkingOptions:
    max_tokens: int  # most tokens per chunk's embedding text
    overlap_tokens: int  # tail of the previous chunk repeated, within a section
    model_limit: int  # what the embedder reads; a chunk never exceeds it

    def __post_init__(self) -> None:
        if self.model_limit < 1:
            raise ValueError(f"model_limit must be positive, got {self.model_limit}")
        if not 1 <= self.max_tokens <= self.model_limit:
            raise ValueError(
                f"max_tokens must be between 1 and the model's limit of {self.model_limit} tokens, "
                f"got {self.max_tokens}"
            )
        if not 0 <= self.overlap_tokens < self.max_tokens:
            raise ValueError(
                f"overlap_tokens must be at least 0 and below max_tokens ({self.max_tokens}), "
                f"got {self.overlap_tokens}"
            )


def auto_options(model_limit: int) -> ChunkingOptions:
    """OpenAI's auto strategy (800/400) scaled to what the model reads: at most 256 tokens less a
    small margin, with an eighth of that as overlap."""
    if model_limit < 32:
        raise ValueError(f"the embedding model reads only {model_limit} tokens; chunking needs at least 32")
    ceiling = min(model_limit, 256)
    max_tokens = ceiling - max(4, ceiling // 16)
    return ChunkingOptions(max_tokens=max_tokens, overlap_tokens=max_tokens // 8, model_limit=model_limit)


def static_options(max_chunk_size_tokens: int, chunk_overlap_tokens: int, model_limit: int) -> ChunkingOptions:
    """OpenAI's static strategy: 100..4096 tokens, overlap at most half; and no more than the model reads."""
    for name, value in (
        ("max_chunk_size_tokens", max_chunk_size_tokens),
        ("chunk_overlap_tokens", chunk_overlap_tokens),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if not STATIC_MIN_TOKENS <= max_chunk_size_tokens <= STATIC_MAX_TOKENS:
        raise ValueError(
            f"max_chunk_size_tokens must be between {STATIC_MIN_TOKENS} and {STATIC_MAX_TOKENS}, "
            f"got {max_chunk_size_tokens}"
        )
    if max_chunk_size_tokens > model_limit:
        raise ValueError(
            f"max_chunk_size_tokens {max_chunk_size_tokens} exceeds the embedding model's limit of "
            f"{model_limit} tokens; use at most {model_limit}"
        )
    if chunk_overlap_tokens < 0 or chunk_overlap_tokens * 2 > max_chunk_size_tokens:
        raise ValueError(
            f"chunk_overlap_tokens must be between 0 and half of max_chunk_size_tokens "
            f"({max_chunk_size_tokens // 2}), got {chunk_overlap_tokens}"
        )
    return ChunkingOptions(
        max_tokens=max_chunk_size_tokens, overlap_tokens=chunk_overlap_tokens, model_limit=model_limit
    )


def chunk_document(doc: ExtractedDocument, count_tokens: CountTokens, options: ChunkingOptions) -> list[Chunk]:
    """Chunks of `doc` in document order. `count_tokens` is called with many texts at a time (a
    handful of calls per document); every chunk's embedding text is counted before it is returned."""
    return _Chunker(doc, count_tokens, options).run()


@dataclass(slots=True)
class _Piece:
    start: int  # span in the document text, no surrounding whitespace
    end: int
    block: int
    level: int  # which cut made it (_SENTENCES.._CHARACTERS)
    tokens: int = -1  # without the tokenizer's fixed overhead; -1 until counted


@dataclass(slots=True)
class _Section:
    path: tuple[str, ...]  # every open heading, in full
    heading: int | None  # the block that opens it
    body: list[int] = field(default_factory=list)
    shown_path: tuple[str, ...] = ()  # the path as chunks carry it (maybe shortened)
    budget: int = 0  # tokens left for text once the overhead and the path are paid


@dataclass(slots=True)
class _Draft:
    section: _Section
    pieces: list[_Piece]
    repeated: int  # leading pieces that repeat the previous chunk


class _Chunker:
    def __init__(self, doc: ExtractedDocument, count_tokens: CountTokens, options: ChunkingOptions) -> None:
        self.blocks: tuple[Block, ...] = doc.blocks
        self.text = doc.text()
        self.spans = doc.spans()
        self.count_tokens = count_tokens
        self.options = options
        self.calls = 0
        self.overhead = 0
        self.path_tokens: dict[tuple[str, ...], int] = {}

    def run(self) -> list[Chunk]:
        sections = self._sections()
        if not sections:
            return []
        pieces = {i: self._first_pieces(i) for section in sections for i in self._blocks_of(section)}
        self._count_and_cut(sections, pieces)
        drafts: list[_Draft] = []
        for position, section in enumerate(sections):
            following = sections[position + 1] if position + 1 < len(sections) else None
            drafts.extend(self._pack(section, following, pieces))
        chunks = self._check(drafts)
        logger.debug("chunked blocks=%d chunks=%d count_calls=%d", len(self.blocks), len(chunks), self.calls)
        return chunks

    def _count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        counts = [int(n) for n in self.count_tokens(texts)]
        if len(counts) != len(texts):
            raise ValueError(f"count_tokens returned {len(counts)} counts for {len(texts)} texts")
        self.calls += 1
        return counts

    # --- structure -------------------------------------------------------------------------------

    def _sections(self) -> list[_Section]:
        open_headings: list[tuple[int, str]] = []
        sections = [_Section(path=(), heading=None)]
        for index, block in enumerate(self.blocks):
            if not block.text.strip():
                continue
            if block.kind == "heading":
                level = min(max(block.level, 1), 6)
                while open_headings and open_headings[-1][0] >= level:
                    open_headings.pop()
                open_headings.append((level, " ".join(block.text.split())))
                sections.append(_Section(path=tuple(title for _, title in open_headings), heading=index))
            else:
                sections[-1].body.append(index)
        return [s for s in sections if s.body or s.heading is not None]

    @staticmethod
    def _blocks_of(section: _Section) -> list[int]:
        return ([section.heading] if section.heading is not None else []) + section.body

    def _first_pieces(self, index: int) -> list[_Piece]:
        start, end = self.spans[index]
        level = _SENTENCES if self.blocks[index].kind in ("paragraph", "heading") else _LINES
        return [_Piece(s, e, index, level) for s, e in _cut(self.text, start, end, _SPLITTERS[level])]

    # --- counting ----------------------------------------------------------------------------------

    def _count_and_cut(self, sections: list[_Section], pieces: dict[int, list[_Piece]]) -> None:
        """Count every piece (and path) in as few calls as possible, cutting pieces too big for their
        section until all fit. The first call also measures the overhead (count of "")."""
        limit = self.options.max_tokens
        path_cap = limit // 3
        section_of = {i: s for s in sections for i in self._blocks_of(s)}
        paths = list(dict.fromkeys(_shorten(s.path, _PATH_CAPS[0]) for s in sections if s.path))
        room: dict[int, int] = {}  # per section: tokens a piece may take, counting the path at its cap
        first = True
        while True:
            todo = [p for block in pieces.values() for p in block if p.tokens < 0]
            texts = ([""] if first else []) + [_prefix(p) for p in paths]
            counts = self._count(texts + [self.text[p.start : p.end] for p in todo])
            if first:
                self.overhead = counts.pop(0)
            for path, n in zip(paths, counts):
                self.path_tokens[path] = n - self.overhead
            for piece, n in zip(todo, counts[len(paths) :]):
                piece.tokens = n - self.overhead
            paths = []
            if first:
                # a path over its cap is shortened until it fits (the variants are counted next round),
                # so cutting can already assume the cap
                for s in sections:
                    path_tokens = self.path_tokens.get(_shorten(s.path, _PATH_CAPS[0]), 0)
                    if path_tokens > path_cap:
                        paths.extend(v for v in _path_variants(s.path)[1:] if v not in self.path_tokens)
                    room[id(s)] = limit - self.overhead - min(path_tokens, path_cap)
                paths = list(dict.fromkeys(paths))
                if min(room.values()) < 1:
                    raise ValueError(
                        f"max_tokens {limit} leaves no room beside the tokenizer's {self.overhead} fixed tokens"
                    )
                first = False
            changed = False
            for index, block in pieces.items():
                fit = room[id(section_of[index])]
                if any(p.tokens > fit for p in block):
                    finer = [q for p in block for q in (_split(self.text, p, fit) if p.tokens > fit else [p])]
                    changed = changed or len(finer) > len(block)
                    pieces[index] = finer
            if not changed and not paths:
                break
        for s in sections:
            variants = _path_variants(s.path) if s.path else [()]
            s.shown_path = next(v for v in variants if self.path_tokens.get(v, 0) <= path_cap)
            s.budget = limit - self.overhead - self.path_tokens.get(s.shown_path, 0)

    # --- packing -----------------------------------------------------------------------------------

    def _pack(self, section: _Section, following: _Section | None, pieces: dict[int, list[_Piece]]) -> list[_Draft]:
        blocks = list(section.body)
        if section.heading is not None and self._heading_needs_text(section, following):
            blocks.insert(0, section.heading)
        budget, overlap = section.budget, self.options.overlap_tokens
        drafts: list[_Draft] = []
        current: list[_Piece] = []
        repeated = 0
        used = 0

        def close(next_tokens: int) -> None:
            nonlocal current, repeated, used
            if len(current) > repeated:
                drafts.append(_Draft(section, current, repeated))
            tail: list[_Piece] = []
            tail_tokens = 0
            for piece in reversed(current[1:]):  # never repeat a whole chunk
                if tail_tokens + piece.tokens > min(overlap, budget - next_tokens):
                    break
                tail.insert(0, piece)
                tail_tokens += piece.tokens
            current, repeated, used = tail, len(tail), tail_tokens

        for index in blocks:
            block = pieces[index]
            total = sum(p.tokens for p in block)
            if used + total > budget and total <= budget:
                close(total)  # the block fits a chunk of its own: keep it whole
            if used + total <= budget:
                current.extend(block)
                used += total
                continue
            for piece in block:
                if used + piece.tokens > budget:
                    if len(current) > repeated:
                        close(piece.tokens)
                    else:  # nothing new yet: drop the repeated tail rather than overflow
                        current, repeated, used = [], 0, 0
                current.append(piece)
                used += piece.tokens
        close(budget)
        return drafts

    def _heading_needs_text(self, section: _Section, following: _Section | None) -> bool:
        """A heading lives in its section's path; its text joins the chunks when the path shortened
        it, or when nothing below it would carry it (an empty section with no subsections)."""
        title = section.path[-1]
        if title not in section.shown_path:
            return True
        if section.body:
            return False
        below = following is not None and following.path[: len(section.path)] == section.path
        return not (below and title in following.shown_path)

    # --- checking ----------------------------------------------------------------------------------

    def _check(self, drafts: list[_Draft]) -> list[Chunk]:
        """Count each chunk as it will be embedded; halve the rare one over the limit (counts of
        pieces do not add up exactly) and count the halves again, keeping document order."""
        items: list[_Draft | Chunk] = list(drafts)
        for _ in range(_MAX_CHECK_ROUNDS):
            todo = [item for item in items if isinstance(item, _Draft)]
            if not todo:
                return [item for item in items if isinstance(item, Chunk)]
            candidates = {id(d): self._chunk(d, 0) for d in todo}
            counts = self._count([c.embedding_text() for c in candidates.values()])
            fits = {key: n for key, n in zip(candidates, counts) if n <= self.options.max_tokens}
            following: list[_Draft | Chunk] = []
            for item in items:
                if isinstance(item, Chunk):
                    following.append(item)
                elif id(item) in fits:
                    following.append(replace(candidates[id(item)], tokens=fits[id(item)]))
                else:
                    logger.debug("chunk over limit; halving limit=%d", self.options.max_tokens)
                    following.extend(self._halve(item))
            items = following
        raise ValueError(f"could not cut the document into chunks of at most {self.options.max_tokens} tokens")

    def _halve(self, draft: _Draft) -> list[_Draft]:
        pieces = draft.pieces
        if len(pieces) == 1:
            piece = pieces[0]
            middle = _middle(self.text, piece.start, piece.end)
            if middle is None:
                raise ValueError(f"a single character does not fit in {self.options.max_tokens} tokens")
            halves = [
                _Piece(s, e, piece.block, _CHARACTERS, max(1, piece.tokens * (e - s) // (piece.end - piece.start)))
                for s, e in ((piece.start, middle[0]), (middle[1], piece.end))
            ]
            return [_Draft(draft.section, [h], 0) for h in halves]
        total = sum(p.tokens for p in pieces)
        used, cut = 0, 1
        for cut in range(1, len(pieces)):
            used += pieces[cut - 1].tokens
            if used * 2 >= total:
                break
        first, second = pieces[:cut], pieces[cut:]
        second_draft = _Draft(draft.section, second, max(0, draft.repeated - cut))
        if cut <= draft.repeated:  # the first half only repeats the previous chunk
            return [second_draft]
        return [_Draft(draft.section, first, draft.repeated), second_draft]

    def _chunk(self, draft: _Draft, tokens: int) -> Chunk:
        start, end = draft.pieces[0].start, draft.pieces[-1].end
        pages = [p for p in (self.blocks[i].page for i in sorted({q.block for q in draft.pieces})) if p is not None]
        return Chunk(
            text=self.text[start:end],
            heading_path=draft.section.shown_path,
            page_start=min(pages) if pages else None,
            page_end=max(pages) if pages else None,
            char_start=start,
            char_end=end,
            tokens=tokens,
        )


def _prefix(path: tuple[str, ...]) -> str:
    return PATH_SEPARATOR.join(path) + "\n"


def _shorten(path: tuple[str, ...], cap: int) -> tuple[str, ...]:
    return tuple(title if len(title) <= cap else title[: cap - 1].rstrip() + "…" for title in path)


def _path_variants(path: tuple[str, ...]) -> list[tuple[str, ...]]:
    variants = [_shorten(path, cap) for cap in _PATH_CAPS] + [_shorten(path[-1:], _PATH_CAPS[-1]), ()]
    return list(dict.fromkeys(variants))


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return None
    start += len(piece) - len(piece.lstrip())
    return start, start + len(stripped)


def _cut(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """Spans of text[start:end] cut after each separator, stripped of whitespace, empty ones dropped."""
    spans = []
    position = start
    for match in separator.finditer(text, start, end):
        if match.end() > position:
            spans.append((position, match.end()))
            position = match.end()
    spans.append((position, end))
    return [t for t in (_trim(text, s, e) for s, e in spans) if t is not None]


def _split(text: str, piece: _Piece, room: int) -> list[_Piece]:
    """Cut a piece over `room` tokens with the next finer cut that divides it; characters last, in
    windows sized from its token count."""
    for level in range(piece.level + 1, _CHARACTERS):
        spans = _cut(text, piece.start, piece.end, _SPLITTERS[level])
        if len(spans) > 1:
            return [_Piece(s, e, piece.block, level) for s, e in spans]
    length = piece.end - piece.start
    window = max(1, min(length * room * 9 // (10 * max(piece.tokens, 1)), (length + 1) // 2))
    if length < 2:
        return [piece]
    spans = (_trim(text, s, min(s + window, piece.end)) for s in range(piece.start, piece.end, window))
    return [_Piece(s[0], s[1], piece.block, _CHARACTERS) for s in spans if s is not None]


def _middle(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Where to halve text[start:end]: the whitespace run nearest its middle, else its middle
    character; the end of the first half and the start of the second. None for one character."""
    if end - start < 2:
        return None
    middle = (start + end) // 2
    spaces = [m for m in re.finditer(r"\s+", text[start:end])]
    if spaces:
        nearest = min(spaces, key=lambda m: abs(start + m.start() - middle))
        return start + nearest.start(), start + nearest.end()
    return middle, middle
