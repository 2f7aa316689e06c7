"""OpenAPI for /docs: the /predict request schema is built from the loaded bundle's features.

Routes read raw bytes (no pydantic per request); this builds one pydantic model per bundle only to
describe the body, so /docs shows this model's real fields and types.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, create_model

from ..bundle.metadata import sample_record
from ..protocols import named
from ..runtime.lifecycle import ModelRuntime
from ..types import Metadata
from .endpoints import PREDICTION_ROUTES

_PY_TYPES: dict[str, Any] = {"float": float, "int": int, "string": str}
# The named-feature endpoint, whose body this module describes (its path as the endpoint table has it).
NAMED_PREDICT = next(r.template for r in PREDICTION_ROUTES if r.codec is named.CODEC)


def record_model(meta: Metadata) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for f in meta.features:
        annotation: Any = _PY_TYPES[f.dtype]
        if f.dtype == "string" and f.categories:
            annotation = Literal[tuple(f.categories)]
        fields[f.name] = (annotation, Field(...))
    model: type[BaseModel] = create_model(
        "Record",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"example": sample_record(meta)}),
        **fields,
    )
    return model


def install_openapi(app: FastAPI) -> None:
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        runtime: ModelRuntime = app.state.runtime
        meta = runtime.bundle.metadata if runtime.bundle is not None else None
        key = f"{meta.name}:{meta.version}" if meta else ""
        if key in cache:
            return cache[key]  # type: ignore[no-any-return]
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        if meta is not None:
            record = record_model(meta)
            instances = create_model("Instances", instances=(list[record], Field(..., min_length=1)))  # type: ignore[valid-type]
            defs = schema.setdefault("components", {}).setdefault("schemas", {})
            rec_schema = record.model_json_schema(ref_template="#/components/schemas/{model}")
            defs.update(rec_schema.pop("$defs", {}))
            defs["Record"] = rec_schema
            inst_schema = instances.model_json_schema(ref_template="#/components/schemas/{model}")
            inst_schema.pop("$defs", None)
            defs["Instances"] = inst_schema
            op = schema["paths"][NAMED_PREDICT]["post"]
            op["description"] = f"Model {meta.name} {meta.version} ({meta.task}): one record or many."
            op["parameters"] = [
                {
                    "name": "probabilities",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "boolean"},
                    "description": "return class probabilities (classifiers with predict_proba)",
                }
            ]
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Record"},
                                {"$ref": "#/components/schemas/Instances"},
                            ],
                        }
                    }
                },
            }
        cache[key] = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
