"""Settings in sections: flat construction and copies keep working, every enumerated value is a Literal checked by
the loader, range checks are declared on the fields, and kiro_core's options come from the settings unchanged."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from gateway.conversion_options import conversion_options, setting_name_of
from gateway.settings import FIELD_SECTION, SECTION_TYPES, ConfigError, Settings
from gateway.upstream.client_config import UpstreamSettings
from kiro_core.convert.options import ConversionOptions


def test_flat_names_build_the_sections() -> None:
    settings = Settings(proxy_api_key="k", kiro_secret_id="x", max_retries=7)
    assert settings.server.proxy_api_key == "k" and settings.aws.kiro_secret_id == "x"
    assert settings.timing.max_retries == 7 and settings.timing.base_retry_delay == 1.0
    assert settings == Settings(proxy_api_key="k", kiro_secret_id="x", max_retries=7)
    with pytest.raises(TypeError, match="extra"):
        Settings(extra={})  # the dead field is gone


def test_replace_derives_a_changed_copy() -> None:
    settings = Settings(proxy_api_key="k", server_port=8001)
    changed = settings.replace(server_port=9000, kiro_state_table="t")
    assert (changed.server.server_port, changed.server.proxy_api_key, changed.aws.kiro_state_table) == (9000, "k", "t")
    assert settings.server.server_port == 8001 and settings.aws.kiro_state_table == ""
    assert dataclasses.replace(settings, server_port=1).server.server_port == 1  # the standard way works too
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server = settings.server  # type: ignore[misc]


def test_every_variable_name_is_a_field_name_and_unique() -> None:
    names = [spec.name for kind in SECTION_TYPES.values() for spec in dataclasses.fields(kind)]
    assert len(names) == len(set(names)) == len(FIELD_SECTION)
    settings = Settings.from_env({name.upper(): str(getattr(Settings(), name)) for name in names
                                  if isinstance(getattr(Settings(), name), str)}, dotenv=None)
    assert settings == Settings()


def literal_fields() -> list[tuple[str, tuple[str, ...]]]:
    found = []
    for kind in SECTION_TYPES.values():
        for name, hint in typing.get_type_hints(kind).items():
            if typing.get_origin(hint) is typing.Literal:
                found.append((name, typing.get_args(hint)))
    return found


def test_enumerated_values_are_literals_checked_by_the_loader() -> None:
    fields = dict(literal_fields())
    assert {"kiro_api_host", "kiro_api_key_host", "account_selection", "debug_mode", "fake_reasoning_handling",
            "log_format", "api_docs", "kiro_agent_task_type"} <= fields.keys()
    for name, choices in fields.items():
        for choice in choices:
            assert getattr(getattr(Settings.from_env({name.upper(): choice}, dotenv=None),
                                   FIELD_SECTION[name]), name) == choice
        with pytest.raises(ConfigError, match=name.upper()):
            Settings.from_env({name.upper(): "not-a-choice"}, dotenv=None)
        with pytest.raises(ConfigError, match=name.upper()):
            Settings(**{name: "not-a-choice"}).validate()  # constructed in code: the same check


@pytest.mark.parametrize("variable, value", [
    ("SERVER_PORT", "0"), ("SERVER_PORT", "65536"), ("MAX_JSON_DEPTH", "0"), ("CPU_WORKER_THREADS", "0"),
    ("WEB_SEARCH_NOMINAL_CREDITS", "-0.1"), ("WEB_SEARCH_NOMINAL_CREDITS", "inf"),
    ("WEB_SEARCH_NOMINAL_CREDITS", "nan"),
    ("CLIENT_KEYS_CACHE_SECONDS", "61"), ("AUTH_FAILURES_PER_MINUTE", "21"), ("KIRO_OIDC_URL", "oidc.example"),
])
def test_declared_ranges_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value}, dotenv=None)


def test_new_fields_of_the_parallel_branches_have_their_defaults() -> None:
    settings = Settings()
    assert (settings.processing.cpu_offload_bytes, settings.processing.cpu_worker_threads) == (65_536, 2)
    assert settings.processing.gil_switch_interval_ms == 1.0 and settings.web_search.web_search_nominal_credits == 0.1
    assert settings.accounts.account_state_cache_seconds == 5.0
    assert "user:pw" not in repr(Settings(vpn_proxy_url="http://user:pw@proxy:3128"))


def test_conversion_options_come_from_the_settings_without_restating_defaults() -> None:
    assert conversion_options(Settings()) == ConversionOptions()  # the two sets of defaults agree
    changed = conversion_options(Settings(kiro_max_payload_bytes=1000, kiro_agent_task_type="spectask",
                                          fake_reasoning=False, kiro_cache_points=True))
    assert (changed.max_payload_bytes, changed.agent_task_type) == (1000, "spectask")
    assert changed.fake_reasoning is False and changed.cache_points is True


def test_every_conversion_setting_reaches_kiro_core_or_is_read_by_the_gateway() -> None:
    used = {setting_name_of(option.name, Settings()) for option in dataclasses.fields(ConversionOptions)} - {None}
    read_by_the_gateway = {"fake_reasoning_handling", "native_reasoning_static_table", "bind_reasoning_signatures",
                           "stable_conversation_ids"}
    for section in ("conversion", "conversations"):
        for spec in dataclasses.fields(getattr(Settings(), section)):
            assert (section, spec.name) in used or spec.name in read_by_the_gateway, spec.name


def test_a_kiro_clients_settings_are_an_accounts_view_not_a_copy_of_all_settings() -> None:
    settings = Settings(kiro_api_region="eu-central-1", profile_arn="arn:default", max_retries=2,
                        refresh_token="aorSECRET", proxy_api_key="proxySECRET")
    config = UpstreamSettings.from_settings(settings, api_host="q", profile_arn="")
    assert config.endpoints.kiro_api_host == "q" and settings.endpoints.kiro_api_host == "runtime"
    assert (config.credentials.api_region, config.credentials.profile_arn) == ("eu-central-1", "")
    assert config.timing.max_retries == 2 and settings.credentials.profile_arn == "arn:default"
    assert config.credentials.refresh_token == "" and not hasattr(config, "server")  # only what a client reads
    assert "SECRET" not in repr(config)
