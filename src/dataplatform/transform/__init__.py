"""transform stage: builds the dbt project (`dbt/`) in-process; see `dbt_runner.run_dbt`."""

from dataplatform.transform.dbt_runner import DbtResult, NodeStatus, TransformError, run_dbt

__all__ = ["DbtResult", "NodeStatus", "TransformError", "run_dbt"]
