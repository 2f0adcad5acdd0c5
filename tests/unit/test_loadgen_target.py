"""The target's base URLs: parsing ``--target-url`` and the run's rotation over them."""

from __future__ import annotations

import pytest

from rig.errors import RigError
from rig.loadgen.registry import TransportContext
from rig.loadgen.target import Endpoint, EndpointRotation, Target, TargetError, parse_base_urls

A, B, C = "http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1", "http://gw-3:9000/v1"


def test_one_url_is_a_target_of_one_endpoint_as_before() -> None:
    target = Target.from_url("http://127.0.0.1:8000/v1/")
    assert target.base_url == "http://127.0.0.1:8000/v1"
    assert target.base_urls == ("http://127.0.0.1:8000/v1",)
    assert (target.host, target.port, target.base_path, target.name) == (
        "127.0.0.1",
        8000,
        "/v1",
        "127.0.0.1",
    )
    assert target.ws_url == "ws://127.0.0.1:8000/v1/responses"


def test_a_target_built_directly_has_its_base_url_as_only_endpoint() -> None:
    assert Target("https://api.example.com/v1").endpoints == (
        Endpoint("https://api.example.com/v1"),
    )


def test_a_comma_separated_list_keeps_its_order_and_shares_key_and_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RIG_TEST_KEY", "sk-test")
    target = Target.from_url(f"{A}, {B},{C}/", model="m", api_key_env="RIG_TEST_KEY")
    assert target.base_urls == (A, B, C)
    assert [e.host for e in target.endpoints] == ["10.0.0.1", "10.0.0.2", "gw-3"]
    assert [e.port for e in target.endpoints] == [8000, 8000, 9000]
    assert target.endpoints[2].ws_url == "ws://gw-3:9000/v1/responses"
    assert target.name == "10.0.0.1"  # the records' target name: the first URL's host
    assert (target.model, target.api_key) == ("m", "sk-test")
    assert "sk-test" not in repr(target)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (f"{A},ftp://10.0.0.2/v1", "ftp://10.0.0.2/v1"),
        (f"{A},10.0.0.2:8000/v1", "10.0.0.2:8000/v1"),
        (f"{A},http://10.0.0.2:80x/v1", "http://10.0.0.2:80x/v1"),
        (f"{A},http:///v1", "http:///v1"),
    ],
)
def test_a_bad_url_in_the_list_is_named(value: str, named: str) -> None:
    with pytest.raises(TargetError) as caught:
        parse_base_urls(value)
    assert repr(named) in str(caught.value)
    assert "--target-url" in str(caught.value)


@pytest.mark.parametrize(
    "other", ["https://10.0.0.2:8000/v1", "http://10.0.0.2:8000/v2", "http://10.0.0.2:8000"]
)
def test_every_url_must_have_the_first_ones_scheme_and_path(other: str) -> None:
    with pytest.raises(TargetError, match="scheme and path of the first") as caught:
        Target.from_url(f"{A},{other}")
    assert repr(other) in str(caught.value)


@pytest.mark.parametrize("value", ["", f"{A},", f"{A},,{B}"])
def test_an_empty_entry_is_refused(value: str) -> None:
    with pytest.raises(TargetError):
        parse_base_urls(value)


def test_target_errors_are_the_rigs_own() -> None:
    with pytest.raises(RigError):
        Target.from_url("localhost:8000")


def test_each_new_connection_starts_at_the_next_url_once_around() -> None:
    a, b, c = Target.from_url(f"{A},{B},{C}").endpoints
    rotation = EndpointRotation((a, b, c))
    assert [rotation.order() for _ in range(4)] == [
        (a, b, c),
        (b, c, a),
        (c, a, b),
        (a, b, c),
    ]


def test_one_url_always_answers_itself() -> None:
    (only,) = Target.from_url(A).endpoints
    rotation = EndpointRotation((only,))
    assert {rotation.order() for _ in range(3)} == {(only,)}


def test_the_rotation_is_the_runs_not_the_process() -> None:
    from rig.loadgen.dial import rotation

    target = Target.from_url(f"{A},{B}")
    run1, run2 = TransportContext(), TransportContext()
    first = rotation(target, run1)
    assert rotation(target, run1) is first  # every session of a run shares it
    assert rotation(target, run2) is not first  # another run starts from the first URL
    first.order()
    assert rotation(target, run2).order()[0] == Endpoint(A)
    assert rotation(target, None) is not rotation(target, None)  # no run: a private one
