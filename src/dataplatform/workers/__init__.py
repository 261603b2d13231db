"""Scale-out ingestion: a work queue of sources in PostgreSQL and the workers that drain it.

* `dataplatform.workers.queue.WorkQueue` — ``raw.ingest_queue``: ``FOR UPDATE SKIP LOCKED``
  claims, leases renewed by heartbeat, expired leases taken over by another worker.
* `dataplatform.workers.worker.Worker` — claim → ingest → load, repeat.
* `dataplatform.workers.cli.worker_app` — Typer sub-app: ``enqueue``, ``work``, ``status``.

Nothing is imported here, so that importing the queue does not pull in the whole pipeline.
"""
