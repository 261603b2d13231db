"""Atomic swap and in-flight requests; the scorer batches and isolates bad requests."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dataplatform.serve.featurize import FEATURE_COLUMNS
from dataplatform.serve.predictor import LoadedModel, ModelSlots, Scorer


class Constant:
    """Estimator answering one fixed probability; optionally blocks until released."""

    classes_ = np.array([0, 1])

    def __init__(self, p1: float, gate: threading.Event | None = None) -> None:
        self.p1, self.gate, self.calls = p1, gate, 0
        self.entered = threading.Event()

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        return np.tile([1 - self.p1, self.p1], (len(rows), 1))


def _model(version: str, estimator: Any) -> LoadedModel:
    return LoadedModel(
        name="m", version=version, alias="production", semver=None, run_id=None,
        loaded_at=datetime.now(UTC), input_columns=tuple(FEATURE_COLUMNS), estimator=estimator,
    )  # fmt: skip


def _commit(i: int = 0, **overrides: Any) -> dict[str, Any]:
    return {
        "repo": "a/b", "commit_sha": f"{i:040x}", "message": "Merge x", "author_name": "n",
        "authored_at": datetime(2020, 1, 1, tzinfo=UTC), "author_utc_offset_minutes": 60,
        "committed_at": datetime(2020, 1, 1, tzinfo=UTC), "files_changed": 0,
        "lines_added": 0, "lines_deleted": 0, **overrides,
    }  # fmt: skip


def test_swap_replaces_the_slot_and_returns_the_previous_model() -> None:
    slots = ModelSlots()
    old, new = _model("1", Constant(0.9)), _model("2", Constant(0.2))
    assert slots.swap("m", "production", old) is None
    held = slots.get("m")
    assert slots.swap("m", "production", new) is old
    assert held is old
    assert slots.get("m") is new
    assert slots.swap("m", "production", None) is new
    assert slots.get("m") is None


def test_in_flight_request_finishes_on_the_model_it_started_with() -> None:
    slots, scorer = ModelSlots(), Scorer()
    slots.swap("m", "production", _model("1", Constant(0.9)))
    scorer.start()

    async def scenario() -> tuple[Any, Any]:
        started = slots.get("m")
        assert started is not None
        first = asyncio.ensure_future(scorer.score(started, commits=[_commit()]))
        await asyncio.sleep(0)  # the request is queued; its batch runs on the next loop turn
        assert started.estimator.calls == 0
        slots.swap("m", "production", _model("2", Constant(0.2)))  # mid-request swap
        after = slots.get("m")
        assert after is not None
        return await first, await scorer.score(after, commits=[_commit()])

    try:
        during, after = asyncio.run(scenario())
    finally:
        scorer.stop()
    assert during.model.version == "1"
    assert during.probabilities[0] == pytest.approx(0.9)
    assert after.model.version == "2"
    assert after.classes[0] == 0


def test_concurrent_requests_are_scored_in_one_batch() -> None:
    estimator = Constant(0.8)
    model, scorer = _model("1", estimator), Scorer(max_batch_rows=4)
    scorer.start()

    async def scenario() -> list[Any]:
        calls = [scorer.score(model, commits=[_commit(i)]) for i in range(6)]
        return list(await asyncio.gather(*calls))

    results = asyncio.run(scenario())
    assert [r.rows.shas[0] for r in results] == [f"{i:040x}" for i in range(6)]
    assert all(r.classes[0] == 1 and r.probabilities[0] == pytest.approx(0.8) for r in results)
    assert estimator.calls == 2  # 6 one-row requests, at most 4 rows per batch


def test_a_scorer_outlives_its_event_loop() -> None:
    model, scorer = _model("1", Constant(0.3)), Scorer()
    for _ in range(2):  # a new loop each time (tests, restarts): the batch still runs
        assert asyncio.run(scorer.score(model, commits=[_commit()])).classes[0] == 0


def test_one_bad_request_does_not_fail_its_batch_neighbours() -> None:
    estimator = Constant(0.7)
    model, scorer = _model("1", estimator), Scorer()
    boxes: list[Any] = [[], [], []]
    from dataplatform.serve.predictor import _Job

    jobs = [
        _Job(model, [_commit(1)], None, None, None, boxes[0].append),
        _Job(model, [_commit(2, files_changed=None)], None, None, None, boxes[1].append),
        _Job(model, [_commit(3), _commit(4)], None, None, None, boxes[2].append),
    ]
    scorer.run_batch(jobs)
    assert isinstance(boxes[1][0], ValueError)
    assert len(boxes[0][0].classes) == 1
    assert len(boxes[2][0].classes) == 2
    assert estimator.calls == 1  # the two good requests were scored together


def test_score_sync_matches_predict_proba_on_the_same_features() -> None:
    estimator = Constant(0.25)
    scored = Scorer().score_sync(_model("1", estimator), commits=[_commit(), _commit(1)])
    assert list(scored.classes) == [0, 0]
    assert list(scored.probabilities) == [0.75, 0.75]
    assert list(scored.features[FEATURE_COLUMNS].columns) == FEATURE_COLUMNS
