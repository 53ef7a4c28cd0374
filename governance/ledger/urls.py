"""What a ledger URL says about the ledger's layout: ``shards=K`` (read by :func:`split_shards`
for both :func:`governance.ledger.Ledger.open` and
:func:`governance.ledger.shards.open_ledger`, so the two agree on every spelling)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from governance.ledger.errors import LedgerError

__all__ = ["MAX_SHARDS", "split_shards"]

MAX_SHARDS = 64


def split_shards(url: str) -> tuple[str, int]:
    """Split ``shards=K`` off a ledger URL; ``(url without it, K)``, K = 1 when absent."""
    head, _, tail = url.partition("?")
    query = parse_qsl(tail, keep_blank_values=True)
    given = [value for key, value in query if key == "shards"]
    if not given:
        return url, 1
    text = given[-1]
    if not text.isdigit() or not 1 <= int(text) <= MAX_SHARDS:
        raise LedgerError(f"shards must be an integer in 1..{MAX_SHARDS}, got {text!r}")
    kept = urlencode([(k, v) for k, v in query if k != "shards"])
    rest = f"{head}?{kept}" if kept else head  # the path as given (sqlite:///abs stays so)
    if int(text) > 1 and not rest.startswith(("postgresql://", "postgres://")):
        raise LedgerError("a sharded ledger needs PostgreSQL (postgresql://...?shards=K)")
    return rest, int(text)
