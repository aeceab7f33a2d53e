"""Configuration: the original gateway's variable names, raw .env values, one clear line for a bad value."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gateway.settings import ConfigError, Settings, read_dotenv


def test_original_names_and_types() -> None:
    settings = Settings.from_env({
        "PROXY_API_KEY": "k", "REFRESH_TOKEN": "r", "KIRO_REGION": "eu-central-1", "FIRST_TOKEN_TIMEOUT": "20",
        "FAKE_REASONING": "off", "FAKE_REASONING_MAX_TOKENS": "2048", "DEBUG_MODE": "errors",
        "SERVER_PORT": "9000", "KIRO_API_HOST": "q",
    }, dotenv=None)
    assert settings.server.proxy_api_key == "k" and settings.credentials.refresh_token == "r"
    assert settings.credentials.kiro_region == "eu-central-1" and settings.credentials.api_region == "eu-central-1"
    assert settings.timing.first_token_timeout == 20.0 and settings.conversion.fake_reasoning is False
    assert settings.conversion.fake_reasoning_max_tokens == 2048 and settings.logging.debug_mode == "errors"
    assert settings.server.server_port == 9000 and settings.endpoints.kiro_api_host == "q"


def test_dotenv_values_are_raw_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text('# comment\nKIRO_CREDS_FILE="C:\\Users\\me\\kiro.json"\nexport PROFILE_ARN=arn:x\n'
                      "PROXY_API_KEY='from-file'\n\nnot a line\n")
    assert read_dotenv(dotenv)["KIRO_CREDS_FILE"] == "C:\\Users\\me\\kiro.json"  # backslashes survive
    settings = Settings.from_env({"PROXY_API_KEY": "from-env"}, dotenv=dotenv)
    assert settings.server.proxy_api_key == "from-env" and settings.credentials.profile_arn == "arn:x"


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"FIRST_TOKEN_TIMEOUT": "soon"}, "FIRST_TOKEN_TIMEOUT"),
        ({"FAKE_REASONING": "maybe"}, "FAKE_REASONING"),
        ({"SERVER_PORT": "70000"}, "SERVER_PORT"),
        ({"KIRO_API_HOST": "codewhisperer"}, "KIRO_API_HOST"),
        ({"DEBUG_MODE": "verbose"}, "DEBUG_MODE"),
        ({"FAKE_REASONING_HANDLING": "shout"}, "FAKE_REASONING_HANDLING"),
        ({"KIRO_API_BASE_URL": "localhost:9"}, "KIRO_API_BASE_URL"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env, dotenv=None)
    assert variable in str(caught.value) and "\n" not in str(caught.value)


def test_socks_proxy_without_socks_support_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "socksio" else real_find_spec(name))
    with pytest.raises(ConfigError, match="httpx\\[socks\\]"):
        Settings.from_env({"VPN_PROXY_URL": "socks5://127.0.0.1:1080"}, dotenv=None)
    assert Settings.from_env({"VPN_PROXY_URL": "proxy.local:3128"}, dotenv=None).vpn_proxy_url == "proxy.local:3128"
