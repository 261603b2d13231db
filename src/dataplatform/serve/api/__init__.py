"""HTTP API of the serve stage (FastAPI)."""
