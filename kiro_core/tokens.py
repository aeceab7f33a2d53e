"""Token estimates with OpenAI's `cl100k_base` vocabulary, loaded from the file that ships inside this package.

Nothing is ever downloaded: the vocabulary is `kiro_core/data/cl100k_base.tiktoken`, checked against its published
SHA-256 on load. Claude's tokenizer is not public; cl100k_base times `CLAUDE_CORRECTION_FACTOR` is the estimate the
reference gateway uses, and it errs high, which is what context accounting (Claude Code's auto-compaction) needs.

Counted here rather than by tiktoken, for memory: tiktoken's Rust core keeps three copies of the 100k-token
vocabulary (~25 MB resident) and is built from a full Python dict of it, so ~35 MB at the moment it is built, a third
of the gateway's peak. Counting needs that one dict. The text is split with tiktoken's own pattern; a piece that is a
whole token (~92 % of pieces in code, more in prose) costs one C-level membership test, and the rest go through
byte-pair merging as tiktoken does it (merge the adjacent pair whose concatenation has the lowest rank, the leftmost
of equals, until none is a token), remembered per piece. The counts are tiktoken's (tests compare the two) for
every character both engines' Unicode tables know; a code point newer than one of them may split differently.

Bounded in cost (docs/performance.md, "Token estimates"): a client's pathological text must cost at most a bounded
amount of merging. A piece longer than `LONG_PIECE_BYTES` (a megabyte of one repeated character is one piece) is
merged over its first `LONG_PIECE_BYTES` bytes and the count scaled to its length; and once one text has sent
`MERGE_BUDGET_BYTES` of pieces that are not whole tokens through merging, the rest of its non-token pieces are
estimated from the tokens-per-byte of those merged so far. Both rules depend on the text alone, so a text counts
the same wherever and whenever it is counted. Real text (code, prose) stays far below both and counts exactly.

A whole conversation is counted per part (system, each message, the tools) through `TokenMemo`, a bounded map from
each part's content digest to its count: a session resends its history byte for byte every turn, so the next turn
counts only what is new.
"""

from __future__ import annotations

import binascii
import hashlib
import heapq
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from itertools import filterfalse
from pathlib import Path

from kiro_core.unified import Conversation

CL100K_FILE = Path(__file__).parent / "data" / "cl100k_base.tiktoken"
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# The split pattern of tiktoken's own cl100k_base definition (tiktoken_ext.openai_public). Special tokens are not
# needed: counts treat their text as ordinary text, as tiktoken's `encode(text, disallowed_special=())` does.
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
_MERGED_CACHE_SIZE = 8192  # pieces that are not one token, with their counts (emptied when full: ~1 MB at most)
_MERGED_CACHE_PIECE = 64  # longer pieces are merged every time rather than remembered
_SHORT_PIECE = 48  # up to this many bytes, rescanning every pair is faster than a heap
LONG_PIECE_BYTES = 8192  # a longer piece is merged over this prefix and scaled (~40 ms of merging at most)
MERGE_BUDGET_BYTES = 65_536  # per text: bytes of non-token pieces merged exactly; past it they are estimated
MEMO_ENTRIES = 8192  # TokenMemo: parts remembered (a 32-byte digest and a count each: ~1.5 MB at most)

CLAUDE_CORRECTION_FACTOR = 1.15  # cl100k under-counts Claude's tokenizer by roughly this much
IMAGE_TOKENS = 1600  # a typical ~1 MP image in Claude's accounting (width*height/750)
PER_MESSAGE_OVERHEAD = 4
PER_TOOL_OVERHEAD = 4


_LOADING = threading.Lock()  # worker threads may ask for the counter at once: the vocabulary is built once


@lru_cache(maxsize=1)
def encoding() -> Cl100k:
    """The offline cl100k_base counter (loaded once, on first use)."""
    with _LOADING:
        return _load()


@lru_cache(maxsize=1)
def _load() -> Cl100k:
    import regex  # `\p{L}` and possessive quantifiers; imported with the vocabulary, not with this module

    return Cl100k(_ranks(), regex.compile(_CL100K_PATTERN).findall)


class Cl100k:
    """cl100k_base as a token counter: the split pattern and one dict of token ranks."""

    __slots__ = ("_is_token", "_merged", "_rank", "_split")

    def __init__(self, ranks: dict[bytes, int], split: Callable[[str], list[str]]) -> None:
        self._rank = ranks.get
        self._is_token = ranks.__contains__
        self._split = split
        self._merged: dict[bytes, int] = {}

    def count(self, text: str) -> int:
        """The number of tokens tiktoken's `encode(text, disallowed_special=())` returns, for any text whose
        non-token pieces stay within the cost bounds (see the module docstring); an estimate beyond them."""
        try:
            pieces = [piece.encode() for piece in self._split(text)]
        except UnicodeEncodeError:  # lone surrogates (JSON's "\ud83d"): replaced first, as tiktoken does
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            pieces = [piece.encode() for piece in self._split(text)]
        total = len(pieces)
        merged = self._merged
        spent = 0  # bytes of non-token pieces counted exactly so far (the budget), and the tokens they made
        made = 0
        for piece in filterfalse(self._is_token, pieces):  # only the pieces that are not one whole token
            size = len(piece)
            if spent >= MERGE_BUDGET_BYTES:  # past the budget: this text's own tokens-per-byte so far
                total += max(1, -(-size * made // spent)) - 1
                continue
            if size > LONG_PIECE_BYTES:  # never remembered (longer than any cached piece)
                prefix = self._merge_long(piece[:LONG_PIECE_BYTES])
                spent += LONG_PIECE_BYTES
                made += prefix
                total += -(-prefix * size // LONG_PIECE_BYTES) - 1
                continue
            count = merged.get(piece)
            if count is None:
                count = self._merge(piece) if size <= _SHORT_PIECE else self._merge_long(piece)
                if size <= _MERGED_CACHE_PIECE:
                    if len(merged) >= _MERGED_CACHE_SIZE:
                        merged.clear()
                    merged[piece] = count
            spent += size
            made += count
            total += count - 1
        return total

    def _merge(self, piece: bytes) -> int:
        """Tokens in a short piece: rescan every adjacent pair, merge the lowest-ranked (the leftmost of equals)."""
        rank = self._rank
        parts = [piece[i:i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            best = None
            at = 0
            for i in range(len(parts) - 1):
                found = rank(parts[i] + parts[i + 1])
                if found is not None and (best is None or found < best):
                    best = found
                    at = i
            if best is None:
                break
            parts[at:at + 2] = (parts[at] + parts[at + 1],)
        return len(parts)

    def _merge_long(self, piece: bytes) -> int:
        """The same merges for a long piece (a run of symbols or spaces) with a heap of candidate pairs ordered by
        (rank, start): O(n log n), where rescanning is O(n²) and a long enough piece would stall the event loop."""
        rank = self._rank
        size = len(piece)
        ends = list(range(1, size + 1))  # ends[start]: where the part beginning at `start` ends (-1: merged away)
        starts = list(range(-1, size - 1))  # starts[start]: where the part before it begins (-1: none)
        heap: list[tuple[int, int, int]] = []
        for start in range(size - 1):
            found = rank(piece[start:start + 2])
            if found is not None:
                heap.append((found, start, start + 2))
        heapq.heapify(heap)
        parts = size
        while heap:
            _found, start, end = heapq.heappop(heap)
            middle = ends[start]
            if middle == -1 or middle >= end or ends[middle] != end:  # stale: a side was merged since it was queued
                continue
            ends[start] = end
            ends[middle] = -1
            if end < size:
                starts[end] = start
            parts -= 1
            left = starts[start]
            if left >= 0:
                found = rank(piece[left:end])
                if found is not None:
                    heapq.heappush(heap, (found, left, end))
            if end < size:
                following = ends[end]
                found = rank(piece[start:following])
                if found is not None:
                    heapq.heappush(heap, (found, start, following))
        return parts


def _ranks() -> dict[bytes, int]:
    """The vocabulary file (`<base64 token> <rank>` lines) as a dict, checked against its SHA-256.

    Read and hashed one line at a time with `binascii.a2b_base64`: neither the file nor a list of its 200k fields is
    ever alive at once. A file that does not match the published digest is refused once read (nothing is used).
    """
    decode = binascii.a2b_base64
    ranks: dict[bytes, int] = {}
    digest = hashlib.sha256()
    with CL100K_FILE.open("rb") as lines:  # streamed: the 1.7 MB file is never held whole (peak memory)
        for line in lines:
            digest.update(line)
            token, rank = line.split()
            ranks[decode(token)] = int(rank)
    if digest.hexdigest() != CL100K_SHA256:
        raise ValueError(f"{CL100K_FILE} has SHA-256 {digest.hexdigest()}, expected {CL100K_SHA256}")
    return ranks


def count_text(text: str) -> int:
    """Raw cl100k tokens in `text` (special-token strings counted as ordinary text)."""
    if not text:
        return 0
    return encoding().count(text)


def claude_tokens(text: str) -> int:
    """Estimated Claude tokens for `text`: cl100k count with the correction factor."""
    raw = count_text(text)
    return int(raw * CLAUDE_CORRECTION_FACTOR + 0.5) if raw else 0


class TokenMemo:
    """Counts of conversation parts by content digest, least recently used dropped past `entries`.

    Thread-safe (estimates run in worker threads). Holds digests and integers only, never client text, so its size
    is bounded by `entries` whatever the requests carry.
    """

    def __init__(self, entries: int = MEMO_ENTRIES) -> None:
        self._entries = entries
        self._counts: OrderedDict[bytes, int] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._counts)

    def count(self, parts: tuple[str, ...]) -> int:
        """Raw cl100k tokens of `parts` (summed), from memory when this exact sequence was counted before."""
        digest = hashlib.blake2b(digest_size=32)
        for part in parts:
            data = part.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        key = digest.digest()
        with self._lock:
            known = self._counts.get(key)
            if known is not None:
                self._counts.move_to_end(key)
                return known
        counted = sum(count_text(part) for part in parts)
        with self._lock:
            self._counts[key] = counted
            if len(self._counts) > self._entries:
                self._counts.popitem(last=False)
        return counted


MEMO = TokenMemo()  # the process's memo: a session's next turn re-counts only its new messages


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def estimate_input_tokens(conversation: Conversation, memo: TokenMemo | None = None) -> int:
    """Estimated input tokens of a whole request: system, messages, tool calls/results, images, tool definitions.

    Counted per part through `memo` (the process's `MEMO` by default): the same conversation gives the same figure
    whether its parts were remembered or not. CPU-bound on a new megabyte-sized conversation: callers on an event
    loop run it in a worker thread.
    """
    memo = memo if memo is not None else MEMO
    raw = memo.count((conversation.system,)) if conversation.system else 0
    images = 0
    for message in conversation.messages:
        parts = [message.text]
        for call in message.tool_calls:
            parts += (call.name, _compact(call.arguments))
        parts += (result.content for result in message.tool_results)
        raw += PER_MESSAGE_OVERHEAD + PER_TOOL_OVERHEAD * (len(message.tool_calls) + len(message.tool_results))
        raw += memo.count(tuple(parts))
        images += len(message.images)
    if conversation.tools:
        parts = []
        for tool in conversation.tools:
            parts += (tool.name, tool.description, _compact(tool.input_schema))
        raw += PER_TOOL_OVERHEAD * len(conversation.tools) + memo.count(tuple(parts))
    raw += 3  # the reply's priming
    return int(raw * CLAUDE_CORRECTION_FACTOR + 0.5) + images * IMAGE_TOKENS
