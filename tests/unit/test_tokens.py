"""kiro_core.tokens counts what tiktoken counts (tiktoken is the tests' reference, not a runtime part)."""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_core import tokens
from kiro_core.tokens import claude_tokens, count_text, encoding

ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def reference() -> tiktoken.Encoding:
    """tiktoken's cl100k_base built from the same shipped vocabulary (offline)."""
    return tiktoken.Encoding(name="cl100k_base_reference", pat_str=tokens._CL100K_PATTERN,
                             mergeable_ranks=tokens._ranks(), special_tokens={})


def tiktoken_count(text: str) -> int:
    return len(reference().encode(text, disallowed_special=()))


def test_this_repository_counts_like_tiktoken() -> None:
    for path in sorted([*ROOT.glob("kiro_core/**/*.py"), *ROOT.glob("docs/*.md"), *ROOT.glob("tests/unit/*.py")]):
        text = path.read_text(encoding="utf-8")
        assert count_text(text) == tiktoken_count(text), path


@pytest.mark.parametrize("text", [
    "Hello, world!", "héllo wörld ✓ 日本語のテキスト 😀", "<|endoftext|> is plain text here", "  \n\n\t \r\n",
    "trailing newline\n", "x" * 5000, "=" * 5000, " " * 3000 + "a", "\u00a0" * 999, "1234567890" * 50,
    "I'll we've they're DON'T", "a\u0301\u0302 combining", "zero\u200bwidth", "nul\x00byte",
])
def test_edge_cases_count_like_tiktoken(text: str) -> None:
    assert count_text(text) == tiktoken_count(text)


def test_lone_surrogates_are_replaced_as_tiktoken_does() -> None:
    text = "emoji half \ud83d and \udc00 end"
    assert count_text(text) == tiktoken_count(text) > 0


# Characters Python's own Unicode tables know (assigned, not private use): the split pattern's \p{L}/\p{N} classes
# are looked up in two engines' tables (the `regex` module here, Rust's in tiktoken), and a code point assigned in a
# Unicode version newer than one of them (e.g. U+323B0, CJK Extension H) is a letter to one and not the other. The
# count is an estimate either way; what must agree is every character both tables know.
KNOWN_CHARACTERS = st.characters(exclude_categories=("Cn", "Co", "Cs"))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(KNOWN_CHARACTERS, max_size=200))
def test_any_text_counts_like_tiktoken(text: str) -> None:
    assert count_text(text) == tiktoken_count(text)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(alphabet=" \n=-*#_ab.'日😀", max_size=400))
def test_symbol_and_space_runs_count_like_tiktoken(text: str) -> None:
    assert count_text(text) == tiktoken_count(text)


def test_long_piece_merging_agrees_with_the_rescanning_merge() -> None:
    counter = encoding()
    generator = random.Random(7)
    for _ in range(500):
        piece = bytes(generator.choice(b" =-*#ab\xe6\x97\xa5") for _ in range(generator.randint(2, 150)))
        assert counter._merge_long(piece) == counter._merge(piece), piece


def test_merged_piece_cache_stays_bounded() -> None:
    counter = encoding()
    generator = random.Random(11)
    for _ in range(tokens._MERGED_CACHE_SIZE + 500):
        count_text("".join(generator.choice("qxzjkv") for _ in range(12)))
    assert len(counter._merged) <= tokens._MERGED_CACHE_SIZE


def test_claude_tokens_apply_the_correction_factor() -> None:
    raw = count_text("The quick brown fox jumps over the lazy dog.")
    assert claude_tokens("The quick brown fox jumps over the lazy dog.") == int(raw * 1.15 + 0.5)
    assert claude_tokens("") == 0
