"""`kiro-gateway doctor`: a short live check of the user's own Kiro setup, with the same settings and credential
discovery as `serve`.

Free checks first (credentials, the account's catalogue), then, after saying how many requests it will make and at
which credit multiplier and getting a yes, one tiny streamed request per model family: did it answer, did native
reasoning frames arrive (asked for with the lowest effort of the model's own schema), did Kiro's usage trailer
arrive. Every failing check names the setting to change. Nothing printed ever contains a token (all output goes
through the log scrubber, which knows every token the runtime handed out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from gateway.accounts.pool import Account
from gateway.auth.refresh import RefreshError
from gateway.logging_setup import SCRUBBER, configure_logging
from gateway.runtime import GatewayRuntime
from gateway.settings import ConfigError, Settings
from gateway.stores.base import Credentials
from gateway.upstream.kiro_client import KiroClient, RetryPolicy
from kiro_core.doctor_plan import Probe, StreamCensus, default_models, plan, probe_payload
from kiro_core.errors import GatewayError
from kiro_core.models_catalog import ModelCatalog

PROBE_TIMEOUT = 90.0  # seconds for one whole probe answer; a one-word reply takes a few


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, Any]:
        detail = f"{self.detail} (fix: {self.fix})" if self.fix and not self.ok else self.detail
        return {"name": self.name, "ok": self.ok, "detail": SCRUBBER.scrub(detail)}


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    catalog: list[str] = field(default_factory=list)
    credits: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str, fix: str = "") -> Check:
        check = Check(name, ok, detail, fix)
        self.checks.append(check)
        return check

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "catalog": self.catalog, "checks": [c.as_json() for c in self.checks],
                "credits": round(self.credits, 6)}


Confirm = Callable[[str], bool]  # shows the plan, returns whether to go ahead


class NotConfirmed(Exception):
    """The plan could not be confirmed (no terminal and no --yes)."""


def mask_arn(arn: str) -> str:
    """`arn:aws:codewhisperer:us-east-1:****:profile/…ABCD`: region kept (it matters for hosts), account hidden."""
    parts = arn.split(":")
    if len(parts) < 6:
        return "…" + arn[-4:] if arn else "(none)"
    resource = parts[5]
    head, _, tail = resource.rpartition("/")
    return ":".join([*parts[:4], "****", f"{head}/…{tail[-4:]}" if head else f"…{resource[-4:]}"])


async def diagnose(settings: Settings, model_ids: list[str] | None, confirm: Confirm) -> Report:
    """Run every check; `confirm` is asked once, before the first request that costs credits."""
    report = Report()
    runtime = await GatewayRuntime.create(settings)
    try:
        # doctor checks one account: the first enabled one (`kiro-gateway accounts` lists them all)
        account = runtime.pool.first() if runtime.pool is not None else None
        if account is None or account.auth is None or account.store is None:
            report.add("credentials", False, f"no Kiro credentials found. {runtime.credentials_problem}",
                       "log in with the Kiro IDE or kiro-cli, or set REFRESH_TOKEN (+ PROFILE_ARN), KIRO_CREDS_FILE "
                       "or KIRO_CLI_DB_FILE")
            return report
        kiro = account.kiro
        creds = await _check_credentials(report, account, settings)
        if creds is None:
            return report
        raw = await _check_catalog(report, kiro, settings, creds)
        probes = _choose(report, raw or [], model_ids)
        if not probes:
            return report
        try:
            go_ahead = confirm(describe_plan(probes))
        except NotConfirmed as refused:
            print(f"kiro-gateway doctor: {refused}", file=sys.stderr)
            report.add("confirmation", False, str(refused), "pass --yes")
            return report
        if not go_ahead:
            report.add("confirmation", False, "no requests were sent: not confirmed",
                       "answer y at the prompt, or pass --yes")
            return report
        timing = settings.timing  # one attempt: exactly what was announced
        kiro.retry = RetryPolicy(1, timing.base_retry_delay, timing.max_retry_delay)
        arn = await kiro.profile_arn()
        for probe in probes:
            await _run_probe(report, kiro, probe, arn)
        return report
    finally:
        await runtime.aclose()


async def _check_credentials(report: Report, account: Account, settings: Settings) -> Credentials | None:
    assert account.store is not None and account.auth is not None
    loaded = await account.store.load()
    kind = "AWS SSO OIDC refresh token" if loaded.auth_type == "aws_sso_oidc" else "Kiro desktop refresh token"
    try:
        creds = await account.auth.credentials()
    except RefreshError as error:
        report.add("credentials", False, f"{kind} from {account.store.describe()}: refresh failed ({error.message})",
                   "log in again with the Kiro IDE or kiro-cli (the refresh token is spent or revoked); check "
                   "KIRO_REGION for SSO logins and VPN_PROXY_URL if the token service is unreachable")
        return None
    SCRUBBER.add(creds.access_token, creds.refresh_token, creds.client_secret)
    refreshed = "refreshed now" if creds.access_token != loaded.access_token else "cached, no refresh needed"
    expiry = _when(creds.expires_at)
    arn = creds.profile_arn or settings.credentials.profile_arn
    report.add("credentials", True, f"{kind} from {account.store.describe()}; access token valid until {expiry} "
               f"({refreshed}); region {creds.region or settings.credentials.kiro_region}; profile {mask_arn(arn)}")
    return creds


async def _check_catalog(report: Report, kiro: KiroClient, settings: Settings,
                         creds: Credentials) -> list[dict[str, Any]] | None:
    host = (await kiro.endpoint.management_url()).rstrip("/")
    try:
        raw = await kiro.list_models()
    except GatewayError as error:
        report.add("catalogue", False, f"ListAvailableModels on {host} failed: {error.message}",
                   "KIRO_MANAGEMENT_BASE_URL (or KIRO_API_BASE_URL), KIRO_API_REGION, PROFILE_ARN; or "
                   "KIRO_MODELS_REST_FALLBACK=true to try the legacy REST operation")
        return None
    if not raw:
        report.add("catalogue", False, f"ListAvailableModels on {host} returned no models",
                   "PROFILE_ARN / KIRO_API_REGION: the profile may not be active in this region")
        return None
    report.catalog = [row["id"] for row in ModelCatalog(raw).list_models()]
    names = ", ".join(str(m.get("modelId")) for m in raw)
    report.add("catalogue", True, f"{len(raw)} models from {host}: {names}")
    return raw


def _choose(report: Report, raw: list[dict[str, Any]], model_ids: list[str] | None) -> list[Probe]:
    if model_ids:
        catalog = ModelCatalog(raw or None)
        return plan(raw, [catalog.resolve(name).kiro_id for name in model_ids])
    chosen = default_models(raw)
    if not chosen:
        report.add("models", False, "no catalogue to pick one model per family from",
                   "fix the catalogue check, or name models with --models ID,ID")
    return plan(raw, chosen)


def describe_plan(probes: list[Probe]) -> str:
    """What will be spent, said before anything is."""
    lines = [f"The doctor will now send {len(probes)} streamed request(s), one short prompt each "
             "(typically a few hundredths of a credit times the model's multiplier):"]
    for probe in probes:
        rate = f"rateMultiplier {probe.rate_multiplier:g}" if probe.rate_multiplier is not None else "rate unknown"
        effort = next((v["effort"] for v in (probe.fields or {}).values() if isinstance(v, dict) and "effort" in v),
                      None)
        reasoning = f"native reasoning at effort {effort}" if effort else "no request-field schema"
        lines.append(f"  - {probe.model_id} ({rate}; {reasoning})")
    return "\n".join(lines)


async def _run_probe(report: Report, kiro: KiroClient, probe: Probe, arn: str) -> None:
    census = StreamCensus()
    body = probe_payload(probe, str(uuid.uuid4()), arn)

    async def stream() -> None:
        response = await kiro.open_chat_stream(body)
        try:
            async for chunk in response.aiter_raw():
                census.feed(chunk)
        finally:
            await response.aclose()

    name = probe.model_id
    try:
        await asyncio.wait_for(stream(), PROBE_TIMEOUT)
    except GatewayError as error:
        report.add(f"request {name}", False, error.message, _fix_for(error.status, error.message))
        return
    except TimeoutError:
        report.add(f"request {name}", False, f"no complete answer within {PROBE_TIMEOUT:.0f} s",
                   "VPN_PROXY_URL / KIRO_API_REGION (a slow or blocked route), STREAMING_READ_TIMEOUT")
        return
    report.credits += census.credits
    if census.errors:
        message = "; ".join(census.errors)
        report.add(f"request {name}", False, f"error in the stream: {message}", _fix_for(None, message))
    else:
        report.add(f"request {name}", bool(census.text), f"answered {census.text.strip()[:60]!r}"
                   if census.text else "the stream carried no answer text", "" if census.text else
                   "KIRO_API_HOST / KIRO_API_BASE_URL: the host answered without assistantResponseEvent frames")
    _reasoning_check(report, probe, census)
    seen = census.usage_seen()
    missing = [e for e in ("meteringEvent", "contextUsageEvent", "metadataEvent") if e not in seen]
    detail = f"seen: {', '.join(seen) or 'none'}" + (f"; missing: {', '.join(missing)}" if missing else "")
    detail += f"; credits {census.credits:g}"
    report.add(f"usage {name}", "meteringEvent" in seen, detail,
               "the stream ended without Kiro's usage trailer, so credits cannot be reported: check VPN_PROXY_URL "
               "(a proxy cutting streams), STREAMING_READ_TIMEOUT, or KIRO_API_HOST=runtime")


def _reasoning_check(report: Report, probe: Probe, census: StreamCensus) -> None:
    frames = census.events["reasoningContentEvent"]
    name = f"reasoning {probe.model_id}"
    if probe.fields is None:
        note = f" ({frames} reasoningContentEvent frames arrived anyway)" if frames else ""
        report.add(name, True, "no request-field schema: native reasoning not expected; FAKE_REASONING tag "
                   f"injection covers this model{note}")
        return
    sent = json.dumps(probe.fields, separators=(",", ":"))
    if frames:
        report.add(name, True, f"{frames} reasoningContentEvent frames for additionalModelRequestFields {sent}")
    else:
        report.add(name, False, f"no reasoningContentEvent although additionalModelRequestFields {sent} was sent",
                   "nothing in the gateway turns this on: native reasoning is not available to this account/model; "
                   "keep FAKE_REASONING=true so clients still get <thinking> reasoning")


def _fix_for(status: int | None, message: str) -> str:
    """The setting to change for an upstream failure."""
    text = message.lower()
    if "invalid_model_id" in text or "does not know this model" in text or "invalid model" in text:
        return "this account's catalogue does not offer the model: pick one /v1/models lists with --models"
    if "profilearn" in text:
        return "PROFILE_ARN (the runtime host needs the profile of this account), or KIRO_API_HOST=q for Builder ID"
    if "additionalmodelrequestfields" in text:
        return ("the model refused the request fields built from its own schema: native effort will fail for it "
                "too; no setting helps, report it")
    if status in (401, 403) or "bearer token" in text or "not authorized" in text:
        return ("log in again (Kiro IDE / kiro-cli) or set REFRESH_TOKEN; a refused profile means PROFILE_ARN or "
                "KIRO_API_REGION is wrong; an API key may need KIRO_API_HOST=q")
    if status == 429 or "throttl" in text or "too many requests" in text:
        return "throttled: wait a minute and re-run (the gateway itself retries per MAX_RETRIES / BASE_RETRY_DELAY)"
    if status == 402 or "quota" in text or "limit" in text:
        return "the account's credits or request quota are used up: see app.kiro.dev; no setting helps"
    return "KIRO_API_REGION, KIRO_API_HOST or KIRO_API_BASE_URL (the chat host), VPN_PROXY_URL (the route)"


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "unknown"


# -- command line ------------------------------------------------------------------------------------------------


def interactive(stream: TextIO | None) -> bool:
    try:
        return stream is not None and not stream.closed and stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def terminal_confirm(yes: bool, human: TextIO, stdin: TextIO | None) -> Confirm:
    """The confirmation step: `--yes` goes ahead after showing the plan; otherwise ask on a terminal, and refuse
    (no credits spent) when stdin is closed or not a terminal."""

    def confirm(plan_text: str) -> bool:
        print(plan_text, file=human)
        if yes:
            return True
        if not interactive(stdin):
            raise NotConfirmed("refusing to spend credits without confirmation: stdin is not a terminal. "
                               "Re-run with --yes to go ahead.")
        print("Proceed? [y/N] ", end="", file=human, flush=True)
        assert stdin is not None
        return stdin.readline().strip().lower() in {"y", "yes"}

    return confirm


def render_table(report: Report) -> str:
    rows = [(c.name, "ok" if c.ok else "FAIL", SCRUBBER.scrub(c.detail)) for c in report.checks]
    width = max([len(r[0]) for r in rows] + [5])
    lines = [f"{'check':<{width}}  {'':4}  detail", f"{'-' * width}  ----  ------"]
    for check, (name, verdict, detail) in zip(report.checks, rows, strict=True):
        lines.append(f"{name:<{width}}  {verdict:<4}  {detail}")
        if not check.ok and check.fix:
            lines.append(f"{'':<{width}}        fix: {SCRUBBER.scrub(check.fix)}")
    lines.append(f"credits spent: {report.credits:g}   result: {'all checks passed' if report.ok else 'FAILED'}")
    return "\n".join(lines)


def register(subparsers: Any) -> None:
    doctor_parser = subparsers.add_parser("doctor", help="check credentials, catalogue and a few live requests "
                                          "(asks first: costs a few credits)")
    doctor_parser.add_argument("--models", help="comma-separated model ids as /v1/models lists them "
                               "(default: one model per family in the catalogue)")
    doctor_parser.add_argument("--yes", action="store_true", help="do not ask before sending the paid requests")
    doctor_parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    doctor_parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """`kiro-gateway doctor`: exit 0 when every check passed, 1 otherwise."""
    human = sys.stderr if args.json else sys.stdout
    model_ids = [m.strip() for m in (args.models or "").split(",") if m.strip()] or None
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        report = Report()
        report.add("settings", False, str(error), "fix the variable named above")
        return _finish(report, args.json, human)
    configure_logging("ERROR")  # JSON on stderr, scrubbed; warnings become checks instead
    report = asyncio.run(diagnose(settings, model_ids, terminal_confirm(args.yes, human, sys.stdin)))
    return _finish(report, args.json, human)


def _finish(report: Report, as_json: bool, human: TextIO) -> int:
    if as_json:
        print(SCRUBBER.scrub(json.dumps(report.as_json())))
    else:
        print(render_table(report), file=human)
    return 0 if report.ok else 1
