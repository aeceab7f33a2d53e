"""Token estimates with tiktoken's `cl100k_base`, loaded from the file that ships inside this package.

Nothing is ever downloaded: the vocabulary is `kiro_core/data/cl100k_base.tiktoken`, checked against its published
SHA-256 on load. Claude's tokenizer is not public; cl100k_base times `CLAUDE_CORRECTION_FACTOR` is the estimate the
reference gateway uses, and it errs high, which is what context accounting (Claude Code's auto-compaction) needs.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import json
from functools import lru_cache
from pathlib import Path

import tiktoken

from kiro_core.unified import Conversation

CL100K_FILE = Path(__file__).parent / "data" / "cl100k_base.tiktoken"
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# The split pattern and special tokens of tiktoken's own cl100k_base definition (tiktoken_ext.openai_public).
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
_CL100K_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}

CLAUDE_CORRECTION_FACTOR = 1.15  # cl100k under-counts Claude's tokenizer by roughly this much
IMAGE_TOKENS = 1600  # a typical ~1 MP image in Claude's accounting (width*height/750)
PER_MESSAGE_OVERHEAD = 4
PER_TOOL_OVERHEAD = 4


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """The offline cl100k_base encoding (loaded once, on first use)."""
    encoding = tiktoken.Encoding(
        name="cl100k_base", pat_str=_CL100K_PATTERN, mergeable_ranks=_ranks(), special_tokens=_CL100K_SPECIAL
    )
    # The Rust core keeps its own copy of the vocabulary; tiktoken keeps the Python dict only to pickle the
    # encoding, which nothing here does. Dropping it frees ~16 MB for the life of the process (peak RSS, Lambda).
    encoding._mergeable_ranks = {}
    return encoding


def _ranks() -> dict[bytes, int]:
    """The vocabulary file (`<base64 token> <rank>` lines) as tiktoken wants it, checked against its SHA-256.

    Parsed here rather than by `tiktoken.load.load_tiktoken_bpe`, one line at a time with `binascii.a2b_base64`:
    as fast, without a list of all 200k fields alive at once (~9 MB less peak RSS on the first request).
    """
    data = CL100K_FILE.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != CL100K_SHA256:
        raise ValueError(f"{CL100K_FILE} has SHA-256 {digest}, expected {CL100K_SHA256}")
    decode = binascii.a2b_base64
    ranks: dict[bytes, int] = {}
    for line in io.BytesIO(data):
        token, rank = line.split()
        ranks[decode(token)] = int(rank)
    return ranks


def count_text(text: str) -> int:
    """Raw cl100k tokens in `text` (special-token strings counted as ordinary text)."""
    if not text:
        return 0
    return len(encoding().encode(text, disallowed_special=()))


def claude_tokens(text: str) -> int:
    """Estimated Claude tokens for `text`: cl100k count with the correction factor."""
    raw = count_text(text)
    return int(raw * CLAUDE_CORRECTION_FACTOR + 0.5) if raw else 0


def estimate_input_tokens(conversation: Conversation) -> int:
    """Estimated input tokens of a whole request: system, messages, tool calls/results, images, tool definitions."""
    raw = count_text(conversation.system)
    images = 0
    for message in conversation.messages:
        raw += PER_MESSAGE_OVERHEAD + count_text(message.text)
        for call in message.tool_calls:
            raw += PER_TOOL_OVERHEAD + count_text(call.name)
            raw += count_text(json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":")))
        for result in message.tool_results:
            raw += PER_TOOL_OVERHEAD + count_text(result.content)
        images += len(message.images)
    for tool in conversation.tools:
        raw += PER_TOOL_OVERHEAD + count_text(tool.name) + count_text(tool.description)
        raw += count_text(json.dumps(tool.input_schema, ensure_ascii=False, separators=(",", ":")))
    raw += 3  # the reply's priming
    return int(raw * CLAUDE_CORRECTION_FACTOR + 0.5) + images * IMAGE_TOKENS
