"""Reading the ledger for the mirror: the records after a cursor, paged by time."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from governance.ledger import Ledger, Record
from governance.ledger.paging import PAGE, iter_find

log = logging.getLogger(__name__)

# -- reading the ledger ----------------------------------------------------------------------


def scan(
    ledger: Ledger,
    *,
    after_seq: int = -1,
    after_ts: str | None = None,
    until_seq: int | None = None,
    page_size: int | None = None,
    **filters: Any,
) -> Iterator[Record]:
    """Records matching ``filters`` (as :meth:`Ledger.find`) with ``after_seq < seq <= until_seq``.

    Pages by time (:func:`governance.ledger.paging.iter_find`). ``after_ts`` must be the
    timestamp of the record at ``after_seq`` (or earlier).
    """
    records = iter_find(ledger, page_size=page_size or PAGE, since=after_ts, **filters)
    for record in records:
        if until_seq is not None and record.seq > until_seq:
            return
        if record.seq > after_seq:
            yield record
