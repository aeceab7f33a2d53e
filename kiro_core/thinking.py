"""Separates "fake reasoning" (`<thinking>…</thinking>` the model writes at the start of its text) from the answer.

The gateway asks the model to think inside tags (docs/protocol.md §Thinking tags); this finite-state machine splits
the text deltas back into thinking and content while they stream:

* PRE_CONTENT — buffer until the text, after leading whitespace, either starts with an open tag (→ IN_THINKING),
  can no longer become one, or outgrows `initial_buffer_size` (→ STREAMING; the buffer becomes content). Tags count
  only at the very start of the answer: a tag later on is quoted text, not reasoning.
* IN_THINKING — thinking text passes through, except the last `hold` characters, which might be the start of a
  close tag split across deltas ("cautious sending"); once the close tag is seen, what follows is content.
* STREAMING — pass-through, after dropping the whitespace that separates the close tag from the answer (even when
  that whitespace arrives in later deltas).

`feed` returns a `(thinking, content)` pair of strings (either may be empty) rather than event objects: it runs once
per text frame, and two strings are the cheapest honest answer.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_OPEN_TAGS: tuple[str, ...] = ("<thinking>", "<think>", "<reasoning>", "<thought>")
DEFAULT_INITIAL_BUFFER_SIZE = 20  # FAKE_REASONING_INITIAL_BUFFER_SIZE of the reference

PRE_CONTENT = "pre_content"
IN_THINKING = "in_thinking"
STREAMING = "streaming"

_NOTHING = ("", "")


class ThinkingExtractor:
    """Streaming splitter of a leading thinking block; feed every text delta, then call `finish()` once."""

    __slots__ = ("_buffer", "_close_tag", "_hold", "_initial_size", "_open_tag", "_open_tags", "_strip", "state")

    def __init__(
        self,
        open_tags: Sequence[str] = DEFAULT_OPEN_TAGS,
        initial_buffer_size: int = DEFAULT_INITIAL_BUFFER_SIZE,
    ) -> None:
        if not open_tags or any(not (tag.startswith("<") and tag.endswith(">") and len(tag) > 2) for tag in open_tags):
            raise ValueError(f"open tags must look like '<name>': {open_tags!r}")
        self._open_tags = tuple(open_tags)
        self._initial_size = initial_buffer_size
        # The reference holds back 2 × the longest open tag; anything ≥ len(close tag) - 1 is enough for safety.
        self._hold = 2 * max(len(tag) for tag in self._open_tags)
        self._buffer = ""
        self._open_tag = ""
        self._close_tag = ""
        self._strip = False  # whitespace after the close tag is still being dropped
        self.state = PRE_CONTENT

    @property
    def open_tag(self) -> str:
        """The tag that opened the thinking block ("" if none was found)."""
        return self._open_tag

    @property
    def close_tag(self) -> str:
        return self._close_tag

    @property
    def passthrough(self) -> bool:
        """True once every further delta would come back unchanged as content; callers may then skip `feed`."""
        return self.state is STREAMING and not self._strip

    def feed(self, text: str) -> tuple[str, str]:
        """Split one text delta into (thinking, content) to emit now; the rest stays buffered."""
        state = self.state
        if state is STREAMING:
            if self._strip:
                text = text.lstrip()
                if not text:
                    return _NOTHING
                self._strip = False
            return "", text
        if state is IN_THINKING:
            return self._thinking(self._buffer + text)
        return self._pre_content(self._buffer + text)

    def finish(self) -> tuple[str, str]:
        """Flush at the end of the text: an unclosed thinking block stays thinking; an undecided prefix is content."""
        buffered, self._buffer = self._buffer, ""
        state, self.state = self.state, STREAMING
        if state is IN_THINKING:
            return buffered, ""
        if state is PRE_CONTENT:
            return "", buffered
        return _NOTHING

    @property
    def unclosed(self) -> bool:
        """A thinking block was opened and its close tag has not (yet) been seen."""
        return bool(self._open_tag) and self.state is IN_THINKING

    def _pre_content(self, buffer: str) -> tuple[str, str]:
        stripped = buffer.lstrip()
        for tag in self._open_tags:
            if stripped.startswith(tag):
                self._open_tag = tag
                self._close_tag = "</" + tag[1:]
                self.state = IN_THINKING
                return self._thinking(stripped[len(tag):])
        if len(buffer) <= self._initial_size and any(tag.startswith(stripped) for tag in self._open_tags):
            self._buffer = buffer  # still possibly the start of a tag
            return _NOTHING
        self._buffer = ""
        self.state = STREAMING
        return "", buffer

    def _thinking(self, buffer: str) -> tuple[str, str]:
        close = self._close_tag
        at = buffer.find(close)
        if at >= 0:
            self._buffer = ""
            self.state = STREAMING
            content = buffer[at + len(close):].lstrip()
            self._strip = not content
            return buffer[:at], content
        hold = self._hold
        if len(buffer) <= hold:
            self._buffer = buffer
            return _NOTHING
        self._buffer = buffer[-hold:]
        return buffer[:-hold], ""
