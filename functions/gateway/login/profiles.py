"""Which Kiro profile an IAM Identity Center login uses: `ListAvailableProfiles` (awsJson1.0) in each API region.

The runtime host needs a profile ARN for every request; Builder ID logins have none (they use the q host). The ARN's
region (its 4th field) is the account's API region. Base URL: KIRO_PROFILES_URL, else KIRO_API_BASE_URL (tests,
unusual networks), else `https://management.{region}.kiro.dev` (docs/protocol.md §Profiles). Runs at login only,
before the credential is an account of the pool; its URL and headers come from `gateway.upstream.endpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from gateway.login.device import REQUEST_TIMEOUT, LoginError
from gateway.settings import Settings
from gateway.upstream.endpoint import login_headers, profiles_base_url

API_REGIONS = ("us-east-1", "eu-central-1")
TARGET = "AmazonCodeWhispererService.ListAvailableProfiles"


@dataclass(frozen=True)
class Profile:
    arn: str
    name: str

    @property
    def region(self) -> str:
        parts = self.arn.split(":")
        return parts[3] if len(parts) > 4 else ""


def list_profiles(http: httpx.Client, settings: Settings, access_token: str) -> list[Profile]:
    """Every profile the login may use, over the API regions (one call when a base URL is configured)."""
    endpoints = settings.endpoints
    fixed = bool(endpoints.kiro_profiles_url or endpoints.kiro_management_base_url or endpoints.kiro_api_base_url)
    regions = (settings.credentials.kiro_api_region or API_REGIONS[0],) if fixed else API_REGIONS
    found: dict[str, Profile] = {}
    problems: list[str] = []
    for region in regions:
        headers = login_headers(access_token, TARGET, "application/x-amz-json-1.0")
        try:
            response = http.post(f"{profiles_base_url(settings, region)}/", content=b"{}", headers=headers,
                                 timeout=REQUEST_TIMEOUT)
        except httpx.HTTPError as error:
            problems.append(f"{region}: {type(error).__name__}")
            continue
        if response.status_code != 200:
            problems.append(f"{region}: HTTP {response.status_code}")
            continue
        try:
            data: Any = response.json()
        except ValueError:
            data = {}
        for item in (data.get("profiles") if isinstance(data, dict) else None) or []:
            if isinstance(item, dict) and isinstance(item.get("arn"), str):
                found[item["arn"]] = Profile(item["arn"], str(item.get("profileName") or ""))
    if not found and problems:
        raise LoginError(f"Could not list the Kiro profiles of this login ({'; '.join(problems)}); pass "
                         "--profile-arn if you know it.")
    return list(found.values())


def choose_profile(profiles: list[Profile], wanted: str) -> Profile | None:
    """The profile to use: `wanted` (must be listed, when anything is), the only one, or an error naming them."""
    if wanted:
        match = next((p for p in profiles if p.arn == wanted), None)
        if match is None and profiles:
            raise LoginError(f"--profile-arn {wanted} is not among this login's profiles: "
                             + ", ".join(f"{p.name or '-'} ({p.arn})" for p in profiles))
        return match or Profile(wanted, "")
    if len(profiles) > 1:
        raise LoginError("This login may use several Kiro profiles; pick one with --profile-arn: "
                         + ", ".join(f"{p.name or '-'} ({p.arn})" for p in profiles))
    return profiles[0] if profiles else None
