"""Render, lint and schema-validate the Helm chart with real engines (run by the tools venv).

Runs under `.venv-tools/bin/python` (helm-python-sdk bundles Helm's Go engine as libhelm_c;
kubernetes-validate ships the Kubernetes OpenAPI JSON schemas), never imported by the app venv.

    python chart_tool.py CHART_DIR VALUES_FILE NAMESPACE KUBE_VERSION

Prints one JSON object: helm/validator versions, the rendered manifests (template path -> text),
the lint report, and one validation result per rendered object.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

RELEASE = "data-platform"


def main(chart_dir: str, values_file: str, namespace: str, kube_version: str) -> int:
    with open(values_file, encoding="utf-8") as fh:
        values: dict[str, Any] = yaml.safe_load(fh) or {}
    with helm.Chart.load(chart_dir) as chart:
        chart.validate_schema(chart.merge_values(values))
        manifests = chart.render(values=values, name=RELEASE, namespace=namespace, is_install=True)
    lint = helm.lint(
        chart_dir, values, strict=True, namespace=namespace, kube_version=f"v{kube_version}"
    )
    results = []
    for path, text in sorted(manifests.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            entry = {
                "template": path,
                "kind": doc.get("kind"),
                "name": doc.get("metadata", {}).get("name"),
                "status": "valid",
                "error": "",
            }
            try:
                kubernetes_validate.validate(doc, kube_version, strict=True)
            except SchemaNotFoundError as exc:
                entry.update(status="no-schema", error=str(exc))
            except ValidationError as exc:
                entry.update(status="invalid", error=f"{list(exc.path)}: {exc.message}")
            results.append(entry)
    json.dump(
        {
            "helm_sdk_version": helm.helm_sdk_version(),
            "helm_python_version": helm.__version__,
            "manifests": manifests,
            "lint": lint,
            "validation": results,
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
