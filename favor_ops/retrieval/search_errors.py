"""Typed errors of the search stage (bad queries, filters, files): one-line reasons, stage "search"."""

from __future__ import annotations

from favor_ops.errors import StageError

SEARCH_STAGE = "search"


class SearchInputError(StageError):
    """A search request is unusable: empty text, unreadable query file, bad k, unknown filter column or
    operator, malformed filter value. `uri` names what was wrong (the query, the file, the filter)."""

    stage = SEARCH_STAGE
