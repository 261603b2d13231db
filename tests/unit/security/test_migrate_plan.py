"""Migration files and the forward-only plan (pure; no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataplatform.security.migrate import MigrationError, discover_migrations, plan


def test_shipped_migrations_are_numbered_without_gaps() -> None:
    migrations = discover_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert all(len(m.checksum) == 64 for m in migrations)


def write(folder: Path, name: str, text: str = "SELECT 1;\n") -> None:
    (folder / name).write_text(text)


def test_plan_returns_pending_in_order(tmp_path: Path) -> None:
    for name in ("0002_b.sql", "0001_a.sql", "0003_c.sql", "README.md"):
        write(tmp_path, name)
    found = discover_migrations(tmp_path)
    applied = {1: ("a", found[0].checksum)}
    assert [m.name for m in plan(found, applied)] == ["b", "c"]
    assert plan(found, {m.version: (m.name, m.checksum) for m in found}) == []


def test_changed_missing_and_out_of_order_migrations_are_errors(tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql")
    write(tmp_path, "0003_c.sql")
    found = discover_migrations(tmp_path)
    with pytest.raises(MigrationError, match="changed after it was applied"):
        plan(found, {1: ("a", "0" * 64)})
    with pytest.raises(MigrationError, match="missing on disk"):
        plan(found, {1: ("a", found[0].checksum), 2: ("b", "1" * 64), 3: ("c", found[1].checksum)})
    write(tmp_path, "0002_late.sql")
    found = discover_migrations(tmp_path)
    with pytest.raises(MigrationError, match="numbered below"):
        plan(found, {1: ("a", found[0].checksum), 3: ("c", found[2].checksum)})


@pytest.mark.parametrize("name", ["1_a.sql", "0001-a.sql", "0001_A.sql"])
def test_badly_named_files_are_refused(tmp_path: Path, name: str) -> None:
    write(tmp_path, name)
    with pytest.raises(MigrationError, match="NNNN_snake_name"):
        discover_migrations(tmp_path)


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql")
    write(tmp_path, "0001_b.sql")
    with pytest.raises(MigrationError, match="also used by"):
        discover_migrations(tmp_path)
