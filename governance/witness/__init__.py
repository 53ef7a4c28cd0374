"""An independent witness for transparency logs, and the client the ledger uses to reach one.

A witness (C2SP tlog-witness, tlog-cosignature) keeps, for each log it is configured to watch,
the latest checkpoint it cosigned, and cosigns a new checkpoint only with a consistency proof
that it extends that one. Run by someone other than the ledger's operator, it is what makes a
rewritten, truncated or forked ledger detectable even by a verifier who holds nothing but
public keys.

Public API::

    from governance.witness import WitnessHome, Witness, WitnessServer, WitnessClient, gather

    home = WitnessHome.init(path, name="witness.example/w1")   # key + storage
    home.add_log(ledger_vkey)                                  # explicit, never on first use
    WitnessServer(("127.0.0.1", 8099), Witness(home)).serve_forever()

    client = WitnessClient("http://127.0.0.1:8099", home.vkey)
    result = gather([client], note, size, prove)               # cosignatures by witness name
"""

from governance.witness.client import (
    GatherResult,
    WitnessClient,
    WitnessConflict,
    WitnessError,
    WitnessRefused,
    WitnessUnavailable,
    gather,
    submit,
)
from governance.witness.server import WitnessServer, serve
from governance.witness.store import Evidence, WitnessHome, origin_hash
from governance.witness.witness import Reply, Witness

__all__ = [
    "Evidence",
    "GatherResult",
    "Reply",
    "Witness",
    "WitnessClient",
    "WitnessConflict",
    "WitnessError",
    "WitnessHome",
    "WitnessRefused",
    "WitnessServer",
    "WitnessUnavailable",
    "gather",
    "origin_hash",
    "serve",
    "submit",
]
