"""What a Kiro client reads: the few sections of the settings it needs, with one account's host kind, API region
and profile applied. Built once per account (gateway.accounts.setup), never a modified copy of the whole settings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from gateway.settings import CredentialsSource, Endpoints, Models, Settings, Timing, Usage


@dataclass(frozen=True)
class UpstreamSettings:
    """The sections a `KiroClient` reads (same names as on `Settings`); no secret: tokens come from the account."""

    endpoints: Endpoints = field(default_factory=Endpoints)
    timing: Timing = field(default_factory=Timing)
    credentials: CredentialsSource = field(default_factory=CredentialsSource)  # regions and profile ARN only
    usage: Usage = field(default_factory=Usage)
    models: Models = field(default_factory=Models)

    @classmethod
    def from_settings(cls, settings: Settings, *, api_host: str = "", api_region: str = "",
                      profile_arn: str | None = None) -> UpstreamSettings:
        """The gateway-wide sections, with an account's host kind, API region and profile ARN when it names them."""
        endpoints = settings.endpoints
        if api_host:
            endpoints = dataclasses.replace(endpoints, kiro_api_host=api_host)  # type: ignore[arg-type]
        source = settings.credentials
        credentials = dataclasses.replace(
            source, refresh_token="", kiro_api_region=api_region or source.kiro_api_region,
            profile_arn=source.profile_arn if profile_arn is None else profile_arn)
        return cls(endpoints=endpoints, timing=settings.timing, credentials=credentials, usage=settings.usage,
                   models=settings.models)
