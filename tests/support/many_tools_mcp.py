"""A small stdio MCP server with many tools, for Claude Code's deferred-tool flow in the end-to-end tests.

Newline-delimited JSON-RPC 2.0 on stdin/stdout (the MCP stdio transport): `initialize`, `tools/list` (`TOOL_COUNT`
tools named `tool_0`…), `tools/call` (answers "tool_N answered <text>"). No network, no dependencies.

    python -m tests.support.many_tools_mcp
"""

from __future__ import annotations

import json
import sys
from typing import Any

TOOL_COUNT = 40
PROTOCOL_VERSION = "2025-06-18"


def tools() -> list[dict[str, Any]]:
    return [{"name": f"tool_{n}", "description": f"Tool number {n} of the many-tools test server: echoes its text.",
             "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}
            for n in range(TOOL_COUNT)]


def answer(request: dict[str, Any]) -> dict[str, Any] | None:
    """The response to one JSON-RPC message; None for notifications."""
    if "id" not in request:
        return None
    method, params = request.get("method"), request.get("params") or {}
    if method == "initialize":
        version = params.get("protocolVersion") or PROTOCOL_VERSION
        result: dict[str, Any] = {"protocolVersion": version, "capabilities": {"tools": {}},
                                  "serverInfo": {"name": "many-tools", "version": "1.0.0"}}
    elif method == "tools/list":
        result = {"tools": tools()}
    elif method == "tools/call":
        name, arguments = params.get("name"), params.get("arguments") or {}
        if name not in {t["name"] for t in tools()}:
            return {"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32602, "message": f"no tool {name}"}}
        result = {"content": [{"type": "text", "text": f"{name} answered {arguments.get('text', '')}"}]}
    elif method == "ping":
        result = {}
    else:
        return {"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": f"no method {method}"}}
    return {"jsonrpc": "2.0", "id": request["id"], "result": result}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = answer(json.loads(line))
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
