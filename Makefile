# Thin aliases; the logic lives in scripts/ and the CLI.
.PHONY: run test lint bench
run:
	./scripts/run.sh
test:
	./scripts/test.sh
lint:
	.venv/bin/ruff check src tests benchmarks && .venv/bin/mypy
bench:
	.venv/bin/python benchmarks/ingest.py
