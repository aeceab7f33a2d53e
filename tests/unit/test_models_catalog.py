"""Model-name normalisation and resolution (docs/protocol.md §Models) and the `/v1/models` list."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiro_core.models_catalog import (
    DEFAULT_MAX_INPUT_TOKENS,
    FALLBACK_MODEL_IDS,
    HIDDEN_FROM_LIST,
    HIDDEN_MODELS,
    MODEL_ALIASES,
    ModelCatalog,
    ResolvedModel,
    normalize_model_name,
)

UPSTREAM: list[dict[str, Any]] = [
    {
        "modelId": "claude-sonnet-4.5",
        "modelName": "Claude Sonnet 4.5",
        "tokenLimits": {"maxInputTokens": 200000, "maxOutputTokens": 64000},
    },
    {"modelId": "claude-opus-4.8", "modelName": "Claude Opus 4.8", "tokenLimits": {"maxInputTokens": 1000000}},
    {"modelId": "auto", "modelName": "Auto"},
    {"modelName": "no id, ignored"},
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # the normalisation examples
        ("claude-haiku-4-5", "claude-haiku-4.5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4.5"),
        ("claude-haiku-4-5-latest", "claude-haiku-4.5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
        ("claude-opus-4-5-20251101", "claude-opus-4.5"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-3-7-sonnet-20250219", "claude-3.7-sonnet"),
        ("claude-3-5-haiku", "claude-3.5-haiku"),
        ("claude-4.5-opus-high", "claude-opus-4.5"),
        ("claude-4.5-sonnet-low", "claude-sonnet-4.5"),
        ("gpt-4-turbo", "gpt-4-turbo"),
        # rule 0: context suffix
        ("claude-opus-4-8[1m]", "claude-opus-4.8"),
        ("claude-sonnet-4-5-20250929[1m]", "claude-sonnet-4.5"),
        ("claude-sonnet-4-5[200k]", "claude-sonnet-4.5"),
        # rule 1 variants
        ("claude-opus-4-8", "claude-opus-4.8"),
        ("claude-sonnet-4-10", "claude-sonnet-4.10"),
        ("claude-sonnet-4-5-1", "claude-sonnet-4.5"),
        ("CLAUDE-Sonnet-4-5", "claude-sonnet-4.5"),
        # rule 2
        ("claude-sonnet-5", "claude-sonnet-5"),
        ("claude-opus-4", "claude-opus-4"),
        # rule 3 with any suffix
        ("claude-3-5-sonnet-latest", "claude-3.5-sonnet"),
        # rule 4: dotted with a date
        ("claude-haiku-4.5-20251001", "claude-haiku-4.5"),
        ("claude-3.7-sonnet-20250219", "claude-3.7-sonnet"),
        # rule 5: inverted with a suffix
        ("claude-3.7-sonnet-thinking", "claude-sonnet-3.7"),
        # rule 6: untouched, original case
        ("auto", "auto"),
        ("glm-5", "glm-5"),
        ("GLM-5", "GLM-5"),
        ("claude-sonnet-4.5", "claude-sonnet-4.5"),
        ("claude-3.7-sonnet", "claude-3.7-sonnet"),
        ("claude-opus-4-latest", "claude-opus-4-latest"),
        ("qwen3-coder-next", "qwen3-coder-next"),
        ("", ""),
        # today's names (docs/protocol.md §Models): 5.5 dotted, 5 undotted, [1m] stripped, opus-5 never read as opus-4-5
        ("claude-opus-5-5", "claude-opus-5.5"),
        ("claude-opus-5-5[1m]", "claude-opus-5.5"),
        ("claude-opus-5", "claude-opus-5"),
        ("claude-opus-5[1m]", "claude-opus-5"),
        ("claude-opus-5-20260301", "claude-opus-5"),
        ("claude-sonnet-5-5-20260101", "claude-sonnet-5.5"),
        ("claude-sonnet-5-0", "claude-sonnet-5"),
        ("claude-opus-5.0", "claude-opus-5"),
        ("claude-opus-4-5", "claude-opus-4.5"),
        ("claude-haiku-5-5", "claude-haiku-5.5"),
        ("gpt-5.6-sol", "gpt-5.6-sol"),
        ("gpt-5.6-terra", "gpt-5.6-terra"),
        ("gpt-5.6-luna", "gpt-5.6-luna"),
        ("kimi-k3", "kimi-k3"),
        ("minimax-m2.5", "minimax-m2.5"),
    ],
)
def test_normalisation_table(name: str, expected: str) -> None:
    assert normalize_model_name(name) == expected


@given(
    st.sampled_from(["haiku", "sonnet", "opus"]),
    st.integers(1, 99),
    st.integers(1, 99),
    st.sampled_from(["", "-20250929", "-latest", "[1m]", "-20251001[1m]"]),
)
def test_dashed_names_become_dotted(family: str, major: int, minor: int, suffix: str) -> None:
    assert normalize_model_name(f"claude-{family}-{major}-{minor}{suffix}") == f"claude-{family}-{major}.{minor}"


@given(st.sampled_from(["haiku", "sonnet", "opus"]), st.integers(1, 99), st.sampled_from(["-0", ".0", "-0-20250514"]))
def test_a_zero_minor_is_the_undotted_id(family: str, major: int, suffix: str) -> None:
    assert normalize_model_name(f"claude-{family}-{major}{suffix}") == f"claude-{family}-{major}"


@given(st.sampled_from(["haiku", "sonnet", "opus"]), st.integers(1, 9), st.integers(0, 9), st.booleans())
def test_legacy_names_keep_the_inverted_form(family: str, major: int, minor: int, dated: bool) -> None:
    name = f"claude-{major}-{minor}-{family}" + ("-20240101" if dated else "")
    assert normalize_model_name(name) == f"claude-{major}.{minor}-{family}"


@given(st.text(max_size=40))
def test_normalisation_is_idempotent(name: str) -> None:
    once = normalize_model_name(name)
    assert normalize_model_name(once) == once


def test_constants() -> None:
    assert MODEL_ALIASES == {"auto-kiro": "auto"}
    assert {"auto"} == HIDDEN_FROM_LIST
    assert DEFAULT_MAX_INPUT_TOKENS == 200000
    assert {"auto", "claude-sonnet-4", "claude-haiku-4.5", "claude-sonnet-4.5", "claude-opus-4.5"} <= set(
        FALLBACK_MODEL_IDS
    )
    assert {"claude-opus-4.8", "claude-sonnet-4.6", "glm-5", "qwen3-coder-next"} <= set(FALLBACK_MODEL_IDS)


def test_resolve_from_cache_with_upstream_limits() -> None:
    catalog = ModelCatalog(UPSTREAM)
    assert catalog.resolve("claude-opus-4-8[1m]") == ResolvedModel("claude-opus-4.8", "cache", 1000000)
    assert catalog.resolve("claude-sonnet-4-5-20250929") == ResolvedModel("claude-sonnet-4.5", "cache", 200000)


def test_resolve_cache_lookup_ignores_case() -> None:
    assert ModelCatalog(UPSTREAM).resolve("Claude-Opus-4.8").kiro_id == "claude-opus-4.8"


def test_resolve_hidden_model() -> None:
    resolved = ModelCatalog(UPSTREAM).resolve("claude-3-7-sonnet-20250219")
    assert resolved == ResolvedModel(HIDDEN_MODELS["claude-3.7-sonnet"], "hidden", DEFAULT_MAX_INPUT_TOKENS)


def test_hidden_models_can_be_switched_off() -> None:
    resolved = ModelCatalog(UPSTREAM, hidden={}).resolve("claude-3-7-sonnet")
    assert resolved == ResolvedModel("claude-3.7-sonnet", "passthrough", DEFAULT_MAX_INPUT_TOKENS)


def test_resolve_alias() -> None:
    assert ModelCatalog(UPSTREAM).resolve("auto-kiro") == ResolvedModel("auto", "alias", DEFAULT_MAX_INPUT_TOKENS)
    assert ModelCatalog(UPSTREAM).resolve("AUTO-KIRO").kiro_id == "auto"


def test_alias_to_unknown_target_passes_through_as_alias() -> None:
    resolved = ModelCatalog([], aliases={"fast": "claude-haiku-4-5"}).resolve("fast")
    assert resolved == ResolvedModel("claude-haiku-4.5", "alias", DEFAULT_MAX_INPUT_TOKENS)


def test_resolve_passthrough_is_normalised() -> None:
    catalog = ModelCatalog(UPSTREAM)
    assert catalog.resolve("claude-haiku-4-5-20251001") == ResolvedModel(
        "claude-haiku-4.5", "passthrough", DEFAULT_MAX_INPUT_TOKENS
    )
    assert catalog.resolve("Some-Model").kiro_id == "Some-Model"


@given(st.text(max_size=60))
def test_resolve_never_raises(name: str) -> None:
    resolved = ModelCatalog().resolve(name)
    assert resolved.source in {"cache", "hidden", "alias", "passthrough"}
    assert resolved.max_input_tokens > 0


def test_fallback_catalog_when_no_upstream_list() -> None:
    catalog = ModelCatalog()
    assert not catalog.from_upstream and ModelCatalog([]).from_upstream
    for model_id in FALLBACK_MODEL_IDS:
        assert catalog.resolve(model_id) == ResolvedModel(model_id, "cache", DEFAULT_MAX_INPUT_TOKENS)


def test_list_models_sorted_with_hidden_and_aliases_but_not_hidden_from_list() -> None:
    rows = ModelCatalog(UPSTREAM).list_models()
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids)
    assert ids == ["auto-kiro", "claude-3.7-sonnet", "claude-opus-4.8", "claude-sonnet-4.5"]
    by_id = {r["id"]: r for r in rows}
    assert by_id["claude-sonnet-4.5"] == {
        "id": "claude-sonnet-4.5",
        "max_input_tokens": 200000,
        "max_output_tokens": 64000,
        "display_name": "Claude Sonnet 4.5",
    }
    assert by_id["claude-opus-4.8"]["max_input_tokens"] == 1000000
    assert by_id["auto-kiro"]["display_name"] == "Auto"
    assert by_id["claude-3.7-sonnet"]["max_input_tokens"] == DEFAULT_MAX_INPUT_TOKENS


def test_list_models_of_fallback() -> None:
    ids = [r["id"] for r in ModelCatalog().list_models()]
    assert "auto" not in ids and "auto-kiro" in ids
    assert set(FALLBACK_MODEL_IDS) - {"auto"} <= set(ids)
    assert all(
        set(r) == {"id", "max_input_tokens", "max_output_tokens", "display_name"} for r in ModelCatalog().list_models()
    )


def test_bad_token_limits_fall_back_to_defaults() -> None:
    catalog = ModelCatalog([{"modelId": "x", "tokenLimits": {"maxInputTokens": -5, "maxOutputTokens": "lots"}}])
    assert catalog.resolve("x").max_input_tokens == DEFAULT_MAX_INPUT_TOKENS
    assert catalog.list_models()[-1]["max_output_tokens"] > 0


TODAY: list[dict[str, Any]] = [
    {
        "modelId": "claude-opus-5.5",
        "modelName": "Claude Opus 5.5",
        "supportedInputTypes": ["TEXT", "IMAGE"],
        "tokenLimits": {"maxInputTokens": 1000000, "maxOutputTokens": 128000},
        "rateMultiplier": 2,
        "rateUnit": "Credit",
        "promptCaching": {"supportsPromptCaching": True},
        "additionalModelRequestFieldsSchema": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "output_config": {"properties": {"effort": {"enum": ["low", "medium", "high", "xhigh", "max"]}}},
                "thinking": {"properties": {"type": {"enum": ["adaptive"]}}},
                "max_tokens": {"type": "integer", "maximum": 128000},
            },
        },
    },
    {
        "modelId": "gpt-5.6-sol",
        "tokenLimits": {"maxInputTokens": 272000, "maxOutputTokens": 128000},
        "rateMultiplier": 4.4,
        "promptCaching": {"supportsPromptCaching": True, "maximumCacheCheckpointsPerRequest": 4},
        "additionalModelRequestFieldsSchema": {
            "properties": {"reasoning": {"properties": {"effort": {"enum": ["none", "low", "high"]}}}}
        },
    },
    {"modelId": "deepseek-3.2", "rateMultiplier": 0.25, "promptCaching": {"supportsPromptCaching": False}},
    {"modelId": "claude-sonnet-5", "tokenLimits": {"maxInputTokens": 1000000}},
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("claude-opus-5-5", "claude-opus-5.5"),
        ("claude-opus-5-5[1m]", "claude-opus-5.5"),
        ("claude-sonnet-5-20260101", "claude-sonnet-5"),
        ("GPT-5.6-Sol", "gpt-5.6-sol"),
        ("gpt-5-6-sol", "gpt-5.6-sol"),  # a dashed spelling of a catalogue id
        ("deepseek-3-2", "deepseek-3.2"),
    ],
)
def test_todays_names_resolve_to_catalogue_ids(name: str, expected: str) -> None:
    resolved = ModelCatalog(TODAY).resolve(name)
    assert resolved.kiro_id == expected and resolved.source == "cache"


def test_unknown_todays_names_pass_through() -> None:
    catalog = ModelCatalog(TODAY)
    assert catalog.resolve("claude-haiku-5-5") == ResolvedModel("claude-haiku-5.5", "passthrough", 200000)
    assert catalog.resolve("kimi-k3").source == "passthrough"
    assert catalog.resolve("claude-opus-4-5").kiro_id == "claude-opus-4.5"


def test_fallback_has_todays_ga_ids() -> None:
    assert {"claude-opus-5.5", "claude-opus-5", "claude-sonnet-5.5", "claude-sonnet-5", "gpt-5.6-sol",
            "gpt-5.6-terra", "gpt-5.6-luna"} <= set(FALLBACK_MODEL_IDS)
    assert "claude-haiku-5.5" not in FALLBACK_MODEL_IDS  # announced only: the live catalogue must list it


def test_list_rows_carry_catalogue_capabilities() -> None:
    rows = {r["id"]: r for r in ModelCatalog(TODAY).list_models()}
    assert rows["claude-opus-5.5"] == {
        "id": "claude-opus-5.5",
        "display_name": "Claude Opus 5.5",
        "max_input_tokens": 1000000,
        "max_output_tokens": 128000,
        "supports_prompt_caching": True,
        "reasoning_efforts": ["low", "medium", "high", "xhigh", "max"],
        "rate_multiplier": 2.0,
        "input_types": ["TEXT", "IMAGE"],
    }
    assert rows["gpt-5.6-sol"]["reasoning_efforts"] == ["none", "low", "high"]
    assert rows["deepseek-3.2"]["supports_prompt_caching"] is False and "reasoning_efforts" not in rows["deepseek-3.2"]
    assert set(rows["claude-sonnet-5"]) == {"id", "display_name", "max_input_tokens", "max_output_tokens"}


def test_capabilities_lookup() -> None:
    catalog = ModelCatalog(TODAY)
    opus = catalog.capabilities("claude-opus-5.5")
    assert opus is not None and opus.effort_member == "output_config" and opus.rate_multiplier == 2.0
    gpt = catalog.capabilities("GPT-5.6-SOL")
    assert gpt is not None and gpt.effort_member == "reasoning"
    assert catalog.capabilities("nope") is None
    assert catalog.model_ids() == ["claude-opus-5.5", "gpt-5.6-sol", "deepseek-3.2", "claude-sonnet-5"]
