"""A line of the shared commit datasets (shared by the ingest unit tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RealLine:
    """One line of a shared dataset file, as bytes, with where it came from."""

    file: str
    number: int
    raw: bytes

    @property
    def obj(self) -> dict[str, Any]:
        return json.loads(self.raw)
