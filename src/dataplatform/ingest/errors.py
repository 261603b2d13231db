"""Errors raised by the ingest stage."""

from __future__ import annotations


class SourceError(ValueError):
    """A source cannot be read: missing path, not a git repository, failed clone/fetch/log.

    Messages may quote git's stderr but never credentials embedded in URLs.
    """
