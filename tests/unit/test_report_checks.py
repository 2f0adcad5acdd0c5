"""Thresholds on summary figures: parsing, evaluation, and the errors a CI author meets."""

from __future__ import annotations

import pytest

from rig.report.checks import Check, CheckError, evaluate, parse_check

SUMMARY = {
    "run_id": "r1",
    "transports": {
        "http": {"ttft_ms_p95": 1400.0, "per_turn": [{"turn": 0, "bytes_sent_mean": 2700.0}]},
        "ws": {"ttft_ms_p95": 1200.0, "ttft_ms_mean": None, "per_turn": []},
    },
    "comparison": {"ws_vs_http": {"bytes_sent_reduction": 0.82, "ttft_reduction": None}},
    "rig": {"saturated": False, "lag_ms_p99_max": 12.5},
    "warnings": [],
}


def one(expression: str) -> tuple[bool, float | None, str]:
    [result] = evaluate([parse_check(expression)], SUMMARY)
    return result.passed, result.actual, result.message


@pytest.mark.parametrize(
    ("expression", "op", "threshold"),
    [
        ("ws_vs_http.bytes_sent_reduction>=0.8", ">=", 0.8),
        ("transports.ws.ttft_ms_p95 <= 1500", "<=", 1500.0),
        ("  rig.lag_ms_p99_max < 50  ", "<", 50.0),
        ("rig.saturated==0", "==", 0.0),
        ("ws_vs_http.ttft_reduction>-0.05", ">", -0.05),
        ("transports.http.ttft_ms_p95<1e4", "<", 10_000.0),
    ],
)
def test_parse_reads_path_operator_and_threshold(
    expression: str, op: str, threshold: float
) -> None:
    check = parse_check(expression)
    assert check.op == op
    assert check.threshold == threshold
    assert check.expression == expression.strip()
    assert check.path == tuple(expression.split(op)[0].strip().split("."))


def test_a_met_threshold_passes_and_reports_the_actual_value() -> None:
    passed, actual, message = one("ws_vs_http.bytes_sent_reduction>=0.8")
    assert passed is True
    assert actual == 0.82
    assert message == "ws_vs_http.bytes_sent_reduction>=0.8 (actual 0.82)"


def test_a_missed_threshold_fails_and_the_message_names_the_check() -> None:
    passed, actual, message = one("transports.ws.ttft_ms_p95<1000")
    assert passed is False
    assert actual == 1200
    assert message == "transports.ws.ttft_ms_p95<1000 (actual 1200)"


@pytest.mark.parametrize(
    ("expression", "passed"),
    [
        ("rig.lag_ms_p99_max>12.5", False),
        ("rig.lag_ms_p99_max>=12.5", True),
        ("rig.lag_ms_p99_max<12.5", False),
        ("rig.lag_ms_p99_max<=12.5", True),
        ("rig.lag_ms_p99_max==12.5", True),
    ],
)
def test_each_operator_compares_as_written(expression: str, passed: bool) -> None:
    assert one(expression)[0] is passed


def test_transports_comparisons_lists_and_booleans_are_reachable() -> None:
    assert one("ws.ttft_ms_p95==1200")[1] == 1200  # transport shorthand
    assert one("comparison.ws_vs_http.bytes_sent_reduction>0")[1] == 0.82
    assert one("transports.http.per_turn.0.bytes_sent_mean==2700")[0] is True
    assert one("rig.saturated==0")[0] is True


def test_a_null_figure_fails_its_check_as_no_data() -> None:
    passed, actual, message = one("ws_vs_http.ttft_reduction>=0")
    assert (passed, actual) == (False, None)
    assert message == "ws_vs_http.ttft_reduction>=0 (no data: the figure is null)"


def test_results_keep_the_order_of_the_checks() -> None:
    checks = [parse_check("rig.lag_ms_p99_max<50"), parse_check("ws.ttft_ms_p95<100")]
    results = evaluate(checks, SUMMARY)
    assert [r.check for r in results] == checks
    assert [r.passed for r in results] == [True, False]


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "ws_vs_http.bytes_sent_reduction",
        "ws_vs_http.bytes_sent_reduction=>0.8",
        ">=0.8",
        "a.b>=x",
        "a..b>1",
        "a>=1 2",
    ],
)
def test_a_malformed_expression_is_a_check_error_naming_it(expression: str) -> None:
    with pytest.raises(CheckError) as caught:
        parse_check(expression)
    assert repr(expression) in str(caught.value)


def test_a_malformed_expression_error_shows_the_form_and_operators() -> None:
    with pytest.raises(CheckError, match=r"expected <path><op><number>.*>=, <=, ==, >, <"):
        parse_check("ws_vs_http.bytes_sent_reduction ~ 0.8")


def test_a_non_finite_threshold_is_refused() -> None:
    with pytest.raises(CheckError, match="finite"):
        parse_check("rig.lag_ms_p99_max<inf")


def test_an_unknown_top_level_name_lists_keys_comparisons_and_transports() -> None:
    with pytest.raises(CheckError) as caught:
        evaluate([parse_check("wss_vs_http.bytes_sent_reduction>=0.8")], SUMMARY)
    message = str(caught.value)
    assert "check 'wss_vs_http.bytes_sent_reduction>=0.8'" in message
    assert "unknown figure 'wss_vs_http'" in message
    assert "top-level keys: comparison, rig, run_id, transports, warnings" in message
    assert "comparisons: ws_vs_http" in message
    assert "transports: http, ws" in message


def test_an_unknown_nested_name_lists_what_is_there() -> None:
    with pytest.raises(
        CheckError,
        match=r"ws_vs_http has no 'bytes_reduction'; its keys: bytes_sent_reduction, ttft_reduction",
    ):
        evaluate([parse_check("ws_vs_http.bytes_reduction>=0.8")], SUMMARY)


def test_a_path_ending_at_an_object_or_past_a_number_is_a_check_error() -> None:
    with pytest.raises(CheckError, match=r"transports\.ws is an object, not a number"):
        evaluate([parse_check("transports.ws>1")], SUMMARY)
    with pytest.raises(CheckError, match=r"rig\.lag_ms_p99_max is a number; it has no 'x'"):
        evaluate([parse_check("rig.lag_ms_p99_max.x>1")], SUMMARY)
    with pytest.raises(CheckError, match=r"ws\.per_turn is an empty list"):
        evaluate([parse_check("ws.per_turn.0.bytes_sent_mean>1")], SUMMARY)
    with pytest.raises(
        CheckError, match=r"is a list of 1; select an entry by position 0-0, not '3'"
    ):
        evaluate([parse_check("http.per_turn.3.bytes_sent_mean>1")], SUMMARY)


def test_check_error_is_a_value_error() -> None:
    assert issubclass(CheckError, ValueError)
    assert isinstance(parse_check("a>1"), Check)
