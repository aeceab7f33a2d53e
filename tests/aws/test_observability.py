"""Request context from LWA's headers, and EMF metrics that appear only on Lambda (or with a namespace set)."""

from __future__ import annotations

import json

import pytest

from gateway import observability


@pytest.fixture
def on_lambda(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "kiro-gateway-GatewayFunction")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "KiroGatewayTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "kiro-gateway")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setattr(observability, "_metrics", None)  # rebuilt from this environment


@pytest.fixture
def off_lambda(monkeypatch):
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(observability, "_metrics", None)


def emf_records(text: str) -> list[dict]:
    records = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            records.append(json.loads(line))
    return records


def value(record: dict, name: str) -> float:
    """A metric's value in an EMF record (Powertools writes a list of values)."""
    raw = record[name]
    return raw[0] if isinstance(raw, list) and len(raw) == 1 else raw


def test_request_context_from_the_lambda_web_adapter_headers():
    headers = {
        "X-Amzn-Lambda-Context": json.dumps({
            "request_id": "8f5e7a1c-0000-4000-8000-000000000000",
            "deadline": 1795683600123,
            "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:gw",
            "xray_trace_id": "Root=1-abc",
        }),
        "x-amzn-request-context": json.dumps({"requestId": "url-request-1", "http": {"method": "POST"}}),
    }
    assert observability.request_context(headers) == {
        "lambda_request_id": "8f5e7a1c-0000-4000-8000-000000000000",
        "deadline_ms": 1795683600123,
        "xray_trace_id": "Root=1-abc",
        "url_request_id": "url-request-1",
    }


def test_request_context_fallbacks():
    assert observability.request_context({"x-amzn-request-id": "rid-1"}) == {"lambda_request_id": "rid-1"}
    assert observability.request_context({"x-amzn-lambda-context": "not json"}) == {}
    assert observability.request_context({}) == {}


def test_no_metrics_off_lambda(off_lambda, capsys):
    observability.record_request("claude-sonnet-4.5", 120.0, 10, 20, "throttled", True)
    observability.record_token_refresh("refreshed")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_request_metrics_on_lambda(on_lambda, capsys):
    observability.record_request("claude-sonnet-4.5", 812.5, 1500, 300, None, True)
    records = emf_records(capsys.readouterr().out)
    assert len(records) == 1
    record = records[0]
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "KiroGatewayTest"
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units == {"Requests": "Count", "InputTokens": "Count", "OutputTokens": "Count",
                     "TimeToFirstToken": "Milliseconds"}
    assert value(record, "Requests") == 1 and value(record, "InputTokens") == 1500
    assert value(record, "OutputTokens") == 300 and value(record, "TimeToFirstToken") == 812.5
    assert directive["Dimensions"] == [["service"]]  # the model is metadata, never a dimension
    assert record["model"] == "claude-sonnet-4.5" and record["streamed"] is True


def test_upstream_errors_carry_their_kind(on_lambda, capsys):
    observability.record_request("auto", None, 10, 0, "first_token_timeout", False)
    records = emf_records(capsys.readouterr().out)
    assert len(records) == 2
    main, errors = records
    assert "TimeToFirstToken" not in main
    error_directive = errors["_aws"]["CloudWatchMetrics"][0]
    assert [m["Name"] for m in error_directive["Metrics"]] == ["UpstreamErrors"]
    assert ["service", "kind"] in error_directive["Dimensions"] or ["kind", "service"] in error_directive["Dimensions"]
    assert errors["kind"] == "first_token_timeout" and value(errors, "UpstreamErrors") == 1
    # The next request's record does not inherit the kind dimension.
    observability.record_request("auto", 5.0, 1, 1, None, True)
    (next_record,) = emf_records(capsys.readouterr().out)
    assert "kind" not in next_record


def test_token_refresh_metric(on_lambda, capsys):
    observability.record_token_refresh("adopted")
    (record,) = emf_records(capsys.readouterr().out)
    assert value(record, "TokenRefreshes") == 1 and record["outcome"] == "adopted"


def test_web_search_metric(on_lambda, capsys):
    observability.record_web_search("failed")
    (record,) = emf_records(capsys.readouterr().out)
    assert value(record, "WebSearches") == 1 and record["outcome"] == "failed"
    observability.record_request("auto", 5.0, 1, 1, None, True)
    (next_record,) = emf_records(capsys.readouterr().out)
    assert "outcome" not in next_record  # the dimension does not leak into the next record
