"""Request body schemas in `/openapi.json` for routes that read their body themselves.

The POST routes read the raw body through `http_io.read_json` (limits first, then the lenient request models), so
FastAPI cannot infer their bodies. `json_body(Model)` documents one anyway, and `install(app)` adds the models'
JSON Schemas to the document's components, so clients, tools and schema-driven fuzzers can read the contract.
"""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

_REF = "#/components/schemas/{model}"
_documented: dict[str, str] = {}  # model name -> "module:Name", imported only when the document is built


def json_body(model_path: str) -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body is the model at `model_path` ("package.module:Name"); named by
    path so that a route module does not import its request models before its first request (cold start)."""
    name = model_path.rpartition(":")[2]
    _documented[name] = model_path
    schema = {"$ref": _REF.format(model=name)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _load(model_path: str) -> type[BaseModel]:
    module, _, name = model_path.partition(":")
    model = getattr(importlib.import_module(module), name)
    assert isinstance(model, type) and issubclass(model, BaseModel), model_path
    return model


def _any_of(node: Any) -> Any:
    """`oneOf` → `anyOf`: the lenient models route unknown block types to a catch-all branch, so a known block
    matches two branches; `anyOf` says what the gateway accepts, where `oneOf` would call valid requests invalid."""
    if isinstance(node, dict):
        return {("anyOf" if key == "oneOf" else key): _any_of(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_any_of(item) for item in node]
    return node


def request_schemas() -> dict[str, Any]:
    """JSON Schemas of every documented request model and the models they use, keyed by name."""
    models = [(_load(path), "validation") for _name, path in sorted(_documented.items())]
    _keys, top = models_json_schema(models, ref_template=_REF)  # type: ignore[arg-type]
    return _any_of(top.get("$defs", {}))


def install(app: FastAPI) -> None:
    """Make `app.openapi()` include the request schemas (built once, on the first call)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes,
                                   description=app.description)
            document.setdefault("components", {}).setdefault("schemas", {}).update(request_schemas())
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
