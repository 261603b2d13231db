"""monitor stage: data quality (pandera), drift (numpy PSI/KL), performance, k-of-n decisions,
automated rollback.

Entry points for the composition root:

* `monitor.quality.check_ingest_batches(warehouse, batch_ids)` after `load`,
  `monitor.quality.check_feature_mart(warehouse)` after `transform`;
* `monitor.runner.run_monitor(settings, model_name, MonitorDeps(...), auto_rollback=..., ...)`;
* `monitor.cli.make_monitor_command(wire)` → the `dataplatform monitor` command.
"""
