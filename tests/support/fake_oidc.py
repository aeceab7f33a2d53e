"""The login side of the fake Kiro: AWS SSO OIDC device authorization (`/client/register`, `/device_authorization`,
`/token` with the device-code grant), Kiro's social device flow (`/oauth/device/authorization`, `/oauth/device/poll`)
and the profile lookup (`ListAvailableProfiles` on `/`).

A session plays a script set with `next_login`: so many `authorization_pending` answers, optionally one `slow_down`,
then approval (tokens the fake's refresh and chat endpoints accept), denial or expiry. Registrations can be expired
(`expire_registrations`): they are then refused with `invalid_client`, as AWS does after ~90 days.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.fake_kiro import FakeKiro

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class LoginScript:
    """How the next device session behaves: `pending` pending answers, then `slow_down` once if set, then `outcome`
    (approve | deny | expire)."""

    pending: int = 1
    slow_down: bool = True
    outcome: str = "approve"


@dataclass
class _Session:
    device_code: str
    user_code: str
    client_id: str
    script: LoginScript
    social: bool = False
    polls: list[float] = field(default_factory=list)  # monotonic times of each poll
    done: bool = False


class DeviceFlows:
    """The fake's login state (guarded by its own lock; tokens are minted through the FakeKiro)."""

    def __init__(self, fake: FakeKiro) -> None:
        self._fake = fake
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._expired_clients: set[str] = set()
        self._script = LoginScript()
        self.registrations = 0
        self.profiles: list[dict[str, Any]] | None = None  # None: one profile, the fake's ARN
        self.interval = 0  # seconds the device authorization asks clients to wait between polls

    # -- scripting and observation ---------------------------------------------------------------------------

    def next_login(self, *, pending: int = 1, slow_down: bool = True, outcome: str = "approve") -> None:
        with self._lock:
            self._script = LoginScript(pending, slow_down, outcome)

    def expire_registrations(self) -> None:
        """Every client registered so far is refused from now on (`invalid_client`)."""
        with self._lock:
            self._expired_clients.update(self._fake._clients)

    def polls(self) -> list[list[float]]:
        with self._lock:
            return [list(s.polls) for s in self._sessions.values()]

    # -- AWS SSO OIDC ------------------------------------------------------------------------------------------

    def register(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not body.get("clientName") or body.get("clientType") != "public":
            return 400, {"error": "invalid_request", "error_description": "clientName and clientType are required"}
        client_id, client_secret = self._fake.register_client()
        with self._lock:
            self.registrations += 1
        now = int(time.time())
        return 200, {"clientId": client_id, "clientSecret": client_secret, "clientIdIssuedAt": now,
                     "clientSecretExpiresAt": now + 90 * 86400}

    def _client_error(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        client_id = body.get("clientId")
        with self._lock:
            expired = client_id in self._expired_clients
        if expired or not self._fake._client_ok(client_id, body.get("clientSecret")):
            return 400, {"error": "invalid_client", "error_description": "Client authentication failed"}
        return None

    def authorize(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        refused = self._client_error(body)
        if refused is not None:
            return refused
        if not str(body.get("startUrl") or "").startswith("https://"):
            return 400, {"error": "invalid_request", "error_description": "startUrl is required"}
        session = self._open(str(body["clientId"]), social=False)
        return 200, {"deviceCode": session.device_code, "userCode": session.user_code,
                     "verificationUri": "https://device.sso.us-east-1.amazonaws.com/",
                     "verificationUriComplete": f"https://device.sso.us-east-1.amazonaws.com/?user_code="
                                                f"{session.user_code}",
                     "expiresIn": 600, "interval": self.interval}

    def token(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        refused = self._client_error(body)
        if refused is not None:
            return refused
        with self._lock:
            session = self._sessions.get(str(body.get("deviceCode")))
        if session is None or session.social:
            return 400, {"error": "invalid_grant", "error_description": "Invalid device code"}
        step = self._step(session)
        if step in ("authorization_pending", "slow_down", "access_denied", "expired_token"):
            return 400, {"error": step, "error_description": step.replace("_", " ")}
        refresh, access = step
        return 200, {"accessToken": access, "refreshToken": refresh, "expiresIn": self._fake.access_token_ttl,
                     "tokenType": "Bearer"}

    # -- Kiro social device flow -------------------------------------------------------------------------------

    def social_authorize(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("loginProvider") not in ("Google", "Github") or not body.get("clientId"):
            return 400, {"message": "loginProvider and clientId are required"}
        session = self._open(str(body["clientId"]), social=True)
        return 200, {"deviceCode": session.device_code, "userCode": session.user_code,
                     "verificationUri": "https://app.kiro.dev/account/device",
                     "verificationUriComplete": f"https://app.kiro.dev/account/device?user_code={session.user_code}",
                     "intervalInMilliseconds": self.interval * 1000, "expiresInMilliseconds": 300_000}

    def social_poll(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            session = self._sessions.get(str(body.get("deviceCode")))
        if session is None or not session.social:
            return 400, {"message": "Invalid device code"}
        step = self._step(session)
        if isinstance(step, str):
            return (200 if step in ("authorization_pending", "slow_down") else 400), {"status": step}
        refresh, access = step
        return 200, {"status": "authorized", "accessToken": access, "refreshToken": refresh,
                     "profileArn": self._fake.profile_arn, "expiresIn": self._fake.access_token_ttl}

    # -- profiles ----------------------------------------------------------------------------------------------

    def list_profiles(self) -> dict[str, Any]:
        profiles = self.profiles if self.profiles is not None else [
            {"arn": self._fake.profile_arn, "profileName": "FakeProfile"}]
        return {"profiles": profiles}

    # -- internals ---------------------------------------------------------------------------------------------

    def _open(self, client_id: str, *, social: bool) -> _Session:
        code = secrets.token_urlsafe(24)
        user = f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}"
        with self._lock:
            session = _Session(code, user, client_id, self._script, social=social)
            self._sessions[code] = session
        return session

    def _step(self, session: _Session) -> str | tuple[str, str]:
        with self._lock:
            session.polls.append(time.monotonic())
            if session.done:
                return "expired_token"
            count = len(session.polls)
            script = session.script
            if count <= script.pending:
                return "authorization_pending"
            if script.slow_down and count == script.pending + 1:
                return "slow_down"
            session.done = True
        if script.outcome == "deny":
            return "access_denied"
        if script.outcome == "expire":
            return "expired_token"
        return self._fake.issue_refresh_token(), self._fake.issue_access_token()
