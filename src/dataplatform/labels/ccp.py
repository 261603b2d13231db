"""Corrective commit probability (CCP) per repository and month, read from the dbt view.

`analytics.repository_monthly_ccp` (dbt/models/labels/repository_monthly_ccp.sql) joins the
latest production predictions of `corrective-classifier` to the non-merge commits of each
repository. This module only reads it, for the summary at the end of `run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataplatform.adapters.warehouse import Warehouse

CCP_VIEW = "analytics.repository_monthly_ccp"
CCP_COLUMNS: tuple[str, ...] = (
    "repo",
    "month",
    "commit_count",
    "scored_commit_count",
    "corrective_commit_count",
    "ccp",
    "mean_corrective_probability",
    "model_version",
)


class CcpUnavailable(RuntimeError):
    """The CCP view does not exist: dbt has not built the labels models on this warehouse."""


@dataclass(frozen=True, slots=True)
class RepositoryMonthCcp:
    """CCP of one repository in one calendar month (UTC, by authored_at)."""

    repo: str
    month: date  # first day of the month
    commit_count: int  # non-merge commits authored in the month
    scored_commit_count: int  # of those, scored by a production corrective-classifier
    corrective_commit_count: int  # of those, predicted corrective
    ccp: float | None  # corrective / scored (fraction 0..1); None when nothing was scored
    mean_corrective_probability: float | None  # mean predicted probability of scored commits
    model_version: int | None  # newest production version among the predictions


def repository_monthly_ccp(
    warehouse: Warehouse,
    repos: Sequence[str] | None = None,
    *,
    scored_only: bool = True,
) -> list[RepositoryMonthCcp]:
    """CCP rows of `repos` (all repositories when None), ordered by repo and month.

    With `scored_only` (default), months without any scored commit are left out, so the result
    is empty until a production corrective model has batch-scored the commits.
    Raises `CcpUnavailable` when the dbt view is missing.
    """
    if not _view_exists(warehouse):
        raise CcpUnavailable(f"{CCP_VIEW} does not exist: run the transform stage (dbt) first")
    if repos is not None and not repos:
        return []
    where: list[str] = []
    params: list[object] = []
    if repos is not None:
        where.append(f"repo IN ({', '.join('?' for _ in repos)})")
        params.extend(repos)
    if scored_only:
        where.append("scored_commit_count > 0")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    frame = warehouse.query_df(
        f"SELECT {', '.join(CCP_COLUMNS)} FROM {CCP_VIEW}{clause} ORDER BY repo, month", params
    )
    return [
        RepositoryMonthCcp(
            repo=str(r.repo),
            month=_as_date(r.month),
            commit_count=int(r.commit_count),
            scored_commit_count=int(r.scored_commit_count),
            corrective_commit_count=int(r.corrective_commit_count),
            ccp=_float_or_none(r.ccp),
            mean_corrective_probability=_float_or_none(r.mean_corrective_probability),
            model_version=None if _is_null(r.model_version) else int(r.model_version),
        )
        for r in frame.itertuples(index=False)
    ]


def _view_exists(warehouse: Warehouse) -> bool:
    schema, name = CCP_VIEW.split(".")
    found = warehouse.query_df(
        "SELECT count(*) AS n FROM information_schema.tables "
        "WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    )
    return int(found.iloc[0, 0]) > 0


def _is_null(value: object) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _float_or_none(value: object) -> float | None:
    return None if _is_null(value) else float(value)  # type: ignore[arg-type]


def _as_date(value: object) -> date:
    # DuckDB/PostgreSQL give `date`; pandas may turn it into a Timestamp (a datetime).
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
