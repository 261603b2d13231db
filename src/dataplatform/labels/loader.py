"""Load a labels folder into `raw.commit_labels`: one transaction per file, idempotent.

A file whose content (sha256) is already loaded is skipped; a changed file replaces its rows
(delete + insert of that `source_file` in one transaction), so re-runs never duplicate labels and
an interrupted run leaves every file either fully old or fully new.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataplatform.labels.sources import (
    LABEL_FILES,
    ROW_COLUMNS,
    LabelsError,
    ParsedLabels,
    RejectedRow,
    parse_label_file,
)

if TYPE_CHECKING:
    import pandas as pd

    from dataplatform.adapters.warehouse import Warehouse

LABELS_TABLE = "raw.commit_labels"
_STAGE = "_stage_commit_labels"
_INSERT_COLUMNS = (*ROW_COLUMNS, "loaded_at")


@dataclass(frozen=True, slots=True)
class FileLoad:
    """What loading one file did."""

    source_file: str
    dataset: str
    labelling_protocol: str
    rows: int  # labelled rows in the file (now in the table)
    unlabelled: int  # rows without any label, not loaded
    unchanged: bool  # same content already loaded: nothing written


@dataclass(frozen=True, slots=True)
class LabelLoadResult:
    """What `load_labels` did, per file, with every rejected row and the reason."""

    labels_dir: Path
    files: list[FileLoad]
    rejected: list[RejectedRow] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        """Labelled rows of all files (loaded now or before)."""
        return sum(f.rows for f in self.files)

    @property
    def rows_written(self) -> int:
        """Rows written by this run (0 on an unchanged re-run)."""
        return sum(f.rows for f in self.files if not f.unchanged)


def load_labels(
    warehouse: Warehouse, labels_dir: Path, *, files: list[str] | None = None
) -> LabelLoadResult:
    """Load the catalogue files found in `labels_dir` (or only `files`) into raw.commit_labels.

    Creates the raw schema if missing. Raises `LabelsError` when none of the files is present
    or a named file is unknown/missing.
    """
    started = time.perf_counter()
    warehouse.ensure_raw_schema()
    names = files if files is not None else sorted(LABEL_FILES)
    unknown = [n for n in names if n not in LABEL_FILES]
    if unknown:
        raise LabelsError(f"unknown label files {unknown}; known: {sorted(LABEL_FILES)}")
    present = [n for n in names if (labels_dir / n).is_file()]
    if files is not None and len(present) < len(names):
        missing = sorted(set(names) - set(present))
        raise LabelsError(f"label files missing from {labels_dir}: {missing}")
    if not present:
        raise LabelsError(f"no known label file in {labels_dir}; expected {sorted(LABEL_FILES)}")
    loaded = _loaded_checksums(warehouse)
    results: list[FileLoad] = []
    rejected: list[RejectedRow] = []
    for name in present:
        parsed = parse_label_file(labels_dir / name)
        rejected.extend(parsed.rejected)
        unchanged = loaded.get(name) == (parsed.file_sha256, len(parsed.rows))
        if not unchanged:
            _replace_file(warehouse, parsed)
        results.append(
            FileLoad(
                source_file=name,
                dataset=parsed.file.dataset,
                labelling_protocol=parsed.file.protocol,
                rows=len(parsed.rows),
                unlabelled=parsed.unlabelled,
                unchanged=unchanged,
            )
        )
    return LabelLoadResult(labels_dir, results, rejected, time.perf_counter() - started)


def _loaded_checksums(warehouse: Warehouse) -> dict[str, tuple[str, int]]:
    frame = warehouse.query_df(
        f"SELECT source_file, min(file_sha256) AS sha, max(file_sha256) AS sha_max, "
        f"count(*) AS n FROM {LABELS_TABLE} GROUP BY source_file"
    )
    return {
        str(r.source_file): (str(r.sha), int(r.n))
        for r in frame.itertuples()
        if r.sha == r.sha_max  # a mixed file (should not happen) is always reloaded
    }


def _replace_file(warehouse: Warehouse, parsed: ParsedLabels) -> None:
    frame = parsed.rows.copy()
    frame["loaded_at"] = datetime.now(UTC)
    frame = frame.loc[:, list(_INSERT_COLUMNS)]
    if warehouse.backend == "duckdb":
        _replace_duckdb(_connection(warehouse), parsed.file.name, frame)
    elif warehouse.backend == "postgres":
        _replace_postgres(_connection(warehouse), parsed.file.name, frame)
    else:
        raise LabelsError(f"unsupported warehouse backend {warehouse.backend!r}")


def _connection(warehouse: Warehouse) -> Any:
    connection = getattr(warehouse, "connection", None)
    if connection is None:
        raise LabelsError(f"{type(warehouse).__name__} exposes no .connection")
    return connection


def _replace_duckdb(con: Any, source_file: str, frame: pd.DataFrame) -> None:
    cols = ", ".join(_INSERT_COLUMNS)
    con.begin()
    try:
        con.execute(f"DELETE FROM {LABELS_TABLE} WHERE source_file = ?", [source_file])
        con.register(_STAGE, frame)
        con.execute(f"INSERT INTO {LABELS_TABLE} ({cols}) SELECT {cols} FROM {_STAGE}")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.unregister(_STAGE)


def _replace_postgres(conn: Any, source_file: str, frame: pd.DataFrame) -> None:
    cols = ", ".join(_INSERT_COLUMNS)
    placeholders = ", ".join(["%s"] * len(_INSERT_COLUMNS))
    records = [
        tuple(None if _missing(v) else _plain(v) for v in row)
        for row in frame.itertuples(index=False, name=None)
    ]
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(f"DELETE FROM {LABELS_TABLE} WHERE source_file = %s", [source_file])
        cur.executemany(f"INSERT INTO {LABELS_TABLE} ({cols}) VALUES ({placeholders})", records)


def _missing(value: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    # numpy scalars -> Python scalars (psycopg adapts only the latter)
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, datetime) else value
