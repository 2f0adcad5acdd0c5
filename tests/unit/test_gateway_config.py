"""The gateway's configuration: the YAML file, the command line over it, client key modes,
and what an upstream call carries (sans I/O)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rig import options
from rig.cli import build_parser, gateway_config, main
from rig.gateway.config import (
    ConfigError,
    GatewayConfig,
    UpstreamConfig,
    load_config_file,
)
from rig.gateway.upstream import (
    DIALECTS,
    UpstreamCall,
    UpstreamError,
    upstream_refusal,
)
from rig.protocol.errors import AuthenticationError
from rig.protocol.requests import parse_create_request

EXAMPLE = Path(__file__).parents[2] / "examples" / "gateway.yaml"
EXAMPLE_ENV = {
    "OPENAI_API_KEY": "sk-up",
    "TEAM_A_KEY": "sk-a",
    "TEAM_B_KEY": "sk-b",
    "OPS_KEY": "sk-o",
}


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return str(path)


def _config(argv: list[str], environ: dict[str, str] | None = None) -> GatewayConfig:
    return gateway_config(build_parser().parse_args(["gateway", *argv]), environ or {})


def test_the_example_file_loads_and_routes_by_model() -> None:
    config = GatewayConfig(**load_config_file(EXAMPLE, EXAMPLE_ENV))
    openai_upstream, chat_upstream = config.upstreams
    assert config.upstream_for("gpt-5") is openai_upstream
    assert config.upstream_for("gpt-5-mini") is openai_upstream
    assert config.upstream_for("llama-3") is chat_upstream  # names no models: the rest
    assert openai_upstream.upstream_model("gpt-5") == "gpt-5-2025-08-07"
    assert (chat_upstream.dialect, chat_upstream.timeout_s) == ("chat", 60.0)
    assert config.api_keys == ("sk-a", "sk-b", "sk-o")
    assert config.organization_of("sk-a") == config.organization_of("sk-b") == "org-agents"
    assert config.organization_of("sk-o") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "upstreams:\n  - base_url: http://u/v1\n    dialekt: chat\n",
            "upstreams[0].dialekt: unknown field; write one of: base_url, dialect",
        ),
        (
            "upstreams:\n  - base_url: http://u/v1\n    dialect: chats\n",
            "upstreams[0].dialect: Input should be 'responses' or 'chat'",
        ),
        ("upstreams:\n  - dialect: chat\n", "upstreams[0].base_url: required; give it (an http://"),
        ("upstreams:\n  - base_url: u.example/v1\n", "upstreams[0].base_url: String should match"),
        ("upstreams:\n  - base_url: http://u/v1\n    timeout_s: 0\n", "upstreams[0].timeout_s:"),
        ("upstreams: http://u/v1\n", "upstreams: Input should be a valid list (a list, e.g."),
        ("prot: 8100\n", "prot: unknown field; write one of: upstreams, clients"),
        ("port: [1\n", "not valid YAML at line 2, column 1: expected ',' or ']'"),
        ("- a\n", "top level: write a mapping"),
        ("client_keys: passthrough\n", "client_keys: Input should be 'check' or 'pass-through'"),
        ("clients:\n  - org: o\n", "clients[0]: Value error, give exactly one of 'key'"),
        (
            "clients:\n  - key_env: NOT_SET_ANYWHERE\n",
            "clients[0].key_env: environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            "upstreams:\n  - {base_url: http://u/v1, key_env: NOT_SET_ANYWHERE}\n",
            "upstreams[0].key_env: environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            "upstreams:\n  - {base_url: http://a/v1, models: [m]}\n  - {base_url: http://b/v1, models: [m]}\n",
            "model 'm' is routed to two upstreams",
        ),
        (
            "client_keys: pass-through\nupstreams:\n  - {base_url: http://a/v1, key_env: K}\n",
            "remove its key_env (K)",
        ),
    ],
)
def test_a_bad_file_is_named_with_its_field_and_what_to_write(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config_file(path, {"K": "sk"})
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_a_file_that_is_not_yaml_is_reported_without_its_text(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_file(_file(tmp_path, "clients:\n  - {key: sk-secret-in-file, org: [o}\n"))
    assert "not valid YAML at line 2" in str(raised.value)
    assert "sk-secret" not in str(raised.value)


def test_a_bad_file_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file(tmp_path, "upstreams:\n  - base_url: http://u/v1\n    dialect: chats\n")
    assert main(["gateway", "--config", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rig gateway: {path}: upstreams[0].dialect:")
    assert "Traceback" not in err


def test_options_given_override_the_file_and_the_rest_come_from_it(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "port: 9001\nhost: 0.0.0.0\nstore_ttl_s: 60\nws_max_age_s: 30\n"
        "upstreams:\n  - base_url: http://u/v1\n",
    )
    config = _config(["--config", path, "--port", "8100", "--store-ttl", "90"])
    assert config.port == 8100  # given, though it is the default
    assert config.store_ttl_s == 90
    assert (config.host, config.ws_max_age_s) == ("0.0.0.0", 30.0)  # from the file
    assert config.log_level == "warning"  # neither: the option's default


def test_the_option_defaults_are_the_configurations(tmp_path: Path) -> None:
    """One definition: with no file and no option, the config gets GatewayOptions'
    defaults, and they agree with GatewayConfig's own."""
    config = _config(["--upstream", "http://u/v1"])
    defaults = GatewayConfig(upstreams=config.upstreams)
    assert dataclasses.asdict(config) == dataclasses.asdict(defaults)


def test_upstream_on_the_command_line_replaces_the_files(tmp_path: Path) -> None:
    path = _file(tmp_path, "upstreams:\n  - {base_url: http://a/v1}\n  - {base_url: http://b/v1}\n")
    config = _config(["--config", path, "--upstream", "http://c/v1", "--dialect", "chat"])
    (upstream,) = config.upstreams
    assert (upstream.base_url, upstream.dialect) == ("http://c/v1", "chat")


def test_an_upstream_option_without_upstream_is_refused_when_the_file_lists_them(
    tmp_path: Path,
) -> None:
    path = _file(tmp_path, "upstreams:\n  - {base_url: http://a/v1}\n")
    with pytest.raises(ConfigError, match="--upstream-timeout describes --upstream"):
        _config(["--config", path, "--upstream-timeout", "5"])
    with pytest.raises(ConfigError, match="--upstream URL, or upstreams: in a --config file"):
        _config([])


def test_http2_is_chosen_for_the_upstream_on_the_command_line_or_in_the_file(
    tmp_path: Path,
) -> None:
    assert not _config(["--upstream", "https://u/v1"]).upstreams[0].http2
    assert _config(["--upstream", "https://u/v1", "--upstream-http2"]).upstreams[0].http2
    path = _file(
        tmp_path,
        "upstreams:\n  - {base_url: https://a/v1, http2: true}\n  - {base_url: http://b/v1}\n",
    )
    assert [u.http2 for u in _config(["--config", path]).upstreams] == [True, False]
    with pytest.raises(ConfigError, match="--upstream-http2 describes --upstream"):
        _config(["--config", path, "--upstream-http2"])


def test_client_keys_come_from_the_file_the_options_and_the_environment(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "upstreams: [{base_url: http://a/v1}]\nclients:\n  - {key_env: TEAM, org: o}\n",
    )
    config = _config(
        ["--config", path, "--api-key", "sk-flag"],
        {"TEAM": "sk-team", "RIG_GATEWAY_API_KEYS": "sk-env, sk-flag"},
    )
    assert config.api_keys == ("sk-team", "sk-flag", "sk-env")
    assert config.organization_of("sk-team") == "o"
    assert "sk-team" not in repr(config)


def test_pass_through_is_chosen_on_the_command_line_or_in_the_file(tmp_path: Path) -> None:
    assert _config(["--upstream", "http://u/v1", "--client-keys", "pass-through"]).pass_through
    path = _file(tmp_path, "client_keys: pass-through\nupstreams: [{base_url: http://a/v1}]\n")
    assert _config(["--config", path]).pass_through
    assert not _config(["--config", path, "--client-keys", "check"]).pass_through
    with pytest.raises(ConfigError, match="remove its key_env"):
        _config(
            [
                "--upstream",
                "http://u/v1",
                "--upstream-key-env",
                "K",
                "--client-keys",
                "pass-through",
            ],
            {"K": "sk"},
        )


def _call(body: dict, key: str | None = None) -> UpstreamCall:
    transcript = [{"type": "message", "role": "user", "content": "hi"}]
    return UpstreamCall(parse_create_request(body), body, transcript, key=key)


def test_a_responses_upstream_is_asked_for_encrypted_reasoning_with_the_clients_include() -> None:
    upstream = UpstreamConfig("http://u/v1", model_map={"m": "m-2025"})
    body = DIALECTS["responses"].body(
        _call({"model": "m", "input": "hi", "include": ["message.output_text.logprobs"]}), upstream
    )
    assert body["include"] == ["message.output_text.logprobs", "reasoning.encrypted_content"]
    assert (body["model"], body["store"], body["stream"]) == ("m-2025", False, True)
    asked = DIALECTS["responses"].body(
        _call({"model": "m", "input": "hi", "include": ["reasoning.encrypted_content"]}), upstream
    )
    assert asked["include"] == ["reasoning.encrypted_content"]  # not twice


def test_encrypted_reasoning_can_be_turned_off_for_models_that_refuse_it() -> None:
    upstream = UpstreamConfig("http://u/v1", encrypted_reasoning=False)
    plain = DIALECTS["responses"].body(_call({"model": "m", "input": "hi"}), upstream)
    assert "include" not in plain
    kept = DIALECTS["responses"].body(
        _call({"model": "m", "input": "hi", "include": ["x"]}), upstream
    )
    assert kept["include"] == ["x"]
    chat = DIALECTS["chat"].body(_call({"model": "m", "input": "hi"}), UpstreamConfig("http://u"))
    assert "include" not in chat


def test_a_passed_through_key_stays_out_of_the_calls_repr() -> None:
    call = _call({"model": "m", "input": "hi"}, key="sk-secret-client-key")
    assert call.key == "sk-secret-client-key"
    assert "sk-secret" not in repr(call)


@pytest.mark.parametrize("status", [401, 403])
def test_an_upstream_refusing_the_clients_own_key_is_the_clients_error(status: int) -> None:
    raw = b'{"error": {"message": "Incorrect API key provided: sk-***abcd.", "type": "invalid_request_error", "code": "invalid_api_key"}}'
    refused = upstream_refusal(status, {}, raw, client_key=True)
    assert isinstance(refused, AuthenticationError)
    assert (refused.status, refused.code) == (status, "invalid_api_key")
    assert refused.message == "Incorrect API key provided: sk-***abcd."
    gateways = upstream_refusal(status, {}, raw)  # the gateway's own key: not the client's
    assert isinstance(gateways, UpstreamError) and gateways.status == 502


def test_every_configuration_field_can_be_written_in_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_file(_file(tmp_path, "no_such_setting: 1\n"))
    listed = set(str(raised.value).split("write one of: ")[1].split(", "))
    fields = {f.name for f in dataclasses.fields(GatewayConfig)}
    assert listed == fields - {"upstreams", "api_keys", "key_organizations"} | {
        "upstreams",
        "clients",
    }


def test_every_option_reaches_the_configuration(tmp_path: Path) -> None:
    """An option is a GatewayConfig setting (same name, or with its unit), describes the
    one --upstream, or names the file or client keys: none is silently dropped."""
    apart = {"config", "api_key", "upstream", "dialect", "upstream_key_env", "model_map",
             "upstream_timeout", "no_encrypted_reasoning", "upstream_http2"}  # fmt: skip
    fields = {f.name for f in dataclasses.fields(GatewayConfig)}
    for name, _, _ in options.iter_options(options.GatewayOptions):
        assert name in apart or {name, name + "_s"} & fields, name
