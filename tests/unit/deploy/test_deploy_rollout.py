"""Blue-green and canary, driven by values and checked by rendering with Helm's engine."""

from __future__ import annotations

from typing import Any

import yaml


def render_with(
    chart_tool_report: Any, repo_root: Any, tmp_path: Any, env: str, rollout: dict[str, Any]
) -> list[dict[str, Any]]:
    values = yaml.safe_load((repo_root / f"helm/data-platform/values-{env}.yaml").read_text())
    values["api"]["rollout"] = rollout
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    report = chart_tool_report(path, f"platform-{env}")
    assert [r for r in report["validation"] if r["status"] == "invalid"] == []
    return [
        d
        for path, text in report["manifests"].items()
        if path.endswith(".yaml")
        for d in yaml.safe_load_all(text)
        if d
    ]


def by(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_blue_green_service_follows_active_slot(
    chart_tool_report: Any, repo_root: Any, tmp_path: Any
) -> None:
    for active, idle in (("blue", "green"), ("green", "blue")):
        docs = render_with(
            chart_tool_report,
            repo_root,
            tmp_path,
            "prod",
            {
                "strategy": "blueGreen",
                "blueGreen": {
                    "activeSlot": active,
                    "slots": {"blue": {"tag": "aaa111"}, "green": {"tag": "bbb222"}},
                },
            },
        )
        svc = by(docs, "Service", "data-platform-api")["spec"]["selector"]
        assert svc["dataplatform.io/slot"] == active
        preview = by(docs, "Service", "data-platform-api-preview")["spec"]["selector"]
        assert preview["dataplatform.io/slot"] == idle
        blue = by(docs, "Deployment", "data-platform-api-blue")
        assert blue["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":aaa111")
        green = by(docs, "Deployment", "data-platform-api-green")
        assert green["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":bbb222")
        assert not [d for d in docs if d["kind"] == "VirtualService"]


def test_canary_virtual_service_splits_90_10(
    chart_tool_report: Any, repo_root: Any, tmp_path: Any
) -> None:
    docs = render_with(
        chart_tool_report,
        repo_root,
        tmp_path,
        "staging",
        {
            "strategy": "canary",
            "canary": {"weight": 10, "tag": "ccc333", "header": "x-canary"},
        },
    )
    vs = by(docs, "VirtualService", "data-platform-api")["spec"]["http"]
    testers, weighted = vs
    assert testers["match"][0]["headers"] == {"x-canary": {"exact": "true"}}
    assert testers["route"][0]["destination"]["subset"] == "canary"
    weights = {r["destination"]["subset"]: r["weight"] for r in weighted["route"]}
    assert weights == {"stable": 90, "canary": 10}
    subsets = {
        s["name"]: s["labels"]
        for s in by(docs, "DestinationRule", "data-platform-api")["spec"]["subsets"]
    }
    canary = by(docs, "Deployment", "data-platform-api-canary")["spec"]["template"]
    assert canary["spec"]["containers"][0]["image"].endswith(":ccc333")
    assert subsets["canary"].items() <= canary["metadata"]["labels"].items()
    stable = by(docs, "Deployment", "data-platform-api")["spec"]["template"]
    assert subsets["stable"].items() <= stable["metadata"]["labels"].items()


def test_canary_weight_is_a_value(chart_tool_report: Any, repo_root: Any, tmp_path: Any) -> None:
    docs = render_with(
        chart_tool_report,
        repo_root,
        tmp_path,
        "staging",
        {"strategy": "canary", "canary": {"weight": 25}},
    )
    weighted = by(docs, "VirtualService", "data-platform-api")["spec"]["http"][1]
    assert [r["weight"] for r in weighted["route"]] == [75, 25]
