"""The README written into each audit bundle: how to check it by hand."""

from __future__ import annotations

from typing import Any

__all__ = ["bundle_readme"]

_TEMPLATE = """# Audit bundle of ledger {ledger_id}

This folder holds everything needed to check, without the operator's systems or secrets, that
records 0..{last} of the decision ledger `{origin}` are exactly the records the operator
committed to, and that independent witnesses saw the same history.

    governance audit verify --bundle THIS_FOLDER   # exit 0 verified, 1 tampered, 2 cannot check

or by hand, with any SHA-256 and Ed25519 implementation:

1. **Keys.** `keys/log.vkey` is the log's verifier key (C2SP signed-note format:
   `<name>+<key id>+base64(0x01 || Ed25519 public key)`; `keys/checkpoint.pub` is the same key as
   PEM). `witnesses.json` lists the witnesses' keys and the quorum. Compare them with the keys
   the operator and the witnesses published elsewhere: trust nothing in this folder that you
   have not compared.
2. **Records.** Line *i* of `records.jsonl` (without its newline) is record *i*, a JSON object
   with `seq` = *i*. Its leaf hash is `SHA-256(0x00 || line bytes)`. Each record's `prev` is the
   lowercase hex leaf hash of the line before (64 zeros for line 0). Record format
   `{record_format}`: `idx` holds the values the database indexes (subject key, model name and
   version, referenced decision), so an edited index is an edited record.
3. **Tree.** The RFC 9162 Merkle tree hash of the {size} leaf hashes (interior node:
   `SHA-256(0x01 || left || right)`, split at the largest power of two below the size) must equal
   the root of the newest checkpoint. `tiles/` holds the same tree as C2SP tlog-tiles: level-0
   tiles are the leaf hashes, 256 per file, so a changed record is found by comparing them.
4. **Checkpoints.** Each file in `cosigned/` is a C2SP signed note: lines `origin`, `size`,
   `base64(root)`, `timestamp ...`, a blank line, then signature lines
   `— <key name> base64(4-byte key id || signature)`. The log's line (name `{origin}`) is an
   Ed25519 signature of the text above the blank line:

       openssl pkeyutl -verify -pubin -inkey keys/checkpoint.pub -rawin -in text -sigfile sig

   A witness's line is a C2SP tlog-cosignature: `8-byte big-endian time t || Ed25519 signature`
   of `"cosignature/v1\\ntime <t>\\n" || text`. A checkpoint is *published* when `quorum`
   witnesses listed in `witnesses.json` cosigned it. `checkpoints/*.json` are the log's signed
   tree heads in JSON (`root` and `signature` in lowercase hex; with no witnesses configured,
   `cosigned/` is empty and these are what to check): `signature` is the log key's Ed25519
   signature of the same text, `<origin>\\n<size>\\n<base64(root)>\\ntimestamp <timestamp>\\n`.
5. **Witnesses now.** Ask each witness for the latest checkpoint it cosigned,
   `GET <witness url>/<hex SHA-256 of the origin>/checkpoint`. A witness cosigns a checkpoint
   only if it extends the one it cosigned before (RFC 9162 consistency proof), so if the
   ledger's tree of that size has another root, or the ledger is shorter, history was rewritten
   or truncated after the witness saw it.

Contents: {size} records (`records_sha256` {records_sha256}: the SHA-256 of `records.jsonl`, to
check a copy with `sha256sum`; it is unsigned, and steps 2 to 4 are what prove the records),
canonical JSON `{canonical}`, created {created}.
"""


_SHARDED = """
## A sharded ledger: {shards} chains

This ledger is {shards} hash chains: this folder holds the control shard (shard 0), and
`shards/<i>/` holds shard *i* the same way (its own records, tree, checkpoints and README).
The control shard's `shard_heads` records (`"type":"shard_heads"`) each hold every other
shard's signed checkpoint, and the control shard's checkpoints, which the witnesses cosign,
cover those records. So check this folder first, then each shard's records against its own
checkpoints *and* against every checkpoint the control shard's records hold for it: a shard
whose tree of that size has another root was rewritten after the control shard committed to it.
"""

_SHARD = """
## Shard {shard} of ledger {shard_of}

This folder is one chain of a sharded ledger. Its witnesses are the control shard's: the
control shard's `shard_heads` records (in the bundle's top folder) hold this shard's signed
checkpoints, and those are the ones to check it against (step 3), besides its own.
"""


def bundle_readme(doc: dict[str, Any]) -> str:
    """Return the README of a bundle described by its ``ledger.json`` document."""
    text = _TEMPLATE.format(last=max(doc["size"] - 1, 0), **doc)
    if doc.get("shards", 1) > 1:
        text += _SHARDED.format(**doc)
    if "shard" in doc:
        text += _SHARD.format(**doc)
    return text
