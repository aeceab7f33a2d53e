"""`/v1/models`: the catalogue, in a shape both SDKs read (OpenAI's fields plus Anthropic's)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from gateway.edge.deps import runtime_of
from kiro_core.errors import ErrorKind, GatewayError

router = APIRouter()

CREATED_AT = "2025-01-01T00:00:00Z"  # Kiro does not say when a model appeared; Anthropic's SDK wants a date
# Additive capability fields from the live catalogue, present only when the catalogue advertises them.
CAPABILITY_FIELDS = ("supports_prompt_caching", "reasoning_efforts", "rate_multiplier", "input_types")


def _entry(model: dict[str, Any], created: int) -> dict[str, Any]:
    return {
        "id": model["id"],
        "object": "model",
        "created": created,
        "owned_by": "anthropic",
        "type": "model",
        "display_name": model.get("display_name") or model["id"],
        "created_at": CREATED_AT,
        "max_input_tokens": model.get("max_input_tokens"),
        "max_output_tokens": model.get("max_output_tokens"),
        **{name: model[name] for name in CAPABILITY_FIELDS if name in model},
    }


async def _entries(request: Request) -> list[dict[str, Any]]:
    catalog = await (await runtime_of(request)).models.catalog()
    created = int(time.time())
    return [_entry(model, created) for model in catalog.list_models()]


@router.get("/v1/models", response_model=None)  # no inferred models: see app.py (pydantic.v1 at start)
async def list_models(request: Request) -> dict[str, Any]:
    data = await _entries(request)
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


# The path parameter is read from the request and documented by hand: a typed parameter is a pydantic field.
_MODEL_ID = {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string", "title": "Model Id"}}


@router.get("/v1/models/{model_id:path}", response_model=None, openapi_extra={"parameters": [_MODEL_ID]})
async def retrieve_model(request: Request) -> dict[str, Any]:
    model_id = request.path_params["model_id"]
    for entry in await _entries(request):
        if entry["id"] == model_id:
            return entry
    raise GatewayError(ErrorKind.NOT_FOUND, f"Model {model_id!r} is not in the catalogue; see GET /v1/models.")
