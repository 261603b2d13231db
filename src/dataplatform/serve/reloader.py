"""Follow the registry: load the versions behind `production` and `staging`, swap when they move.

`sync()` is one pass (also what `POST /admin/reload` runs); `Reloader.start()` runs it every
`interval_s` seconds on a daemon thread. Loading happens before the swap, so requests keep being
answered by the old version until the new one is ready; a failed load keeps the old one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dataplatform.serve.predictor import (
    ALIASES,
    LoadedModel,
    ModelSlots,
    load_model,
    resolve_alias,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadChange:
    """What one sync did to one slot: outcome is swapped, removed, unchanged or failed."""

    model: str
    alias: str
    outcome: str
    version: str | None
    previous_version: str | None = None
    error: str | None = None


Loader = Callable[["MlflowClient", str, str, str], LoadedModel]
OnChange = Callable[[ReloadChange, LoadedModel | None], None]


class Reloader:
    """Keeps `slots` in line with the registry aliases of `models`."""

    def __init__(
        self,
        client: MlflowClient,
        slots: ModelSlots,
        models: Sequence[str],
        *,
        aliases: Sequence[str] = ALIASES,
        interval_s: float = 30.0,
        loader: Loader = load_model,
        on_change: OnChange | None = None,
    ) -> None:
        self.client = client
        self.slots = slots
        self.models = list(models)
        self.aliases = list(aliases)
        self.interval_s = interval_s
        self.loader = loader
        self.on_change = on_change
        # Version each (model, alias) resolved to at the last sync (None: no such alias).
        self.targets: dict[tuple[str, str], str | None] = {}
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> list[ReloadChange]:
        """Resolve every alias now and swap the slots that moved (one sync at a time)."""
        with self._sync_lock:
            changes = []
            for name in self.models:
                for alias in self.aliases:
                    change = self._sync_slot(name, alias)
                    if change.outcome != "unchanged":
                        log.info(
                            "model %s@%s: %s -> %s (%s)", name, alias,
                            change.previous_version, change.version, change.outcome,
                        )  # fmt: skip
                    changes.append(change)
            return changes

    def _sync_slot(self, name: str, alias: str) -> ReloadChange:
        current = self.slots.get(name, alias)
        before = current.version if current else None
        try:
            target = resolve_alias(self.client, name, alias)
        except Exception as exc:  # registry down: keep serving what we have
            return self._report(ReloadChange(name, alias, "failed", before, before, _why(exc)))
        self.targets[(name, alias)] = target[0] if target else None
        if target is None:
            if current is None:
                return ReloadChange(name, alias, "unchanged", None)
            self.slots.swap(name, alias, None)
            return self._report(ReloadChange(name, alias, "removed", None, before), None)
        version, semver = target
        if current is not None and current.version == version:
            if current.semver != semver:  # semver tag added after load: refresh metadata only
                from dataclasses import replace

                refreshed = replace(current, semver=semver)
                self.slots.swap(name, alias, refreshed)
                return self._report(
                    ReloadChange(name, alias, "swapped", version, before), refreshed
                )
            return ReloadChange(name, alias, "unchanged", version, before)
        try:
            loaded = self.loader(self.client, name, version, alias)
        except Exception as exc:
            log.warning("loading %s version %s for %s failed: %s", name, version, alias, exc)
            return self._report(ReloadChange(name, alias, "failed", before, before, _why(exc)))
        self.slots.swap(name, alias, loaded)
        return self._report(ReloadChange(name, alias, "swapped", version, before), loaded)

    def _report(self, change: ReloadChange, model: LoadedModel | None = None) -> ReloadChange:
        if self.on_change is not None:
            self.on_change(change, model if change.outcome != "failed" else None)
        return change

    def start(self) -> None:
        """Poll every `interval_s` seconds on a daemon thread (no-op when the interval is 0)."""
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="model-reloader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling (waits for a sync in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sync()
            except Exception:  # the poller must survive anything
                log.exception("model reload poll failed")


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"
