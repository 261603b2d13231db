"""Fixtures of the security integration tests; they live in security_world.py (importable by
the tests under a name no other test folder uses)."""

from security_world import migrated, secured

__all__ = ["migrated", "secured"]
