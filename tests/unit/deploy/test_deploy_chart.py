"""The Helm chart, rendered by Helm's own engine (helm-python-sdk: Helm v4's Go code) for each
environment, linted, validated against the Kubernetes OpenAPI schemas, and checked for policy."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

CRD_KINDS = frozenset(
    {
        "ServiceMonitor",
        "PrometheusRule",
        "SealedSecret",
        "VirtualService",
        "DestinationRule",
        "Cluster",
        "ScheduledBackup",
    }
)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "CronJob")


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def workloads(rendered: Any) -> list[dict[str, Any]]:
    return [d for d in rendered.docs if d["kind"] in WORKLOAD_KINDS]


def test_renders_with_helm_v4_engine(rendered: Any) -> None:
    assert rendered.helm_version.startswith("v4.")
    kinds = {d["kind"] for d in rendered.docs}
    assert {
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "CronJob",
        "Job",
        "NetworkPolicy",
        "ResourceQuota",
        "Role",
        "RoleBinding",
        "Ingress",
    } <= kinds
    assert all(d["metadata"]["namespace"] == rendered.namespace for d in rendered.docs), (
        "every object names its namespace"
    )


def test_helm_lint_strict_is_clean(rendered: Any) -> None:
    assert rendered.lint["errors"] == []
    problems = [m for m in rendered.lint["messages"] if m["severity"] >= 2]
    assert problems == []


def test_every_manifest_matches_kubernetes_schema(rendered: Any) -> None:
    invalid = [r for r in rendered.validation if r["status"] == "invalid"]
    assert invalid == []
    # Only CRD kinds may lack a schema; everything else was validated (strict: unknown fields fail).
    no_schema = {r["kind"] for r in rendered.validation if r["status"] == "no-schema"}
    assert no_schema <= CRD_KINDS
    assert sum(r["status"] == "valid" for r in rendered.validation) > 30


@pytest.mark.parametrize("kube_version", ["1.28.0", "1.33.0", "1.37.0"])
def test_prod_validates_from_kubernetes_1_28(
    chart_tool_report: Any, repo_root: Any, kube_version: str
) -> None:
    report = chart_tool_report(
        repo_root / "helm/data-platform/values-prod.yaml", "platform-prod", kube_version
    )
    assert [r for r in report["validation"] if r["status"] == "invalid"] == []


def test_validator_rejects_a_broken_manifest(
    chart_tool_report: Any, tmp_path: Any, repo_root: Any
) -> None:
    """The schema check is real: an unknown container field makes the run report invalid."""
    values = yaml.safe_load((repo_root / "helm/data-platform/values-dev.yaml").read_text())
    values["api"]["resources"]["requests"]["cpu"] = {"not": "a quantity"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(values))
    with pytest.raises(AssertionError, match="chart_tool failed"):
        chart_tool_report(bad, "platform-dev")  # values.schema.json refuses it first


def test_every_container_has_requests_limits_and_restricted_context(rendered: Any) -> None:
    checked = 0
    for doc in workloads(rendered):
        spec = pod_spec(doc)
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        pod_ctx = spec["securityContext"]
        assert pod_ctx["runAsNonRoot"] is True, where
        assert pod_ctx["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec.get("automountServiceAccountToken") is False, where
        assert not spec.get("hostNetwork"), where
        assert not spec.get("hostPID"), where
        mounts_tmp = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for c in spec.get("initContainers", []) + spec["containers"]:
            res = c["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res[kind]), f"{where}/{c['name']} {kind}"
            ctx = c["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["runAsNonRoot"] is True, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert not ctx["capabilities"].get("add"), where
            assert ctx["runAsUser"] >= 10000, where
            tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp, f"{where}: /tmp must be mounted"
            assert tmp[0]["name"] in mounts_tmp, f"{where}: /tmp must be an emptyDir"
            checked += 1
    assert checked >= 8


def test_default_deny_and_allowed_paths(rendered: Any) -> None:
    policies = {
        p["metadata"]["name"].removeprefix("data-platform-"): p["spec"]
        for p in rendered.of_kind("NetworkPolicy")
    }
    deny = policies["default-deny"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    dns = policies["allow-dns"]["egress"][0]
    assert {p["port"] for p in dns["ports"]} == {53}
    api = policies["allow-api-ingress"]
    sources = [
        s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for s in api["ingress"][0]["from"]
    ]
    assert sources == ["ingress-nginx", "platform-monitoring"]
    assert api["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8000}]
    pg = policies["allow-postgresql"]["ingress"][0]
    assert pg["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert {"dataplatform.io/db-client": "true"} in [
        s["podSelector"]["matchLabels"] for s in pg["from"]
    ]
    assert policies["allow-db-clients-egress"]["egress"][0]["ports"][0]["port"] == 5432
    assert policies["allow-objectstore-clients-egress"]["egress"][0]["ports"][0]["port"] == 9000
    # Production: no internet egress (design 1.1 "restricted egress").
    assert ("allow-internet-egress" in policies) == (rendered.env != "prod")


def test_no_plaintext_secret_outside_dev(rendered: Any) -> None:
    secrets = rendered.of_kind("Secret")
    sealed = rendered.of_kind("SealedSecret")
    if rendered.env == "dev":
        assert len(secrets) == 1
        assert not sealed
    else:
        assert secrets == []
        assert len(sealed) == 1
        assert sealed[0]["spec"]["encryptedData"]
        assert "stringData" not in sealed[0]["spec"]["template"]
    # No container reads a secret into an env var (they are mounted files, design 3.1).
    for doc in workloads(rendered):
        for c in pod_spec(doc)["containers"]:
            assert not any("valueFrom" in e for e in c.get("env", [])), doc["metadata"]["name"]
            assert "envFrom" not in c


def test_plaintext_secrets_refused_in_prod(chart_tool_report: Any, tmp_path: Any) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("environment: prod\nsecrets:\n  mode: plaintext\n")
    with pytest.raises(AssertionError, match="sealed"):
        chart_tool_report(values, "platform-prod")


def test_hpa_bounds(rendered: Any) -> None:
    hpa = rendered.one("HorizontalPodAutoscaler", "data-platform-pipeline")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 20)
    target = hpa["metrics"][0]["resource"]
    assert target["name"] == "cpu"
    assert target["target"]["averageUtilization"] == 70
    for h in rendered.of_kind("HorizontalPodAutoscaler"):
        assert 1 <= h["spec"]["minReplicas"] <= h["spec"]["maxReplicas"] <= 20
    pdb = rendered.one("PodDisruptionBudget", "data-platform-api")["spec"]
    assert pdb["minAvailable"] >= 1


def test_cronjob_schedules_as_designed(rendered: Any) -> None:
    schedules = {c["metadata"]["name"]: c["spec"]["schedule"] for c in rendered.of_kind("CronJob")}
    assert schedules["data-platform-dbt"] == "0 */6 * * *"
    assert schedules["data-platform-batch-inference"] == "0 2 * * *"
    assert schedules["data-platform-monitoring"] == "*/15 * * * *"
    if rendered.env != "dev":
        assert schedules["data-platform-secret-rotation"] == "30 3 * * *"
    for c in rendered.of_kind("CronJob"):
        assert c["spec"]["concurrencyPolicy"] == "Forbid"
        assert c["spec"]["timeZone"] == "Etc/UTC"


def test_migration_is_a_helm_hook(rendered: Any) -> None:
    job = rendered.one("Job", "data-platform-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    assert pod_spec(job)["containers"][0]["args"][:2] == ["db", "migrate"]


def test_environment_matrix(rendered_by_env: dict[str, Any]) -> None:
    """Design 1.2: resources 25/50/100 %, backups none/7/30, monitoring basic/full/alerting."""

    def cpu_millis(q: str) -> int:
        return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)

    prod = rendered_by_env["prod"]
    for env, share in (("dev", 0.25), ("staging", 0.5), ("prod", 1.0)):
        r = rendered_by_env[env]
        for name in ("data-platform-pipeline",):
            got = r.one("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
            ref = prod.one("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
            for kind in ("requests", "limits"):
                ratio = cpu_millis(got["resources"][kind]["cpu"]) / cpu_millis(
                    ref["resources"][kind]["cpu"]
                )
                assert ratio == share, (env, kind)
    assert not rendered_by_env["dev"].of_kind("Cluster")  # dev: StatefulSet, no backups
    assert not rendered_by_env["dev"].of_kind("ScheduledBackup")
    retention = {
        e: rendered_by_env[e].one("Cluster", "data-platform-pg")["spec"]["backup"][
            "retentionPolicy"
        ]
        for e in ("staging", "prod")
    }
    assert retention == {"staging": "7d", "prod": "30d"}
    assert rendered_by_env["prod"].one("Cluster", "data-platform-pg")["spec"]["instances"] == 3
    assert not rendered_by_env["dev"].of_kind("ServiceMonitor")
    for env in ("staging", "prod"):
        assert rendered_by_env[env].of_kind("ServiceMonitor")
    minio = {
        e: rendered_by_env[e].one("StatefulSet", "data-platform-minio")["spec"]["replicas"]
        for e in ("dev", "staging", "prod")
    }
    assert minio == {"dev": 1, "staging": 2, "prod": 4}


def test_prometheus_rule_embeds_the_rule_file(
    rendered_by_env: dict[str, Any], repo_root: Any
) -> None:
    source = yaml.safe_load(
        (repo_root / "helm/data-platform/files/prometheus-rules.yaml").read_text()
    )
    prod = rendered_by_env["prod"].one("PrometheusRule", "data-platform-rules")["spec"]["groups"]
    assert [g["name"] for g in prod] == [g["name"] for g in source["groups"]]
    alerts = {r["alert"]: r for g in prod for r in g["rules"] if "alert" in r}
    assert {
        "DataPlatformApiLatencyP95High",
        "DataPlatformApiErrorRateHigh",
        "DataPlatformApiErrorRateCritical",
        "DataPlatformFeatureDrift",
        "DataPlatformPredictionDrift",
        "DataPlatformPipelineStale",
    } <= set(alerts)
    assert alerts["DataPlatformApiErrorRateCritical"]["labels"]["pagerduty"] == "true"
    assert "pagerduty" not in alerts["DataPlatformApiErrorRateHigh"]["labels"]
    latency = alerts["DataPlatformApiLatencyP95High"]
    assert "{{ $labels.route }}" in latency["annotations"]["summary"]
    staging = rendered_by_env["staging"].one("PrometheusRule", "data-platform-rules")
    assert all(
        "pagerduty" not in r.get("labels", {})
        for g in staging["spec"]["groups"]
        for r in g["rules"]
    )


def test_grafana_dashboard_is_provisioned(rendered_by_env: dict[str, Any], repo_root: Any) -> None:
    import json

    dashboard = json.loads(
        (repo_root / "helm/data-platform/dashboards/data-platform.json").read_text()
    )
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "dataplatform_http_request_duration_seconds_bucket",
        "dataplatform_http_requests_total",
        "dataplatform_predictions_total",
        "dataplatform_model_info",
        "dataplatform_feature_psi",
        "dataplatform_prediction_kl",
        "dataplatform_pipeline_last_success_timestamp_seconds",
    ):
        assert metric in exprs
    cm = rendered_by_env["staging"].one("ConfigMap", "data-platform-grafana-dashboards")
    assert json.loads(cm["data"]["data-platform.json"]) == dashboard
    assert not [
        c for c in rendered_by_env["dev"].of_kind("ConfigMap") if "grafana" in c["metadata"]["name"]
    ]


def test_ingress_has_tls(rendered: Any) -> None:
    ingress = rendered.one("Ingress", "data-platform")["spec"]
    hosts = [r["host"] for r in ingress["rules"]]
    assert ingress["tls"]
    assert set(hosts) <= set(ingress["tls"][0]["hosts"])


def test_rbac_roles_of_design(rendered: Any) -> None:
    roles = {r["metadata"]["name"]: r["rules"] for r in rendered.of_kind("Role")}
    assert set(roles) == {"platform-admin", "data-engineer", "data-analyst", "deployer"}
    assert roles["platform-admin"] == [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    assert {"create"} == set(
        next(r["verbs"] for r in roles["data-engineer"] if r["resources"] == ["pods/exec"])
    )
    analyst_verbs = {v for r in roles["data-analyst"] for v in r["verbs"]}
    assert analyst_verbs <= {"get", "list", "watch"}
    assert not any("secrets" in r["resources"] for r in roles["deployer"])
    assert not rendered.of_kind("ClusterRole")
