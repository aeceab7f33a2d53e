"""Configuration from the environment and a `.env` file, under the original Kiro Gateway's variable names.

`Settings` is a set of sections (`settings.server.server_port`, `settings.accounts.account_selection`, …; see
`gateway.settings.sections`). `Settings.from_env` is the one place the gateway reads its configuration from the
environment; values are read raw (no escape processing) so Windows paths survive; `~` is expanded in paths where
they are used. A bad value fails at start-up with one line naming the variable to fix.

`Settings(**flat)` takes today's flat field names (`Settings(proxy_api_key="k")`) and sorts them into sections;
`settings.replace(**flat)` derives a changed copy. Reading a flat name (`settings.proxy_api_key`) still works for code
outside this repository; code inside it reads through the section.

Reads of the environment that stay elsewhere are runtime detection, not settings: `AWS_LAMBDA_FUNCTION_NAME`
(gateway.app, gateway.logging_setup), `NO_COLOR` (the terminal convention, gateway.logging_setup), Powertools' own
`POWERTOOLS_*` (gateway.observability), the Web Adapter's SnapStart hook variables (gateway.snapstart), and the
credential a CLI command adds (gateway.cli.console: deliberately not from `.env`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import os
from collections.abc import Iterator, Mapping
from dataclasses import Field
from functools import cache
from pathlib import Path
from typing import Any, get_type_hints

from gateway.settings.loader import FALSE_WORDS, TRUE_WORDS, ConfigError, check_field, parse, read_dotenv
from gateway.settings.sections import (
    SECTION_TYPES,
    Accounts,
    AwsState,
    ClientKeys,
    Conversations,
    Conversion,
    CredentialsSource,
    Endpoints,
    Logging,
    Models,
    Processing,
    Server,
    Timing,
    Usage,
    WebSearch,
)

__all__ = [
    "DEFAULT_CLIENT_KEYS_FILE", "FALSE_WORDS", "FIELD_SECTION", "SECTION_TYPES", "TRUE_WORDS", "Accounts", "AwsState",
    "ClientKeys", "ConfigError", "Conversations", "Conversion", "CredentialsSource", "Endpoints", "Logging", "Models",
    "Processing", "Server", "Settings", "Timing", "Usage", "WebSearch", "read_dotenv",
]

DEFAULT_CLIENT_KEYS_FILE = "~/.kiro-gateway/client-keys.json"

# flat field name -> the attribute of its section on Settings
FIELD_SECTION: dict[str, str] = {
    spec.name: section for section, kind in SECTION_TYPES.items() for spec in dataclasses.fields(kind)
}


@cache
def _hints(kind: type) -> dict[str, Any]:
    return get_type_hints(kind)


def _specs() -> Iterator[tuple[str, Field, Any]]:
    for section, kind in SECTION_TYPES.items():
        hints = _hints(kind)
        for spec in dataclasses.fields(kind):
            yield section, spec, hints[spec.name]


@dataclasses.dataclass(frozen=True, init=False)
class Settings:
    """Every knob of the gateway, by section. Field names are the environment variable names, lower-cased."""

    server: Server
    client_keys: ClientKeys
    credentials: CredentialsSource
    accounts: Accounts
    endpoints: Endpoints
    timing: Timing
    processing: Processing
    conversion: Conversion
    conversations: Conversations
    usage: Usage
    models: Models
    web_search: WebSearch
    aws: AwsState
    logging: Logging

    def __init__(self, **values: Any) -> None:
        """Sections by name (`server=Server(...)`) and/or flat fields (`proxy_api_key="k"`), flat ones applied last."""
        changes: dict[str, dict[str, Any]] = {section: {} for section in SECTION_TYPES}
        for name, value in values.items():
            if name in SECTION_TYPES:
                continue
            section = FIELD_SECTION.get(name)
            if section is None:
                raise TypeError(f"Settings() got an unexpected keyword argument {name!r}")
            changes[section][name] = value
        for section, kind in SECTION_TYPES.items():
            base = values.get(section)
            if base is None:
                base = kind(**changes[section])
            elif changes[section]:
                base = dataclasses.replace(base, **changes[section])
            object.__setattr__(self, section, base)

    def __getattr__(self, name: str) -> Any:
        """Flat reads (`settings.proxy_api_key`) for code written before the sections."""
        section = FIELD_SECTION.get(name)
        if section is None:
            raise AttributeError(f"'Settings' object has no attribute {name!r}")
        return getattr(getattr(self, section), name)

    def replace(self, **values: Any) -> Settings:
        """A copy with some fields (flat names) or whole sections changed."""
        return dataclasses.replace(self, **values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
        """Settings from `env` (default: os.environ) over a `.env` file; raises ConfigError naming the variable."""
        merged: dict[str, str] = read_dotenv(dotenv) if dotenv is not None else {}
        merged.update(os.environ if env is None else env)
        values: dict[str, object] = {}
        for _, spec, kind in _specs():
            raw = merged.get(spec.name.upper())
            if raw is not None:
                values[spec.name] = parse(spec.name.upper(), raw.strip(), kind)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Every field's choices and range (declared on the field), then the checks that span fields."""
        for section, spec, kind in _specs():
            check_field(spec, kind, getattr(getattr(self, section), spec.name))
        for entry in filter(None, (part.strip() for part in self.client_keys.trusted_proxy_ips.split(","))):
            try:
                if entry != "*":
                    ipaddress.ip_address(entry.strip("[]"))
            except ValueError:
                raise ConfigError(f"TRUSTED_PROXY_IPS: {entry!r} is not an IP address (or *)") from None
        proxy = self.endpoints.vpn_proxy_url
        if proxy.lower().startswith("socks") and importlib.util.find_spec("socksio") is None:
            raise ConfigError("VPN_PROXY_URL is a SOCKS proxy: install SOCKS support with `pip install 'httpx[socks]'`")

    @property
    def client_keys_path(self) -> Path | None:
        """KIRO_CLIENT_KEYS_FILE; by default ~/.kiro-gateway/client-keys.json, except on AWS (keys in the secret)."""
        if self.client_keys.kiro_client_keys_file:
            return Path(self.client_keys.kiro_client_keys_file).expanduser()
        return None if self.aws.kiro_secret_id else Path(DEFAULT_CLIENT_KEYS_FILE).expanduser()
