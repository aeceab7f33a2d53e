"""`kiro-gateway usage [--json] [--url URL]`: the `GET /v1/usage` report in the terminal.

Run it with the same environment and working directory as `serve` (or as the deployed stack: KIRO_SECRET_ID and
KIRO_STATE_TABLE): it reads the same settings, credentials and usage store and asks Kiro itself. With `--url` it
asks a running gateway instead, with PROXY_API_KEY (or `--key`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import httpx

from gateway.runtime import GatewayRuntime
from gateway.settings import ConfigError, Settings


async def _local_report(settings: Settings) -> dict[str, Any]:
    runtime = await GatewayRuntime.create(settings)
    try:
        return await runtime.usage.report()
    finally:
        await runtime.aclose()


def _remote_report(url: str, key: str) -> dict[str, Any]:
    response = httpx.get(f"{url.rstrip('/')}/v1/usage", headers={"x-api-key": key}, timeout=30.0)
    if response.status_code != 200:
        raise RuntimeError(f"the gateway answered {response.status_code}: {response.text[:300]}")
    return response.json()


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "unknown"
    return f"{value:,.{digits}f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"


def _period(name: str, period: dict[str, Any]) -> list[str]:
    lines = [f"{name}: {_number(period.get('requests'))} requests, {_number(period.get('credits'))} credits, "
             f"{_number(period.get('inputTokens'))} input / {_number(period.get('outputTokens'))} output tokens, "
             f"{_number(period.get('errors'))} errors"]
    if period.get("webSearches") or period.get("creditsUnknown"):  # searches carry nominal credits (docs/web-search.md)
        lines[0] += (f", {_number(period.get('webSearches'))} web searches ({_number(period.get('nominalCredits'))} "
                     f"nominal credits), {_number(period.get('creditsUnknown'))} answers of unknown cost")
    for field, title in (("byModel", "by model"), ("byKey", "by client key")):
        for label, row in (period.get(field) or {}).items():
            lines.append(f"    {title} {label}: {_number(row.get('credits'))} credits, "
                         f"{_number(row.get('requests'))} requests")
    return lines


def render(report: dict[str, Any]) -> str:
    """The report as a few readable lines."""
    credits = report.get("credits") or {}
    overage = report.get("overage") or {}
    gateway = report.get("gateway") or {}
    ttft = gateway.get("timeToFirstTokenMs") or {}
    reset = report.get("resetsAt") or "unknown"
    if report.get("daysUntilReset") is not None:
        reset += f" (in {report['daysUntilReset']} days)"
    lines = [
        f"Plan:      {report.get('plan') or 'unknown'}",
        f"Credits:   {_number(credits.get('used'))} used of {_number(credits.get('limit'))}, "
        f"{_number(credits.get('remaining'))} remaining ({credits.get('unit') or 'credit'})",
        f"Resets:    {reset}",
        f"Overage:   {overage.get('status') or 'unknown'}",
    ]
    if report.get("limitsError"):
        lines.append(f"Note:      {report['limitsError']}")
    lines.append("")
    lines += _period("This gateway today", gateway.get("today") or {})
    lines += _period("This gateway this month", gateway.get("month") or {})
    lines.append(f"Time to first token (31 days, {ttft.get('count', 0)} answers): p50 <= {ttft.get('p50')} ms, "
                 f"p90 <= {ttft.get('p90')} ms, p99 <= {ttft.get('p99')} ms")
    for kind, entry in (gateway.get("errors") or {}).items():
        lines.append(f"Errors {kind}: {entry.get('count')} (last {entry.get('lastAt')})")
    return "\n".join(lines)


def usage(args: argparse.Namespace) -> int:
    try:
        if args.url:
            key = args.key or Settings.from_env().server.proxy_api_key
            if not key:
                print("kiro-gateway usage: --url needs the client key (--key or PROXY_API_KEY)", file=sys.stderr)
                return 2
            report = _remote_report(args.url, key)
        else:
            report = asyncio.run(_local_report(Settings.from_env()))
    except ConfigError as error:
        print(f"kiro-gateway: configuration error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        print(f"kiro-gateway usage: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def register(commands: Any) -> None:
    parser = commands.add_parser("usage", help="credits: Kiro's plan and limits, and this gateway's counters")
    parser.add_argument("--json", action="store_true", help="print the GET /v1/usage JSON")
    parser.add_argument("--url", help="ask a running gateway at this URL instead of reading the stores")
    parser.add_argument("--key", help="client key for --url (default PROXY_API_KEY)")
    parser.set_defaults(handler=usage)
