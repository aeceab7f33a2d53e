"""What one Kiro client needs to know: the shared endpoint and timing sections plus its account's own host kind,
regions and profile. Built once per account (gateway.accounts.setup), never a modified copy of the whole settings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from gateway.settings import Endpoints, Settings, Timing


@dataclass(frozen=True)
class KiroClientConfig:
    """One account's view of Kiro (no secret here: tokens come from the account's auth)."""

    endpoints: Endpoints = field(default_factory=Endpoints)
    timing: Timing = field(default_factory=Timing)
    region: str = "us-east-1"  # SSO / auth region, the last fallback for the API region
    api_region: str = ""  # the account's or KIRO_API_REGION; empty: the credentials' region, then `region`
    profile_arn: str = ""  # sent when the credentials carry none
    usage_base_url: str = ""  # KIRO_USAGE_BASE_URL
    models_rest_fallback: bool = False  # KIRO_MODELS_REST_FALLBACK

    @classmethod
    def from_settings(cls, settings: Settings, *, api_host: str = "", api_region: str = "",
                      profile_arn: str | None = None) -> KiroClientConfig:
        """The gateway-wide configuration, with an account's host kind, API region and profile ARN when it has them."""
        endpoints = settings.endpoints
        if api_host:
            endpoints = dataclasses.replace(endpoints, kiro_api_host=api_host)  # type: ignore[arg-type]
        return cls(endpoints=endpoints, timing=settings.timing, region=settings.credentials.kiro_region,
                   api_region=api_region or settings.credentials.kiro_api_region,
                   profile_arn=settings.credentials.profile_arn if profile_arn is None else profile_arn,
                   usage_base_url=settings.usage.kiro_usage_base_url,
                   models_rest_fallback=settings.models.kiro_models_rest_fallback)

    def region_for(self, creds_region: str = "") -> str:
        """The API region: the configured one, else the credentials', else the auth region."""
        return self.api_region or creds_region or self.region
