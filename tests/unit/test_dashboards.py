"""The dashboards as code: deterministic files, a well-formed Grafana model, queries that read
only the InfluxDB schema the sink writes (the gateway's: only its Prometheus metrics), and
Grafana's variable substitution."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import typing
from pathlib import Path

import pytest
import yaml

from rig.dashboards import (
    ALL,
    DATASOURCE_UID,
    PROMETHEUS_DATASOURCE_UID,
    SCHEMA,
    build_all,
    build_prometheus,
    panel_queries,
    prometheus_queries,
    render_all,
    variable_queries,
)
from rig.dashboards import cli as dashboards_cli
from rig.dashboards.gateway import METRICS, PREFIX
from rig.dashboards.render import check_files
from rig.dashboards.templating import (
    escape_promql_regex,
    escape_regex,
    interpolate,
    round_interval_ms,
)
from rig.metrics.records import HealthRecord, RateLimitRecord, RecordTags, TaskRecord, TurnRecord

REPO_DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
FROM_NS = 1_700_000_000_000_000_000
TO_NS = FROM_NS + 600 * 1_000_000_000  # ten minutes
SELECTION = {"run": "20261121-101500-3fa2", "scenario": ALL, "transport": ["http", "ws"],
             "target": ALL, "link": ALL}  # fmt: skip
TYPES = {int: "integer", float: "float", str: "string", bool: "boolean"}


def _all_queries() -> list:
    return [
        query
        for dashboard in build_all().values()
        for query in panel_queries(dashboard, SELECTION, FROM_NS, TO_NS)
    ]


# Files


def test_committed_files_equal_a_regeneration():
    assert check_files(REPO_DASHBOARDS) == []


def test_rendering_twice_gives_identical_text():
    assert render_all() == render_all()


def test_json_files_have_sorted_keys_and_a_trailing_newline():
    for name, text in render_all().items():
        assert text.endswith("\n") and not text.endswith("\n\n"), name
        if name.endswith(".json"):
            assert json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n" == text


def test_generate_check_fails_on_a_stale_file_and_passes_after_generate(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="rig")
    dashboards_cli.add_parser(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        return dashboards_cli.run(parser.parse_args(["dashboards", "generate", *argv]))

    assert run("--out", str(tmp_path), "--check") == 1
    assert run("--out", str(tmp_path)) == 0
    assert run("--out", str(tmp_path), "--check") == 0
    (tmp_path / "latency.json").write_text("{}\n")
    assert run("--out", str(tmp_path), "--check") == 1
    assert "latency.json: differs" in capsys.readouterr().err


# Provisioning


def test_datasource_provisioning_holds_only_environment_references():
    provisioning = yaml.safe_load(render_all()["provisioning/datasources/rig.yaml"])
    (datasource,) = provisioning["datasources"]
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["type"] == "influxdb"
    assert datasource["jsonData"]["version"] == "InfluxQL"
    assert datasource["url"] == "$INFLUX_URL"
    assert datasource["jsonData"]["dbName"] == datasource["database"] == "$INFLUX_DB"
    assert datasource["jsonData"]["httpHeaderName1"] == "Authorization"
    assert datasource["secureJsonData"] == {"httpHeaderValue1": "Token $INFLUX_TOKEN"}


def test_prometheus_datasource_provisioning_holds_only_an_environment_reference():
    provisioning = yaml.safe_load(render_all()["provisioning/datasources/rig-prometheus.yaml"])
    (datasource,) = provisioning["datasources"]
    assert datasource["uid"] == PROMETHEUS_DATASOURCE_UID
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "$PROMETHEUS_URL"
    # The scrape interval Grafana's $__rate_interval is made of.
    assert datasource["jsonData"]["timeInterval"] == "15s"
    assert "secureJsonData" not in datasource


def test_dashboard_provider_loads_the_generated_files_into_a_folder():
    provider = yaml.safe_load(render_all()["provisioning/dashboards/rig.yaml"])
    (entry,) = provider["providers"]
    assert entry["type"] == "file"
    assert entry["options"]["path"].startswith("/var/lib/grafana/dashboards")
    assert entry["folderUid"]


# The Grafana model


def test_dashboards_have_stable_unique_uids():
    assert sorted(build_all()) == ["rig-health", "rig-ingress", "rig-latency", "rig-ratelimits"]
    assert sorted(build_prometheus()) == ["rig-gateway"]
    assert "gateway.json" in render_all()


def test_panel_ids_are_unique_and_the_layout_fits_the_grid_without_overlap():
    for uid, dashboard in {**build_all(), **build_prometheus()}.items():
        panels = dashboard["panels"]
        assert [p["id"] for p in panels] == list(range(1, len(panels) + 1)), uid
        cells: set[tuple[int, int]] = set()
        for panel in panels:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (uid, panel["title"])
            area = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not cells & area, (uid, panel["title"])
            cells |= area


def test_every_target_is_raw_influxql_on_the_rig_datasource_or_an_expression_over_one():
    for uid, dashboard in build_all().items():
        for panel in dashboard["panels"]:
            assert panel["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(set(ref_ids)) == len(ref_ids)
            assert any(not t.get("hide") for t in panel["targets"]), (uid, panel["title"])
            for target in panel["targets"]:
                where = (uid, panel["title"], target["refId"])
                if target["datasource"]["type"] == "__expr__":
                    used = set(re.findall(r"\$(\w+)", target["expression"])) or {
                        target["expression"]
                    }
                    assert used <= set(ref_ids) - {target["refId"]}, where
                    continue
                assert target["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}, where
                assert target["rawQuery"] is True, where
                assert target["query"].startswith("SELECT "), where
                assert "$timeFilter" in target["query"], where


def test_every_variable_a_query_uses_is_defined():
    builtins = {"timeFilter", "__interval", "__interval_ms"}
    for uid, dashboard in build_all().items():
        defined = {v["name"] for v in dashboard["templating"]["list"]}
        texts = [t.get("query", "") for p in dashboard["panels"] for t in p["targets"]]
        texts += [v.get("query", "") for v in dashboard["templating"]["list"]]
        texts += [p["title"] for p in dashboard["panels"]]
        for text in texts:
            used = set(re.findall(r"\$(\w+)", text))
            assert used <= defined | builtins, (uid, used - defined - builtins)


def test_dashboards_offer_the_run_scenario_transport_target_and_link_variables():
    for dashboard in build_all().values():
        names = [v["name"] for v in dashboard["templating"]["list"]]
        assert names[:5] == ["run", "scenario", "transport", "target", "link"]
    ingress = build_all()["rig-ingress"]["templating"]["list"]
    assert {v["name"]: v["query"] for v in ingress}["sessions"] == "10000"


def _latency_panel(title: str) -> dict:
    (panel,) = [p for p in build_all()["rig-latency"]["panels"] if p["title"] == title]
    return panel


def test_task_time_is_grouped_by_link_with_a_bar_per_transport():
    for percentile in (50, 90):
        panel = _latency_panel(f"Task time p{percentile} by link")
        (target,) = panel["targets"]
        assert f'percentile("task_ms", {percentile})' in target["query"]
        assert '"ok" = true' in target["query"]
        assert target["query"].endswith('GROUP BY "link", "transport"')
        assert panel["options"]["xField"] == "link"
        (matrix, *_) = panel["transformations"]
        assert matrix["options"]["rowField"] == "link"
        assert matrix["options"]["columnField"] == "transport"


def test_task_success_by_link_divides_completed_tasks_by_every_task():
    panel = _latency_panel("Task success rate by link")
    completed, every, ratio = panel["targets"]
    assert completed["hide"] and every["hide"] and not ratio["hide"]
    assert completed["query"] == every["query"].replace(" GROUP BY", ' AND "ok" = true GROUP BY')
    assert every["query"].endswith('GROUP BY "link", "transport"')
    assert ratio["expression"] == "$A / $B"
    assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"


def test_timeouts_are_counted_by_turn_index_and_transport():
    (target,) = _latency_panel("Timeouts by turn index")["targets"]
    assert 'count("turn_ms")' in target["query"]
    assert "\"status\" = 'timeout'" in target["query"]
    assert target["query"].endswith('GROUP BY "turn", "transport"')


# The schema


def _record_schema(cls: type, extra_tags: tuple[str, ...]) -> tuple[set[str], dict[str, str]]:
    hints = typing.get_type_hints(cls)
    fields = {}
    for f in dataclasses.fields(cls):
        if f.name in ("tags", "ts", *extra_tags):
            continue
        hint = hints[f.name]
        fields[f.name] = "string" if typing.get_origin(hint) is typing.Literal else TYPES[hint]
    tags = {f.name for f in dataclasses.fields(RecordTags)} | set(extra_tags)
    return tags, fields


@pytest.mark.parametrize(
    ("measurement", "cls", "extra_tags"),
    [
        ("turn", TurnRecord, ("turn",)),
        ("task", TaskRecord, ()),
        ("ratelimit", RateLimitRecord, ("limit",)),
        ("rig", HealthRecord, ()),
    ],
)
def test_the_schema_as_data_agrees_with_the_records(measurement, cls, extra_tags):
    tags, fields = _record_schema(cls, extra_tags)
    assert set(SCHEMA[measurement].tags) == tags
    assert SCHEMA[measurement].fields == fields


def _statements(query: str) -> list[tuple[str, str]]:
    """(measurement, the text of one SELECT): a subquery, then the query around it, which
    reads the subquery's measurement through the subquery's column names."""
    inner = re.search(r'\(SELECT [^()]*(?:\([^()]*\)[^()]*)*? FROM "(\w+)".*?\)(?= WHERE)', query)
    if inner is None:
        return [(m, query) for m in re.findall(r'FROM "(\w+)"', query)]
    outer = query[: inner.start()] + "SUBQUERY" + query[inner.end() :]
    return [(inner.group(1), inner.group(0)), (inner.group(1), outer)]


def test_every_query_reads_only_the_schema():
    """Measurements exist; every quoted name is a tag, a field or an alias; aggregates read
    numeric fields; GROUP BY names only tags; tags compare with string literals or regexes,
    fields with values of their type."""
    numeric = {"integer", "float"}
    literal = {"string": r"'\w+'", "boolean": r"(true|false)"}
    checked = 0
    for query in _all_queries():
        where = (query.dashboard_uid, query.panel_title, query.ref_id)
        statements = _statements(query.influxql)
        assert statements, where
        aliases = set(re.findall(r'AS "([^"]+)"', query.influxql))
        for measurement, text in statements:
            assert measurement in SCHEMA, where
            schema = SCHEMA[measurement]
            names = set(re.findall(r'"([^"]+)"', text)) - {measurement}
            unknown = names - set(schema.tags) - set(schema.fields) - aliases
            assert not unknown, (where, unknown)
            for name in re.findall(r'\w+\("(\w+)"', text):
                assert schema.fields.get(name) in numeric or name in aliases, (where, name)
            for group in re.findall(r"GROUP BY ([^)]*?)(?: fill\(|\)|$)", text):
                grouped = set(re.findall(r'"([^"]+)"', group))
                assert grouped <= set(schema.tags), (where, grouped)
            for name, operator, value in re.findall(r'"(\w+)" (=~|=) (\S+)', text):
                if name in schema.tags:
                    pattern = r"/\^.*\$/" if operator == "=~" else r"'[^']*'"
                else:
                    assert operator == "=", (where, name)
                    pattern = literal[schema.fields[name]]
                assert re.fullmatch(pattern, value.rstrip(")")), (where, name, value)
                checked += 1
    assert checked > 100


def test_status_is_compared_as_a_field_one_value_per_query():
    for query in _all_queries():
        assert 'GROUP BY "status"' not in query.influxql
        for value in re.findall(r"\"status\" = '(\w+)'", query.influxql):
            assert value in ("ok", "error", "rate_limited", "timeout", "reconnected")


def test_queries_use_only_influxql_that_influxdb_1_6_has():
    for query in _all_queries():
        text = query.influxql.upper()
        for newer in (" INTO ", "FROM(BUCKET", "|>", "JOIN", "CASE WHEN"):
            assert newer not in text, (query.panel_title, newer)


# Variable substitution


def test_every_variable_is_substituted():
    queries = _all_queries()
    assert queries
    for query in queries:
        leftover = re.findall(r"\$\w+|\[\[\w+\]\]|\$\{\w+", query.influxql)
        assert leftover == [], (query.panel_title, leftover)


def test_multi_value_variables_become_an_escaped_alternation():
    dashboard = build_all()["rig-ingress"]
    variables = {**SELECTION, "transport": ["http", "ws.v2/beta"]}
    query = panel_queries(dashboard, variables, FROM_NS, TO_NS)[0].influxql
    assert r'"transport" =~ /^(http|ws\.v2\/beta)$/' in query


def test_a_single_value_of_a_multi_value_variable_is_escaped_without_parentheses():
    dashboard = build_all()["rig-ingress"]
    query = panel_queries(dashboard, {**SELECTION, "transport": ["ws"]}, FROM_NS, TO_NS)[0]
    assert '"transport" =~ /^ws$/' in query.influxql


def test_all_is_the_custom_all_value():
    query = panel_queries(build_all()["rig-ingress"], SELECTION, FROM_NS, TO_NS)[0].influxql
    assert '"scenario" =~ /^.*$/' in query
    assert "\"run\" = '20261121-101500-3fa2'" in query


def test_time_filter_is_in_milliseconds_covering_the_whole_range():
    query = panel_queries(build_all()["rig-ingress"], SELECTION, FROM_NS + 1, TO_NS - 1)[0]
    assert "time >= 1700000000000ms and time <= 1700000600000ms" in query.influxql


def test_interval_is_rounded_as_grafana_does_and_respects_the_panel_minimum():
    by_title = {
        q.panel_title: q.influxql
        for d in build_all().values()
        for q in panel_queries(d, SELECTION, FROM_NS, TO_NS)
    }
    # 600 s over 1,000 points is 600 ms, which Grafana rounds to 500 ms.
    assert "GROUP BY time(500ms)" in by_title["Client-to-server ingress rate"]
    assert "/ (500 / 1000)" in by_title["Client-to-server ingress rate"]
    assert "GROUP BY time(5s)" in by_title["Users"]  # the rig panels' 5 s minimum
    assert round_interval_ms(600) == 500
    assert round_interval_ms(90_000) == 120_000


def test_a_fixed_interval_overrides_the_computed_one():
    dashboard = build_all()["rig-ingress"]
    queries = panel_queries(dashboard, SELECTION, FROM_NS, TO_NS, interval_ms=60_000)
    rate = next(q for q in queries if q.panel_title == "Client-to-server ingress rate")
    assert "GROUP BY time(1m)" in rate.influxql and "/ (60000 / 1000)" in rate.influxql


def test_textbox_variables_default_to_their_text_and_can_be_set():
    dashboard = build_all()["rig-ingress"]
    default = [q for q in panel_queries(dashboard, SELECTION, FROM_NS, TO_NS)]
    chosen = panel_queries(dashboard, {**SELECTION, "sessions": "1000000"}, FROM_NS, TO_NS)
    projection = "Projected ingress at 10000 sessions"
    assert any(q.panel_title == projection and "* 10000 /" in q.influxql for q in default)
    assert any("* 1000000 /" in q.influxql for q in chosen)
    assert any(q.panel_title == "Projected ingress at 1000000 sessions" for q in chosen)


def test_expression_inputs_are_marked_hidden_and_expressions_left_out():
    queries = panel_queries(build_all()["rig-ingress"], SELECTION, FROM_NS, TO_NS)
    reduction = [q for q in queries if q.panel_title == "Bytes sent per task: reduction vs http"]
    assert [(q.ref_id, q.hidden) for q in reduction] == [("A", True), ("B", True)]
    assert "\"transport\" = 'http'" in reduction[1].influxql


def test_a_missing_variable_is_named():
    with pytest.raises(ValueError, match="transport"):
        panel_queries(
            build_all()["rig-latency"],
            {k: v for k, v in SELECTION.items() if k != "transport"},
            FROM_NS,
            TO_NS,
        )


def test_interpolate_knows_grafanas_three_syntaxes_and_formats():
    definitions = {"t": {"name": "t", "multi": True, "includeAll": True}}
    values = {"t": ["a", "b"], "n": "5"}
    assert interpolate("$t ${t} [[t]]", values, definitions) == "(a|b) (a|b) (a|b)"
    assert interpolate("${t:csv} ${t:pipe} ${t:raw}", values, definitions) == "a,b a|b a,b"
    assert interpolate("${t:singlequote}", values, definitions) == "'a','b'"
    assert interpolate("$n $unknown ${n}0", values, definitions) == "5 $unknown 50"


def test_escape_promql_regex_escapes_as_grafanas_prometheus_datasource_does():
    assert escape_promql_regex("a.b") == r"a\\.b"
    assert escape_promql_regex("a\\b") == "a" + "\\" * 4 + "b"
    assert (
        escape_promql_regex("$^*{}[]'+?()|/") == "".join(rf"\\{c}" for c in "$^*{}[]'+?()|") + "/"
    )


def test_escape_regex_escapes_what_grafana_escapes():
    assert escape_regex("a.b*c/d(e)|f[g]{h}^$+?\\") == (r"a\.b\*c\/d\(e\)\|f\[g\]\{h\}\^\$\+\?\\")


def test_variable_queries_list_tag_values_within_the_run():
    queries = variable_queries(build_all()["rig-latency"], SELECTION)
    assert queries["run"] == 'SHOW TAG VALUES FROM "turn" WITH KEY = "run"'
    assert queries["transport"] == (
        'SHOW TAG VALUES FROM "turn" WITH KEY = "transport" WHERE "run" = \'20261121-101500-3fa2\''
    )


# The gateway's dashboard (PromQL)

GATEWAY_SELECTION = {"job": ALL, "instance": ["10.0.0.1:8100", "10.0.0.2:8100"]}
_SERIES = re.compile(r"\b(rig_\w+)\{([^}]*)\}")


def _gateway_targets() -> list[tuple[str, dict]]:
    dashboard = build_prometheus()["rig-gateway"]
    return [
        (panel["title"], target) for panel in dashboard["panels"] for target in panel["targets"]
    ]


def test_every_gateway_target_is_promql_on_the_prometheus_datasource():
    dashboard = build_prometheus()["rig-gateway"]
    prometheus = {"type": "prometheus", "uid": PROMETHEUS_DATASOURCE_UID}
    for panel in dashboard["panels"]:
        assert panel["datasource"] == prometheus, panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == prometheus, panel["title"]
            assert target["expr"] and target["legendFormat"], panel["title"]
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"] == prometheus
        assert variable["query"]["query"].startswith("label_values(rig_gateway_")


def test_gateway_queries_read_only_its_metrics_each_as_its_type_allows():
    read = set()
    for title, target in _gateway_targets():
        expr = target["expr"]
        series = _SERIES.findall(expr)
        assert series, (title, expr)
        for name, matchers in series:
            assert name.startswith(PREFIX), (title, name)
            name = name.removeprefix(PREFIX)
            family = name.removesuffix("_bucket")
            metric = METRICS[family]
            read.add(family)
            # Every series is filtered by the dashboard's job and instance.
            assert matchers.startswith('job=~"$job", instance=~"$instance"'), (title, expr)
            extra = matchers.removeprefix('job=~"$job", instance=~"$instance"').lstrip(", ")
            for label in re.findall(r"(\w+)=", extra):
                assert label in metric.labels, (title, label)
            if metric.kind == "counter":
                assert f"rate({PREFIX}{name}{{" in expr, (title, expr)
            elif metric.kind == "histogram":
                assert name.endswith("_bucket") and "histogram_quantile(" in expr, (title, expr)
                assert "by (le)" in expr, (title, expr)
            else:
                assert f"rate({PREFIX}{name}" not in expr, (title, expr)
        for grouping in re.findall(r"by \((\w+)\)", expr):
            labels = {
                label
                for n, _ in series
                for label in METRICS[n.removeprefix(PREFIX).removesuffix("_bucket")].labels
            }
            assert grouping in labels | {"instance", "le"}, (title, grouping)
        assert "[$__rate_interval]" in expr or "rate(" not in expr, (title, expr)
    assert read == set(METRICS), set(METRICS) - read


def test_the_gateway_dashboard_shows_what_the_issue_asks_for():
    titles = " / ".join(title.lower() for title, _ in _gateway_targets())
    for words in ("client edge vs upstream bytes", "hits and misses", "resumes", "evictions",
                  "sessions", "memory per session", "checkpoint write latency",
                  "upstream time to first byte", "in flight", "connections", "errors"):  # fmt: skip
        assert words in titles, words


def test_gateway_variables_filter_by_job_and_instance_with_all_as_any():
    dashboard = build_prometheus()["rig-gateway"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"job", "instance"}
    assert all(v["multi"] and v["includeAll"] and v["allValue"] == ".*" for v in variables.values())
    assert '{job=~"$job"}' in variables["instance"]["query"]["query"]
    defined = set(variables) | {"__rate_interval", "__interval"}
    for title, target in _gateway_targets():
        assert set(re.findall(r"\$(\w+)", target["expr"])) <= defined, title


def test_prometheus_queries_substitute_variables_and_grafanas_rate_interval():
    dashboard = build_prometheus()["rig-gateway"]
    queries = prometheus_queries(dashboard, GATEWAY_SELECTION, interval_ms=15_000,
                                 scrape_interval_ms=15_000)  # fmt: skip
    assert len(queries) == len(_gateway_targets())
    for query in queries:
        assert "$" not in query.expr, query.expr
        # Each dot a regex literal inside the PromQL string: "10\\.0" is the regex 10\.0.
        assert r'job=~".*", instance=~"(10\\.0\\.0\\.1:8100|10\\.0\\.0\\.2:8100)"' in query.expr
    rates = [q.expr for q in queries if "rate(" in q.expr]
    # Four scrape intervals, or the interval plus one when that is longer.
    assert rates and all("[1m]" in expr for expr in rates)
    longer = prometheus_queries(dashboard, GATEWAY_SELECTION, interval_ms=120_000,
                                scrape_interval_ms=15_000)  # fmt: skip
    assert all("[135s]" in q.expr for q in longer if "rate(" in q.expr)


def test_prometheus_queries_name_a_missing_variable():
    with pytest.raises(ValueError, match="instance"):
        prometheus_queries(build_prometheus()["rig-gateway"], {"job": ALL},
                           interval_ms=15_000, scrape_interval_ms=15_000)  # fmt: skip
