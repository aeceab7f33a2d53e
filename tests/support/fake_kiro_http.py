"""The wire side of the fake Kiro: the HTTP server and request handler behind `tests.support.fake_kiro.FakeKiro`.

Kept apart from the state and API so each file holds one job: this one parses requests, applies the fake's auth rules
through its (locked) state methods, and plays chat scripts as a chunked event-stream body in odd-sized pieces.
"""

from __future__ import annotations

import json
import random
import secrets
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.fake_kiro_checks import check_chat
from tests.support.fake_kiro_scripts import Corrupt, Drop, Pause, Script, Status, Together
from tests.support.fake_oidc import DEVICE_GRANT

if TYPE_CHECKING:
    from tests.support.fake_kiro import FakeKiro

INVALID_BEARER = {"message": "The bearer token included in the request is invalid.", "reason": None}
ENDPOINTS = ("generateAssistantResponse", "ListAvailableModels", "refreshToken", "token", "mcp", "client/register",
             "device_authorization", "oauth/device/authorization", "oauth/device/poll", "",
             "getUsageLimits")
MANAGEMENT_MODELS_TARGET = "AmazonCodeWhispererService.ListAvailableModels"
MAX_QUERY_CHARS = 200  # Kiro's own limit on web search queries (JSON-RPC -32602 beyond it)


@dataclass(frozen=True)
class Received:
    """One request as the fake saw it; header names are lower-case, `json` is None when the body is not JSON."""

    method: str
    endpoint: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any


class FakeKiroServer(ThreadingHTTPServer):
    """One thread per connection (daemon, so a paused stream never blocks shutdown); errors from clients that hang
    up are not worth a traceback."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops SYNs (a 1 s retry) when 20 clients connect at once

    def __init__(self, address: tuple[str, int], fake: FakeKiro) -> None:
        super().__init__(address, _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # each piece leaves as its own TCP segment
    server: FakeKiroServer
    _index = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # -- plumbing --------------------------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        endpoint = parts.path.strip("/")
        body = self._read_body()
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        if endpoint == "" and method == "POST":  # awsJson1.0 on the management host: the operation is in a header
            self._dispatch_management(fake, body, parsed, headers, dict(parse_qsl(parts.query)))
            return
        if endpoint not in ENDPOINTS:
            self._send_json(404, {"message": f"Unknown operation {parts.path}"})
            return
        failure, self._index = fake._record(Received(method, endpoint, dict(parse_qsl(parts.query)), headers, body,
                                                     parsed))
        if failure is not None:
            self._send_status(failure)
            return
        handler = getattr(self, f"_on_{endpoint.replace('/', '_')}" if endpoint else "_on_root")
        handler(fake, parsed, dict(parse_qsl(parts.query)), headers)

    def _dispatch_management(self, fake: FakeKiro, body: bytes, parsed: Any, headers: dict[str, str],
                             query: dict[str, str]) -> None:
        """`POST /` with `x-amz-target`: ListAvailableModels (recorded as the models endpoint) and
        ListAvailableProfiles (recorded as the root endpoint, `profiles`)."""
        target = headers.get("x-amz-target", "")
        if target.endswith(".ListAvailableProfiles"):
            failure, self._index = fake._record(Received("POST", "", query, headers, body, parsed))
            if failure is not None:
                self._send_status(failure)
                return
            self._on_root(fake, parsed, query, headers)
            return
        if target != MANAGEMENT_MODELS_TARGET:
            self._send_json(400, {"__type": "com.amazon.coral.service#UnknownOperationException",
                                  "message": f"Unknown operation {target or '(no x-amz-target)'}"})
            return
        failure, self._index = fake._record(Received("POST", "ListAvailableModels", query, headers, body, parsed))
        if failure is not None:
            self._send_status(failure)
            return
        if headers.get("content-type", "").split(";")[0].strip() != "application/x-amz-json-1.0":
            self._send_json(400, {"__type": "com.amazon.coral.service#SerializationException",
                                  "message": "Content-Type must be application/x-amz-json-1.0"})
            return
        if not fake._authorised(headers):
            self._send_json(403, INVALID_BEARER)
            return
        if not isinstance(parsed, dict) or parsed.get("origin") != "AI_EDITOR" or query.get("origin") != "AI_EDITOR":
            self._send_json(400, {"__type": "com.amazon.aws.codewhisperer#ValidationException",
                                  "message": "Improperly formed request.", "reason": None})
            return
        self._send_json(200, fake._management_page(parsed))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                out += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return bytes(out)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, code: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_status(Status(code, payload, dict(headers or {})))

    def _send_status(self, status: Status) -> None:
        body, content_type = status.encoded_body()
        self.send_response(status.code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", secrets.token_hex(16))
        for name, value in status.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    # -- endpoints -------------------------------------------------------------------------------------------------

    def _on_refreshToken(self, fake: FakeKiro, body: Any, query: dict[str, str], headers: dict[str, str]) -> None:
        if fake.refresh_delay:
            time.sleep(fake.refresh_delay)
        token = body.get("refreshToken") if isinstance(body, dict) else None
        issued = fake._rotate(token) if isinstance(token, str) else None
        if issued is None:
            self._send_json(401, {"message": "Invalid refresh token", "reason": None})
            return
        access, refresh = issued
        answer = {"accessToken": access, "expiresIn": fake.access_token_ttl, "profileArn": fake.profile_arn}
        if refresh:
            answer["refreshToken"] = refresh
        self._send_json(200, answer)

    def _on_token(self, fake: FakeKiro, body: Any, query: dict[str, str], headers: dict[str, str]) -> None:
        if fake.refresh_delay:
            time.sleep(fake.refresh_delay)
        body = body if isinstance(body, dict) else {}
        if body.get("grantType") == DEVICE_GRANT:
            self._send_json(*fake.oidc.token(body))
            return
        if body.get("grantType") != "refresh_token":
            self._send_json(400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant type"})
            return
        if not fake._client_ok(body.get("clientId"), body.get("clientSecret")):
            self._send_json(401, {"error": "invalid_client", "error_description": "Invalid client credentials"})
            return
        token = body.get("refreshToken")
        issued = fake._rotate(token) if isinstance(token, str) else None
        if issued is None:
            self._send_json(400, {"error": "invalid_grant", "error_description": "Invalid refresh token provided"},
                            {"x-amzn-ErrorType": "InvalidGrantException"})
            return
        access, refresh = issued
        answer = {"accessToken": access, "expiresIn": fake.access_token_ttl, "tokenType": "Bearer"}
        if refresh:
            answer["refreshToken"] = refresh
        self._send_json(200, answer)

    def _on_client_register(self, fake: FakeKiro, body: Any, query: dict[str, str], headers: dict[str, str]) -> None:
        self._send_json(*fake.oidc.register(body if isinstance(body, dict) else {}))

    def _on_device_authorization(self, fake: FakeKiro, body: Any, query: dict[str, str],
                                 headers: dict[str, str]) -> None:
        self._send_json(*fake.oidc.authorize(body if isinstance(body, dict) else {}))

    def _on_oauth_device_authorization(self, fake: FakeKiro, body: Any, query: dict[str, str],
                                       headers: dict[str, str]) -> None:
        self._send_json(*fake.oidc.social_authorize(body if isinstance(body, dict) else {}))

    def _on_oauth_device_poll(self, fake: FakeKiro, body: Any, query: dict[str, str], headers: dict[str, str]) -> None:
        self._send_json(*fake.oidc.social_poll(body if isinstance(body, dict) else {}))

    def _on_root(self, fake: FakeKiro, body: Any, query: dict[str, str], headers: dict[str, str]) -> None:
        """awsJson1.0 operations on the management host; only ListAvailableProfiles is served."""
        if not headers.get("x-amz-target", "").endswith(".ListAvailableProfiles"):
            self._send_json(400, {"__type": "UnknownOperationException", "message": "Unknown operation"})
            return
        if not fake._authorised(headers):
            self._send_json(403, INVALID_BEARER)
            return
        self._send_json(200, fake.oidc.list_profiles())

    def _on_ListAvailableModels(self, fake: FakeKiro, body: Any, query: dict[str, str],
                                headers: dict[str, str]) -> None:
        if not fake._authorised(headers):
            self._send_json(403, INVALID_BEARER)
            return
        self._send_json(200, fake._models_page(query))

    def _on_getUsageLimits(self, fake: FakeKiro, body: Any, query: dict[str, str], headers: dict[str, str]) -> None:
        if not fake._authorised(headers):
            self._send_json(403, INVALID_BEARER)
            return
        self._send_json(200, fake._usage_limits_answer())

    def _on_generateAssistantResponse(self, fake: FakeKiro, body: Any, query: dict[str, str],
                                      headers: dict[str, str]) -> None:
        if not fake._authorised(headers):
            self._send_json(403, INVALID_BEARER)
            return
        if not isinstance(body, dict) or "conversationState" not in body:
            self._send_json(400, {"message": "Improperly formed request.", "reason": None})
            return
        rejection = check_chat(body, fake._models_by_id(), fake._minted_binding)  # before any script plays
        if rejection is not None:
            self._send_status(rejection)
            return
        self._play(fake, fake._next_script(body))

    def _on_mcp(self, fake: FakeKiro, body: Any, query: dict[str, str], headers: dict[str, str]) -> None:
        """Kiro's MCP endpoint, `tools/call` of `web_search` only: JSON-RPC errors like Kiro's, else the next
        scripted reply (or results made up from the query)."""
        if not fake._authorised(headers):
            self._send_json(403, INVALID_BEARER)
            return
        request_id = body.get("id") if isinstance(body, dict) else None
        params = body.get("params") if isinstance(body, dict) else None
        if not isinstance(body, dict) or body.get("jsonrpc") != "2.0" or body.get("method") != "tools/call" \
                or not isinstance(params, dict) or params.get("name") != "web_search":
            self._send_json(200, {"jsonrpc": "2.0", "id": request_id,
                                  "error": {"code": -32601, "message": "Method or tool not found"}})
            return
        search = (params.get("arguments") or {}).get("query")
        if not isinstance(search, str) or not search.strip() or len(search) > MAX_QUERY_CHARS:
            self._send_json(200, {"jsonrpc": "2.0", "id": request_id,
                                  "error": {"code": -32602, "message": "Invalid params: query"}})
            return
        reply = fake._next_search(search)
        if isinstance(reply, Status):
            self._send_status(reply)
            return
        self._send_json(200, reply.envelope(request_id, search))

    # -- streaming -------------------------------------------------------------------------------------------------

    def _play(self, fake: FakeKiro, script: Script) -> None:
        steps = deque(script)
        while steps and isinstance(pause := steps[0], Pause) and any(isinstance(s, Status) for s in steps):
            steps.popleft()
            fake._stopping.wait(pause.seconds)  # silence before an HTTP error: no headers yet
        if steps and isinstance(steps[0], Status):
            self._send_status(steps[0])
            return
        rng = random.Random(f"{fake._seed}-{self._index}")
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.amazon.eventstream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("x-amzn-RequestId", secrets.token_hex(16))
            self.end_headers()
            pending = bytearray()
            for step in steps:
                if isinstance(step, bytes | bytearray | Corrupt):
                    pending += step.encode() if isinstance(step, Corrupt) else step
                    if fake.frame_writes:
                        self._write_chunk(fake, pending)
                        pending.clear()
                    continue
                self._write_pieces(fake, rng, pending)
                pending.clear()
                if isinstance(step, Together):
                    together = b"".join(step.frames)
                    end = b"0\r\n\r\n" if step.close else b""
                    self.wfile.write((b"%x\r\n%s\r\n" % (len(together), together) if together else b"") + end)
                    if step.close:
                        return
                elif isinstance(step, Pause):
                    fake._stopping.wait(step.seconds)
                elif isinstance(step, Drop):
                    self._drop(step.reset)
                    return
            self._write_pieces(fake, rng, pending)
            self.wfile.write(b"0\r\n\r\n")
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away mid-stream
            fake._note_abandoned()

    def _write_pieces(self, fake: FakeKiro, rng: random.Random, data: bytearray) -> None:
        lo, hi = fake.piece_sizes
        offset = 0
        while offset < len(data):
            piece = bytes(data[offset:offset + rng.randint(lo, hi)])
            offset += len(piece)
            self._write_chunk(fake, piece)

    def _write_chunk(self, fake: FakeKiro, piece: bytes | bytearray) -> None:
        """One HTTP chunk in one `send` (wfile is unbuffered and Nagle is off, so it leaves as its own segment)."""
        if piece:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            if fake.piece_delay:
                time.sleep(fake.piece_delay)

    def _drop(self, reset: bool) -> None:
        self.close_connection = True
        if reset:  # linger 0: close() sends RST, and close now so the later FIN of shutdown_request never goes out
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            self.connection.shutdown(socket.SHUT_RDWR)
