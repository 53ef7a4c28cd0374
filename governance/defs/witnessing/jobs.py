"""The ``witnessed_checkpoint`` job: sign the ledger's tree head and have the witnesses cosign it.

The same as ``governance audit checkpoint`` (:func:`governance.transparency.publish`), run by a
schedule in its own Dagster run, never on a decision's path. A checkpoint that fewer than the
quorum of witnesses cosigned fails the run (a red run, not a silent gap).

No ``from __future__ import annotations`` here: Dagster reads the config class from the op
function's annotations at definition time.
"""

import dagster as dg
from pydantic import Field

from governance.defs.resources import GovernanceProject
from governance.ledger import Ledger
from governance.transparency import WitnessConfig, publish
from governance.transparency.config import WITNESSES_FILE
from governance.transparency.local import tiles_dir_for


class CheckpointConfig(dg.Config):
    """How long to wait for the witnesses."""

    timeout: float = Field(default=30.0, description="Seconds to wait for all the witnesses")


@dg.op(out=dg.Out(int, description="The checkpoint's tree size"))
def publish_checkpoint(
    context: dg.OpExecutionContext, config: CheckpointConfig, project: GovernanceProject
) -> dg.Output[int]:
    """Sign a checkpoint of every record, write its tiles and gather cosignatures."""
    settings = project.settings()
    witnesses = WitnessConfig.load(settings.home / WITNESSES_FILE)
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        tiles = tiles_dir_for(settings.tiles_root, ledger.ledger_id)
        result = publish(ledger, witnesses, tiles_dir=tiles, timeout=config.timeout)
    cp = result.checkpoint
    metadata: dict[str, dg.RawMetadataValue] = {
        "size": cp.size,
        "root": cp.root.hex(),
        "timestamp": cp.timestamp,
        "cosignatures": ", ".join(result.cosignatures) or "none",
        "quorum": result.quorum,
        "tiles_written": result.tiles_written,
    }
    if not result.published:
        why = "; ".join(f"{name}: {error}" for name, error in sorted(result.errors.items()))
        raise dg.Failure(
            description=f"checkpoint of {cp.size} records NOT published: cosigned by"
            f" {len(result.cosignatures)} of {len(witnesses.witnesses)} witnesses (quorum"
            f" {result.quorum}); {why}",
            metadata=metadata,
        )
    context.log.info(
        f"checkpoint of {cp.size} records published ({', '.join(result.cosignatures)})"
    )
    return dg.Output(cp.size, metadata=metadata)


@dg.job(description="Publish a checkpoint of the decision ledger to its witnesses.")
def witnessed_checkpoint() -> None:
    """One publication round: sign a checkpoint and gather the witnesses' cosignatures."""
    publish_checkpoint()
