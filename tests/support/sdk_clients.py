"""The official SDKs pointed at a gateway process: no retries (a test must see the first answer), short timeouts."""

from __future__ import annotations

import anthropic
import openai

from tests.support.gateway_process import GatewayProcess

TEST_API_KEY = "test-proxy-key-5f2c9a"  # the PROXY_API_KEY of tests/integration/conftest.gateway_env


def anthropic_client(gateway: GatewayProcess, key: str = TEST_API_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0, timeout=30)


def openai_client(gateway: GatewayProcess, key: str = TEST_API_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=30)
