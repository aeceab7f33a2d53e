"""Request context and CloudWatch metrics (Powertools EMF) that work under the Lambda Web Adapter.

Under LWA there is no Python handler, so Powertools' decorators (`@logger.inject_lambda_context`,
`@metrics.log_metrics`) never run. Instead:

* `request_context(headers)` pulls the Lambda request id (and deadline, X-Ray trace id) out of the headers LWA adds,
  for `logger.append_keys(**ctx)` or a logging `extra=` in request middleware;
* `record_request(...)` / `record_token_refresh(...)` add metrics and flush them at once, one EMF line on stdout,
  which CloudWatch turns into metrics.

Metrics are emitted only on Lambda (`AWS_LAMBDA_FUNCTION_NAME`) or when `POWERTOOLS_METRICS_NAMESPACE` is set;
anywhere else both functions do nothing, so local runs print no EMF blobs. Dimensions stay low-cardinality (the
service, and `kind` for errors): the model name goes into the EMF metadata, not a dimension, so a client sending
arbitrary model names cannot create paid custom metrics. No token, key or request content is ever recorded.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "KiroGateway"
DEFAULT_SERVICE = "kiro-gateway"

_lock = threading.Lock()
_metrics: Any = None


def metrics_enabled() -> bool:
    """True on Lambda or when a metrics namespace is configured (and Powertools metrics are not disabled)."""
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.environ.get("POWERTOOLS_METRICS_NAMESPACE"))


def _get_metrics() -> Any:
    global _metrics
    if _metrics is None:
        # lazy: Powertools loads only on Lambda, where metrics are emitted
        from aws_lambda_powertools import Metrics

        _metrics = Metrics(
            namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
            service=os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE,
        )
    return _metrics


def _header(headers: Mapping[str, str] | Any, name: str) -> str:
    value = headers.get(name)
    if value is None and hasattr(headers, "items"):
        lowered = name.lower()
        for key, candidate in headers.items():
            if str(key).lower() == lowered:
                value = candidate
                break
    return value if isinstance(value, str) else ""


def request_context(headers: Mapping[str, str] | Any) -> dict[str, Any]:
    """Lambda request id and friends from the request headers; {} outside Lambda.

    `x-amzn-lambda-context` (JSON, added by LWA) gives `request_id`, `deadline` (epoch ms) and `xray_trace_id`;
    `x-amzn-request-context` (the Function URL / API Gateway request context) gives its `requestId`;
    `x-amzn-request-id` is the fallback. Accepts any mapping (Starlette `Headers` included).
    """
    context: dict[str, Any] = {}
    raw = _header(headers, "x-amzn-lambda-context")
    if raw:
        try:
            lambda_context = json.loads(raw)
        except ValueError:
            lambda_context = None
        if isinstance(lambda_context, dict):
            if lambda_context.get("request_id"):
                context["lambda_request_id"] = str(lambda_context["request_id"])
            if isinstance(lambda_context.get("deadline"), int | float):
                context["deadline_ms"] = int(lambda_context["deadline"])
            if lambda_context.get("xray_trace_id"):
                context["xray_trace_id"] = str(lambda_context["xray_trace_id"])
    raw = _header(headers, "x-amzn-request-context")
    if raw:
        try:
            url_context = json.loads(raw)
        except ValueError:
            url_context = None
        if isinstance(url_context, dict) and url_context.get("requestId"):
            context["url_request_id"] = str(url_context["requestId"])
    if "lambda_request_id" not in context:
        fallback = _header(headers, "x-amzn-request-id")
        if fallback:
            context["lambda_request_id"] = fallback
    return context


def record_request(
    model: str,
    ttft_ms: float | None,
    input_tokens: int,
    output_tokens: int,
    error_kind: str | None,
    streamed: bool,
    credits: float | None = None,
) -> None:
    """Emit one request's metrics: Requests, InputTokens, OutputTokens, Credits (Kiro's metering, when it sent
    any), TimeToFirstToken (ms, when known), and UpstreamErrors with dimension `kind` when `error_kind` is set.
    Flushed immediately; never raises."""
    if not metrics_enabled():
        return
    try:
        # lazy: Powertools loads only on Lambda, where metrics are emitted
        from aws_lambda_powertools.metrics import MetricUnit

        with _lock:
            metrics = _get_metrics()
            metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
            metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=max(0, int(input_tokens)))
            metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=max(0, int(output_tokens)))
            if credits is not None:
                metrics.add_metric(name="Credits", unit=MetricUnit.Count, value=max(0.0, float(credits)))
            if ttft_ms is not None:
                metrics.add_metric(name="TimeToFirstToken", unit=MetricUnit.Milliseconds, value=float(ttft_ms))
            metrics.add_metadata(key="model", value=str(model)[:200])
            metrics.add_metadata(key="streamed", value=bool(streamed))
            if error_kind:
                metrics.add_metadata(key="error_kind", value=str(error_kind)[:100])
            metrics.flush_metrics()
            if error_kind:
                # A separate EMF record, so only the error count carries the `kind` dimension.
                metrics.add_dimension(name="kind", value=str(error_kind)[:100])
                metrics.add_metric(name="UpstreamErrors", unit=MetricUnit.Count, value=1)
                metrics.add_metadata(key="model", value=str(model)[:200])
                metrics.flush_metrics()
    except Exception as error:  # metrics must never break a request
        log.warning("could not emit request metrics: %s", type(error).__name__)


def _emit(what: str, dimensions: dict[str, str], counts: dict[str, float]) -> None:
    """One EMF record: `counts` (metric name → Count value) under `dimensions`, flushed at once. Never raises:
    metrics must never break a request (`what` names them in the warning)."""
    if not metrics_enabled():
        return
    try:
        # lazy: Powertools loads only on Lambda, where metrics are emitted
        from aws_lambda_powertools.metrics import MetricUnit

        with _lock:
            metrics = _get_metrics()
            for name, value in dimensions.items():
                metrics.add_dimension(name=name, value=value)
            for name, count in counts.items():
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
            metrics.flush_metrics()
    except Exception as error:
        log.warning("could not emit %s metrics: %s", what, type(error).__name__)


def record_web_search(outcome: str) -> None:
    """Emit WebSearches with dimension `outcome` ("results" or "failed"). Never raises."""
    _emit("web search", {"outcome": str(outcome)[:100]}, {"WebSearches": 1})


def record_token_refresh(outcome: str) -> None:
    """Emit TokenRefreshes with dimension `outcome` (e.g. "refreshed", "adopted", "failed"). Never raises."""
    _emit("refresh", {"outcome": str(outcome)[:100]}, {"TokenRefreshes": 1})


def record_key_request(client_key: str, input_tokens: int, output_tokens: int, credits: float | None,
                       error_kind: str | None) -> None:
    """Per-key figures: Requests, InputTokens, OutputTokens, Credits (when metered) and Errors with dimension
    `client_key` (a key's name, never the key; names are chosen by the owner, so the dimension stays small)."""
    if not client_key:
        return
    counts: dict[str, float] = {"Requests": 1, "InputTokens": max(0, int(input_tokens)),
                                "OutputTokens": max(0, int(output_tokens))}
    if credits is not None:
        counts["Credits"] = max(0.0, float(credits))
    counts["Errors"] = 1 if error_kind else 0
    _emit("per-key", {"client_key": str(client_key)[:64]}, counts)


def record_key_refusal(client_key: str, limit: str) -> None:
    """LimitRefusals with dimensions `client_key` and `limit` (rpm, concurrency, ...): a request refused with 429."""
    _emit("refusal", {"client_key": str(client_key)[:64], "limit": str(limit)[:32]}, {"LimitRefusals": 1})


def record_auth_failure(blocked: bool) -> None:
    """AuthFailures (and AuthBlocks when this failure blocked its address); no address or key is recorded."""
    _emit("authentication", {}, {"AuthFailures": 1, **({"AuthBlocks": 1} if blocked else {})})


def record_state_table_unavailable(check: str) -> None:
    """StateTableUnavailable with dimension `check`: a check that could not reach DynamoDB (the outage policy)."""
    _emit("outage", {"check": str(check)[:64]}, {"StateTableUnavailable": 1})
