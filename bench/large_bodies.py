"""Claude Code-shaped `/v1/messages` bodies of a chosen size, built from real source text (bench/bench_large.py).

A late Claude Code turn is a system prompt in blocks, ~20 tool definitions and a long history of `tool_use` /
`tool_result` pairs whose results are files it read. The results here are the Python standard library's own files
(and this repository's), each used once and cut to a varied length, so no two messages are alike and the text is
what a tokenizer meets in real sessions.
"""

from __future__ import annotations

import json
import sysconfig
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = "claude-sonnet-4.5"
TOOL_NAMES = ["Bash", "Read", "Write", "Edit", "MultiEdit", "Glob", "Grep", "LS", "NotebookRead", "NotebookEdit",
              "WebFetch", "WebSearch", "TodoWrite", "Task", "ExitPlanMode", "BashOutput", "KillShell",
              "SlashCommand", "ListMcpResources", "ReadMcpResource"]


def source_files() -> Iterator[Path]:
    """Real source text, in a fixed order: this repository first, then the standard library."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for base, pattern in ((ROOT, "kiro_core/**/*.py"), (ROOT, "functions/**/*.py"), (stdlib, "*.py"),
                          (stdlib, "*/*.py")):
        yield from sorted(base.glob(pattern))


def tools() -> list[dict[str, Any]]:
    """Twenty tool definitions in Claude Code's shape (a paragraph of description, a JSON Schema each)."""
    out = []
    for number, name in enumerate(TOOL_NAMES):
        out.append({
            "name": name,
            "description": (f"{name}: performs the {name.lower()} operation in the user's workspace. " * 6
                            + f"Use it when the task needs {name.lower()} (tool {number})."),
            "input_schema": {
                "type": "object", "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#",
                "properties": {
                    "file_path": {"type": "string", "description": "The absolute path to the file"},
                    "command": {"type": "string", "description": f"The {name} command to run"},
                    "limit": {"type": "number", "description": "The number of lines to read"},
                    "options": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["file_path"],
            },
        })
    return out


def system_blocks() -> list[dict[str, Any]]:
    intro = ("You are Claude Code, Anthropic's official CLI for Claude. You are an interactive CLI tool that helps "
             "users with software engineering tasks. Use the instructions below and the tools available to you. ")
    return [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": intro * 40, "cache_control": {"type": "ephemeral"}},
    ]


def exchange(number: int, path: Path, text: str, variant: int) -> list[dict[str, Any]]:
    """One assistant `tool_use` (Read) and the user's `tool_result` holding `text`."""
    call_id = f"toolu_{variant:03d}{number:04d}{zlib.crc32(str(path).encode()):010d}"
    text = f"[{path} as read at step {number} of session {variant}]\n{text}"
    return [
        {"role": "assistant", "content": [
            {"type": "text", "text": f"Let me read {path.name} (step {number}, session {variant})."},
            {"type": "tool_use", "id": call_id, "name": "Read", "input": {"file_path": str(path), "limit": 2000}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": text}]},
    ]


def history(size: int, variant: int = 0) -> list[dict[str, Any]]:
    """Messages whose JSON is about `size` bytes: a first prompt, then Read exchanges over distinct files. Each
    `variant` cuts every file at another place, so no message of one variant is a message of another."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>Context for this session.</system-reminder>"},
        {"type": "text", "text": f"Please review how this project handles large requests (session {variant})."}]}]
    used = 2000
    for number, path in enumerate(source_files()):
        if used >= size:
            break
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        start = (variant * 1709) % max(1, len(text) - 2000) if variant else 0
        text = text[start: start + 4000 + (number * 7919) % 30000]  # varied lengths, up to 4–34 KB
        if not text.strip():
            continue
        pair = exchange(number, path, text, variant)
        messages += pair
        used += len(json.dumps(pair))
    return messages


def body(size: int, *, variant: int = 0, stream: bool = True, extra_exchanges: int = 0) -> dict[str, Any]:
    """A Claude Code-shaped request of about `size` bytes; `extra_exchanges` appends that many new exchanges (the
    same session's next turn) after the history, then the closing user text."""
    messages = history(size, variant)
    if extra_exchanges:
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        extra = sorted(stdlib.glob("*/*/*.py"))
        for number in range(extra_exchanges):
            path = extra[(variant * 7 + number) % len(extra)]
            messages += exchange(90000 + number, path, path.read_text(encoding="utf-8", errors="replace")[:8000],
                                 variant)
    messages.append({"role": "assistant", "content": [{"type": "text", "text": "I have read the files."}]})
    messages.append({"role": "user", "content": [{"type": "text", "text": "Now summarise what you found."}]})
    return {"model": MODEL, "max_tokens": 32000, "stream": stream, "system": system_blocks(), "tools": tools(),
            "messages": messages, "metadata": {"user_id": "user_bench_account__session_0f3c2a"}}
