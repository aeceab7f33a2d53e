"""The live catalogue end to end: the gateway asks the management operation (awsJson1.0, every page), and both
SDKs read `/v1/models` with the additive capability fields; today's names reach Kiro as catalogue ids."""

from __future__ import annotations

import anthropic
import httpx
import openai

from tests.integration.conftest import API_KEY
from tests.support.fake_kiro import DEFAULT_MODELS, FakeKiro
from tests.support.gateway_process import GatewayProcess


def test_models_come_from_the_management_operation_with_capabilities(gateway: GatewayProcess,
                                                                       fake: FakeKiro) -> None:
    rows = httpx.get(f"{gateway.url}/v1/models", headers={"x-api-key": API_KEY}).json()["data"]
    by_id = {row["id"]: row for row in rows}
    expected = {m["modelId"] for m in DEFAULT_MODELS} - {"auto"}
    assert expected <= set(by_id)  # all pages were followed
    opus = by_id["claude-opus-5.5"]
    assert opus["max_input_tokens"] == 1_000_000 and opus["max_output_tokens"] == 128_000
    assert opus["reasoning_efforts"] == ["low", "medium", "high", "xhigh", "max"]
    assert opus["supports_prompt_caching"] is True and opus["rate_multiplier"] == 2.0
    assert by_id["gpt-5.6-sol"]["reasoning_efforts"][0] == "none"
    assert "reasoning_efforts" not in by_id["claude-sonnet-4.5"] and "reasoning_efforts" not in by_id["glm-5"]
    assert by_id["glm-5"]["supports_prompt_caching"] is False

    openai_ids = [m.id for m in openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY).models.list()]
    anthropic_ids = [m.id for m in anthropic.Anthropic(base_url=gateway.url, api_key=API_KEY).models.list()]
    assert "claude-sonnet-5" in openai_ids and "claude-sonnet-5" in anthropic_ids


def test_catalogue_requests_are_aws_json_and_the_list_is_cached(gateway: GatewayProcess, fake: FakeKiro) -> None:
    for _ in range(3):
        assert httpx.get(f"{gateway.url}/v1/models", headers={"x-api-key": API_KEY}).status_code == 200
    for received in fake.requests("models"):  # nothing, or one paginated fetch since the module's first call
        assert received.method == "POST" and received.query["origin"] == "AI_EDITOR"
        assert received.headers["x-amz-target"] == "AmazonCodeWhispererService.ListAvailableModels"
        assert received.headers["content-type"] == "application/x-amz-json-1.0"
        assert received.json["origin"] == "AI_EDITOR" and received.json["profileArn"] == fake.profile_arn
    assert len(fake.requests("models")) <= -(-len(DEFAULT_MODELS) // fake.models_page_size)


def test_claude_5_names_reach_kiro_as_catalogue_ids(gateway: GatewayProcess, fake: FakeKiro) -> None:
    api = anthropic.Anthropic(base_url=gateway.url, api_key=API_KEY, max_retries=0)
    for name, wire in (("claude-opus-5-5[1m]", "claude-opus-5.5"), ("claude-sonnet-5", "claude-sonnet-5"),
                       ("claude-sonnet-5-5-20260101", "claude-sonnet-5.5"), ("gpt-5.6-luna", "gpt-5.6-luna")):
        api.messages.create(model=name, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
        sent = fake.requests("chat")[-1].json["conversationState"]["currentMessage"]["userInputMessage"]
        assert sent["modelId"] == wire
