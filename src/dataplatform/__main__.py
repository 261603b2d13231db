"""`python -m dataplatform` runs the CLI."""

from dataplatform.cli import main

main()
