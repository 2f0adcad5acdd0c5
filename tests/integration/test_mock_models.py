"""The Models API on the mock, read by the official openai SDK: the list names the rig's
default model, and any id is described (the mock serves every model name)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest


@pytest.fixture
def client(mock_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=mock_url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


def test_list_names_the_default_model(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    assert [model.id for model in models] == ["mock-agent"]
    (model,) = models
    assert model.object == "model" and model.owned_by == "rig" and model.created > 0


def test_the_listed_model_answers_a_request(client: openai.OpenAI) -> None:
    first = next(iter(client.models.list()))
    response = client.responses.create(model=first.id, input="hello")
    assert response.status == "completed" and response.model == first.id


@pytest.mark.parametrize("model_id", ["mock-agent", "gpt-5.1-codex", "org/model-7b"])
def test_retrieve_describes_any_model_id(client: openai.OpenAI, model_id: str) -> None:
    model = client.models.retrieve(model_id)
    assert (model.id, model.object, model.owned_by) == (model_id, "model", "rig")


def test_the_list_has_the_apis_shape(mock_url: str) -> None:
    body = httpx.get(mock_url + "/models").json()
    assert body["object"] == "list"
    assert set(body["data"][0]) == {"id", "object", "created", "owned_by"}
