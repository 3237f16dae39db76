"""The Grafana dashboard in ``docs/grafana/daygen.json`` only queries metrics the app exports,
and shows every one of them: each panel's PromQL is parsed (``promql-parser``) and the metric
names it selects are compared with the app's registry."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from app.metrics import AppMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "daygen.json"
# Grafana's interval variables, replaced by a duration before parsing (label values such as
# "$type" sit inside strings, which PromQL accepts as they are).
_INTERVALS = re.compile(
    r"\$(__rate_interval|__interval|__range)|\$\{(__rate_interval|__interval|__range)\}"
)
_LABEL_VALUES = re.compile(r"^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*\w+\s*\)$")


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from panels(item.get("panels", []))


def selected_metrics(expr: str) -> list[str]:
    """The metric names ``expr`` selects (instant and range vector selectors)."""
    tree = promql_parser.parse(_INTERVALS.sub("5m", expr))
    names: list[str] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr!r}"
            names.append(node.name)
        return True

    promql_parser.walk(tree, visit)
    return names


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


@pytest.fixture(scope="module")
def exported() -> set[str]:
    return AppMetrics().exported_names()


def test_every_panel_queries_only_metrics_the_app_exports(
    dashboard: dict[str, Any], exported: set[str]
) -> None:
    queried = 0
    for panel in panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            names = selected_metrics(target["expr"])
            assert names, f"panel {panel['title']!r} selects no metric"
            unknown = sorted(set(names) - exported)
            assert not unknown, f"panel {panel['title']!r} queries {unknown}, not exported"
            queried += 1
    assert queried >= 10


def test_template_variables_read_exported_metrics(
    dashboard: dict[str, Any], exported: set[str]
) -> None:
    for variable in dashboard["templating"]["list"]:
        match = _LABEL_VALUES.match(variable["query"]["query"])
        assert match, variable["query"]
        assert match.group(1) in exported


def test_every_exported_metric_has_a_panel(dashboard: dict[str, Any]) -> None:
    families = {metric.name for metric in AppMetrics().registry.collect()}
    shown = {
        name
        for panel in panels(dashboard["panels"])
        for target in panel.get("targets", [])
        for name in selected_metrics(target["expr"])
    }
    missing = [
        family for family in sorted(families) if not any(s.startswith(family) for s in shown)
    ]
    assert not missing, f"no panel shows {missing}"


def test_the_parser_sees_through_functions_and_operators() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{type=~"$type"}[$__rate_interval])))'
        " / on() group_left sum(b_total) or vector(0)"
    )
    assert selected_metrics(expr) == ["a_bucket", "b_total"]


def test_an_unknown_metric_is_caught(exported: set[str]) -> None:
    assert "daygen_jobs_creatd_total" not in exported
    assert selected_metrics("rate(daygen_jobs_creatd_total[5m])") == ["daygen_jobs_creatd_total"]
