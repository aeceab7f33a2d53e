"""Where one account talks to Kiro and what it sends: the only place that builds Kiro URLs and request headers.

Every account of the pool gets one `KiroEndpoint` (as the Rust peer kiro.rs keeps one endpoint object per
credential). It knows the account's chat, MCP, management (catalogue), usage and REST-catalogue URLs, the profile
ARN each call takes, and the headers of every call: bearer, the Kiro IDE user agents, and `tokentype: API_KEY` for a
Kiro API key (docs/protocol.md §API keys). What differs between accounts is an `AccountContext` (its own small type,
never a modified copy of the settings); host overrides (KIRO_API_BASE_URL and friends) are the gateway's settings.
"""

from __future__ import annotations

import getpass
import hashlib
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.settings import Settings
from gateway.stores.base import Credentials
from gateway.upstream.client_config import UpstreamSettings

KIRO_IDE_VERSION = "0.7.45"
SDK_VERSION = "1.0.27"
CHAT_PATH = "/generateAssistantResponse"
MODELS_PATH = "/ListAvailableModels"
MCP_PATH = "/mcp"  # Kiro's MCP endpoint (web search), under the same base URL as chat (docs/protocol.md §Web search)
USAGE_PATH = "/getUsageLimits"
PROFILE_HEADER = "x-amzn-kiro-profile-arn"  # MCP calls name the profile in a header, not in the body
API_KEY_TOKEN_TYPE = "API_KEY"

# What the URL rules read: the whole settings (login, doctor) or a client's `UpstreamSettings`; both carry the
# sections `endpoints`, `credentials` and `usage` under the same names.
SettingsLike = Settings | UpstreamSettings


def machine_fingerprint() -> str:
    """Stable per-machine id for the User-Agent, as the Kiro IDE sends one (never user data in clear)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    return hashlib.sha256(f"{socket.gethostname()}-{user}-kiro-gateway".encode()).hexdigest()


def kiro_user_agent() -> str:
    """The Kiro IDE's User-Agent with this machine's fingerprint (also used for token refreshes)."""
    return (
        f"aws-sdk-js/{SDK_VERSION} ua/2.1 os/linux lang/js md/nodejs#22.21.1 "
        f"api/codewhispererstreaming#{SDK_VERSION} m/E KiroIDE-{KIRO_IDE_VERSION}-{machine_fingerprint()}"
    )


def mask_arn(arn: str) -> str:
    """A profile ARN with its AWS account id hidden (region and the profile's last characters kept)."""
    parts = arn.split(":")
    if len(parts) < 6:
        return "…" + arn[-4:] if arn else ""
    return ":".join([*parts[:4], "****", "…" + parts[5][-4:]])


@dataclass(frozen=True)
class AccountContext:
    """What makes one account's calls differ from another's: its host kind and API region, the profile ARN used
    when its credentials name none, and whether it is a Kiro API key. Holds no secret."""

    host: str = "runtime"  # "runtime" (runtime.{region}.kiro.dev) or "q" (q.{region}.amazonaws.com)
    api_region: str = ""  # "" = the credentials' region, then KIRO_REGION
    profile_arn: str = ""
    api_key: bool = False

    @classmethod
    def from_settings(cls, settings: SettingsLike) -> AccountContext:
        """The context of the one credential configured by the settings (REFRESH_TOKEN, creds files)."""
        return cls(host=settings.endpoints.kiro_api_host, api_region=settings.credentials.kiro_api_region,
                   profile_arn=settings.credentials.profile_arn)

    def __repr__(self) -> str:
        return (f"AccountContext(host={self.host!r}, api_region={self.api_region!r}, "
                f"profile_arn={mask_arn(self.profile_arn)!r}, api_key={self.api_key})")


def _region(settings: SettingsLike, context: AccountContext, creds_region: str) -> str:
    return context.api_region or creds_region or settings.credentials.kiro_region


def api_base_url(settings: SettingsLike, creds_region: str = "", context: AccountContext | None = None) -> str:
    """Chat (and MCP) base URL: KIRO_API_BASE_URL, else the account's host kind in its API region."""
    context = context or AccountContext.from_settings(settings)
    if settings.endpoints.kiro_api_base_url:
        base = settings.endpoints.kiro_api_base_url.rstrip("/")
        for suffix in (CHAT_PATH, MODELS_PATH):
            base = base.removesuffix(suffix)
        return base
    region = _region(settings, context, creds_region)
    if context.host == "q":
        return f"https://q.{region}.amazonaws.com"
    return f"https://runtime.{region}.kiro.dev"


def management_base_url(settings: SettingsLike, creds_region: str = "", context: AccountContext | None = None) -> str:
    """Catalogue base URL: KIRO_MANAGEMENT_BASE_URL, else KIRO_API_BASE_URL (one override points every call at a
    proxy or test double), else `management.{region}.kiro.dev` (docs/protocol.md §Hosts)."""
    context = context or AccountContext.from_settings(settings)
    override = settings.endpoints.kiro_management_base_url or settings.endpoints.kiro_api_base_url
    if override:
        return override.rstrip("/").removesuffix(CHAT_PATH).removesuffix(MODELS_PATH)
    return f"https://management.{_region(settings, context, creds_region)}.kiro.dev"


def usage_base_url(settings: SettingsLike, creds_region: str = "", context: AccountContext | None = None) -> str:
    """GetUsageLimits base URL: KIRO_USAGE_BASE_URL, else KIRO_MANAGEMENT_BASE_URL, else KIRO_API_BASE_URL (as
    chat), else the q host of the API region (the runtime host answers UnknownOperationException to this call,
    docs/protocol.md §Credits and usage)."""
    context = context or AccountContext.from_settings(settings)
    if settings.usage.kiro_usage_base_url:
        return settings.usage.kiro_usage_base_url.rstrip("/").removesuffix(USAGE_PATH)
    if settings.endpoints.kiro_management_base_url:  # the issue-7 contract: usage follows the management override
        return settings.endpoints.kiro_management_base_url.rstrip("/")
    if settings.endpoints.kiro_api_base_url:
        return api_base_url(settings, creds_region, context)
    return f"https://q.{_region(settings, context, creds_region)}.amazonaws.com"


def profiles_base_url(settings: SettingsLike, region: str) -> str:
    """ListAvailableProfiles base URL (login, before any account exists): KIRO_PROFILES_URL, else the management or
    API override, else `management.{region}.kiro.dev`."""
    endpoints = settings.endpoints
    base = endpoints.kiro_profiles_url or endpoints.kiro_management_base_url or endpoints.kiro_api_base_url
    return base.rstrip("/") if base else f"https://management.{region}.kiro.dev"


def login_headers(token: str, target: str, content_type: str) -> dict[str, str]:
    """The headers of a call a login makes with its fresh token before it becomes an account (profile lookup)."""
    return {"Authorization": f"Bearer {token}", "User-Agent": kiro_user_agent(), "Content-Type": content_type,
            "x-amz-target": target}


def profile_arn_for(settings: SettingsLike, creds: Credentials, context: AccountContext | None = None) -> str:
    """The profileArn to send with chat and MCP. The runtime host needs it for every auth type; the q host rejects
    it for SSO."""
    context = context or AccountContext.from_settings(settings)
    arn = creds.profile_arn or context.profile_arn
    if context.host == "q" and creds.auth_type != "kiro_desktop":
        return ""
    return arn


def catalog_account_key(base_url: str, creds: Credentials, settings: SettingsLike,
                        context: AccountContext | None = None) -> str:
    """A short, non-secret key naming whose catalogue this is: the catalogue differs per account, so two
    credentials must never share a cached list. Built from the host, profile ARN and OIDC client id (never a
    token, which rotates)."""
    context = context or AccountContext.from_settings(settings)
    identity = f"{base_url}|{creds.profile_arn or context.profile_arn}|{creds.client_id}"
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


class KiroEndpoint:
    """One account's URLs and headers. `credentials` gives the account's current credentials (region, profile)."""

    def __init__(self, settings: SettingsLike, context: AccountContext,
                 credentials: Callable[[], Awaitable[Credentials]]) -> None:
        self._settings = settings
        self.context = context
        self._credentials = credentials
        self._user_agent = kiro_user_agent()
        self._amz_user_agent = f"aws-sdk-js/{SDK_VERSION} KiroIDE-{KIRO_IDE_VERSION}-{machine_fingerprint()}"

    def __repr__(self) -> str:
        return f"KiroEndpoint({self.context!r})"

    __str__ = __repr__

    @property
    def api_key(self) -> bool:
        return self.context.api_key

    # -- URLs ------------------------------------------------------------------------------------------------------

    async def chat_base(self) -> str:
        return api_base_url(self._settings, (await self._credentials()).region, self.context)

    async def chat_url(self) -> str:
        return f"{await self.chat_base()}{CHAT_PATH}"

    async def mcp_url(self) -> str:
        return f"{await self.chat_base()}{MCP_PATH}"

    async def rest_models_url(self) -> str:
        """The legacy `GET /ListAvailableModels` on the chat host (q host era)."""
        return f"{await self.chat_base()}{MODELS_PATH}"

    async def management_url(self) -> str:
        return f"{management_base_url(self._settings, (await self._credentials()).region, self.context)}/"

    async def usage_url(self) -> str:
        return f"{usage_base_url(self._settings, (await self._credentials()).region, self.context)}{USAGE_PATH}"

    # -- profile ARN per call --------------------------------------------------------------------------------------

    async def profile_arn(self) -> str:
        """The profile ARN of chat payloads and MCP calls."""
        return profile_arn_for(self._settings, await self._credentials(), self.context)

    async def catalog_profile_arn(self) -> str:
        """The profile ARN of catalogue calls (sent whenever the account has one)."""
        creds = await self._credentials()
        return creds.profile_arn or self.context.profile_arn

    async def usage_profile_arn(self) -> str:
        """The profile ARN of GetUsageLimits: Kiro desktop logins only (IdC accounts get 400 with it)."""
        creds = await self._credentials()
        arn = creds.profile_arn or self.context.profile_arn
        return arn if arn and creds.auth_type == "kiro_desktop" else ""

    async def catalog_key(self) -> str:
        """The key this account's catalogue is cached under (see `catalog_account_key`)."""
        creds = await self._credentials()
        base = management_base_url(self._settings, creds.region, self.context)
        return catalog_account_key(base, creds, self._settings, self.context)

    # -- headers ---------------------------------------------------------------------------------------------------

    def headers(self, token: str, *, attempt: int, attempts: int, target: str | None = None,
                content_type: str = "application/json") -> dict[str, str]:
        """The headers of one call: bearer, the Kiro IDE's agents, and `tokentype` for an API key."""
        headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": self._user_agent,
            "x-amz-user-agent": self._amz_user_agent,
            "x-amzn-codewhisperer-optout": "true",
            "x-amzn-kiro-agent-mode": "vibe",
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            "amz-sdk-request": f"attempt={attempt + 1}; max={attempts}",
            # application/json rather than the SDK's x-amz-json-1.0: every Kiro host reads the body as JSON either
            # way, and generic JSON servers (proxies, test doubles) only recognise the former.
            "Content-Type": content_type,
        }
        if target:
            headers["x-amz-target"] = target
        if self.context.api_key:
            headers["tokentype"] = API_KEY_TOKEN_TYPE
        return headers

    async def mcp_headers(self) -> dict[str, str]:
        """What an MCP call adds: the profile ARN header when the account has a profile."""
        arn = await self.profile_arn()
        return {PROFILE_HEADER: arn} if arn else {}
