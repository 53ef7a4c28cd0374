"""Transparency for the decision ledger: witnessed checkpoints, audit bundles, key-free checks.

The ledger (:mod:`governance.ledger`) signs checkpoints; this package publishes them to
independent witnesses (:mod:`governance.witness`), writes audit bundles, and verifies a ledger
or a bundle with public material only.

Public API::

    from governance.transparency import (
        WitnessConfig, publish, write_bundle, verify_bundle, verify_ledger,
    )

    config = WitnessConfig.load(home / "witnesses.json")
    publication = publish(ledger, config, tiles_dir=tiles)      # sign, tiles, cosignatures
    report = verify_ledger(url, home)                            # Report(ok, code, first_bad..)
    write_bundle(out, store=..., meta=..., public_key=..., folder=..., config=..., tiles_dir=...)
    report = verify_bundle(out)                                  # no state directory needed
    status = WitnessMonitor.for_ledger(ledger).status(newest)    # read-only, for monitoring
"""

from governance.transparency.bundle import (
    BUNDLE_FORMAT,
    BundleSummary,
    ShardSource,
    verify_bundle,
    write_bundle,
)
from governance.transparency.config import WitnessConfig, WitnessEntry
from governance.transparency.local import verify_ledger
from governance.transparency.publish import Publication, publish
from governance.transparency.sources import CannotCheck
from governance.transparency.status import WitnessMonitor, WitnessState, WitnessStatus
from governance.transparency.verify import (
    EXIT_CANNOT_CHECK,
    EXIT_INTEGRITY,
    EXIT_OK,
    NoteSource,
    Report,
)

__all__ = [
    "BUNDLE_FORMAT",
    "EXIT_CANNOT_CHECK",
    "EXIT_INTEGRITY",
    "EXIT_OK",
    "BundleSummary",
    "CannotCheck",
    "NoteSource",
    "Publication",
    "Report",
    "ShardSource",
    "WitnessConfig",
    "WitnessEntry",
    "WitnessMonitor",
    "WitnessState",
    "WitnessStatus",
    "publish",
    "verify_bundle",
    "verify_ledger",
    "write_bundle",
]
