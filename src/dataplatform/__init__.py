"""data-platform: git commit history → warehouse → dbt → ML models → serving → monitoring."""

__version__ = "0.1.0"
