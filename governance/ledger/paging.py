"""Every record matching a query, page by page: the one paging loop over :meth:`Ledger.find`.

Pages by time: each page starts at the timestamp of the last record of the one before (the
store turns ``since`` into a seq range by binary search), so a long scan never re-reads an ever
larger ``offset``; records sharing one timestamp (a batch) are paged by offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governance.ledger.ledger import Ledger
    from governance.ledger.records import Record

PAGE = 10_000  # records per query: the largest page Ledger.find serves


def iter_find(ledger: Ledger, *, page_size: int = PAGE, **query: Any) -> Iterator[Record]:
    """Yield every record matching ``query`` (the filters of :meth:`Ledger.find`), in seq order.

    Parameters
    ----------
    ledger : Ledger
        The ledger to read.
    page_size : int
        Records per :meth:`Ledger.find` call (1..10,000).
    **query
        ``subject_id``, ``model``, ``version``, ``since``, ``until``, ``type``, ``ref`` ...
        (not ``limit`` / ``offset``: paging is this function's job).
    """
    since = query.pop("since", None)
    offset = 0
    while True:
        page = ledger.find(since=since, limit=page_size, offset=offset, **query)
        yield from page
        if len(page) < page_size:
            return
        last_ts = page[-1].ts
        if since == last_ts:
            offset += len(page)
        else:
            since = last_ts
            offset = sum(1 for r in page if r.ts == last_ts)
