"""The Models API's shapes (``GET /v1/models`` and ``GET /v1/models/{id}``).

The mock serves every model name a request carries, so it describes any id it is asked
about; its list names the rig's default model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["MOCK_MODEL", "MODEL_CREATED_AT", "model_list", "model_object"]

MOCK_MODEL = "mock-agent"
"""The model name the rig's own clients send by default (``--model``)."""

MODEL_CREATED_AT = 1_767_225_600
"""A model's ``created`` (2026-01-01 UTC): fixed, so the answer does not change between
processes or workers."""


def model_object(model_id: str, owned_by: str = "rig") -> dict[str, Any]:
    """A Model object as ``GET /v1/models/{id}`` returns it."""
    return {"id": model_id, "object": "model", "created": MODEL_CREATED_AT, "owned_by": owned_by}


def model_list(model_ids: Iterable[str]) -> dict[str, Any]:
    """The list object of ``GET /v1/models``."""
    return {"object": "list", "data": [model_object(model_id) for model_id in model_ids]}
