"""``python -m dataplatform.workers``: the worker CLI on its own (settings from the environment)."""

from dataplatform.workers.cli import worker_app

if __name__ == "__main__":
    worker_app()
