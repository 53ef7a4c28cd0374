"""Evidence packs: everything an auditor needs about one model version, checkable offline.

``governance evidence MODEL VERSION OUT.zip`` (:func:`build_evidence`) writes a zip holding::

    manifest.json                   what is in the pack, with the SHA-256 of every other file
    README.txt                      what the pack is and how to verify it
    model_card/model_card.{md,html,json}
    lineage.json                    the version's lineage, exactly as logged with its run
    reports/validation.json         the Great Expectations validation result
    reports/fairness.json           fairness report and gate verdict
    metrics/evaluation.json         evaluation metrics with confidence intervals
    metrics/fairness.json           fairness metrics
    comparison.json                 champion/challenger comparison (only if the run has one;
                                    otherwise the manifest says it is absent and why)
    registry/version.json           the version's registry entry (tags, aliases) when packed
    provenance/prov.json            the version's W3C PROV document (PROV-JSON)
    provenance/model.sig            the model's OpenSSF model-signing signature, as stored
    provenance/provenance.intoto.jsonl  its SLSA provenance statement (DSSE envelope), as stored
    provenance/model-signing.pub    the public key they were checked with; the manifest's
                                    subject.signature says whether they verified when packed
    ledger/promotions.json          every promotion / refusal / rollback / aliasing registration
                                    of the model, from the ledger
    ledger/checkpoint.json          the latest signed checkpoint (Ed25519, RFC 9162 tree head)
    ledger/checkpoint.pub           the ledger's checkpoint public key (PEM)
    ledger/proofs/<record id>.json  inclusion proofs under that checkpoint: a seeded sample of up
                                    to 20 of the version's decisions, every promotion event
                                    listed, and the pack's anchor record

The anchor makes the whole pack tamper-evident, not just internally consistent: before signing
the checkpoint, the builder appends an ``evidence`` event to the ledger whose body carries the
SHA-256 of the manifest's ``format``, ``subject`` and ``content`` sections (the hashes of every
document above). The checkpoint covers that record and the pack proves its inclusion, so
changing any document *and* its hash in the manifest is still detected, unless the checkpoint
key is compromised. It also leaves a ledger trace of who packed what, when.

``governance evidence verify OUT.zip`` (:func:`verify_evidence`) needs only the zip: it checks
the file list and every SHA-256 against the manifest, the checkpoint's signature against the
included public key (or a trusted copy given with ``--public-key``), every inclusion proof
against the checkpoint's root, that each proven record is what the manifest says (a decision of
this version, a promotion event of this model, the anchor) and that the anchor's digest matches
the manifest. It stops at the first problem and names it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import struct
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.core.files import new_file
from governance.core.lineage import lineage_id
from governance.ledger import (
    Checkpoint,
    Ledger,
    Record,
    leaf_hash,
    register_event_type,
    utc_now,
    verify_checkpoint,
    verify_inclusion,
)
from governance.ledger.canonical import canonical_json_v1
from governance.ledger.checkpoint import key_id_for
from governance.ledger.paging import iter_find
from governance.lifecycle.promotion import events
from governance.lifecycle.provenance import evidence_files
from governance.registry import mlflow as registry
from governance.settings import Settings

FORMAT = "governance.evidence/1"
MANIFEST = "manifest.json"
EVENT_TYPE = "evidence"
DEFAULT_SAMPLE = 20
DEFAULT_SEED = 0
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member times: same content, same bytes

# pack path -> run artifact path
REQUIRED_ARTIFACTS: dict[str, str] = {
    "model_card/model_card.md": "model_card/model_card.md",
    "model_card/model_card.html": "model_card/model_card.html",
    "model_card/model_card.json": "model_card/model_card.json",
    "lineage.json": "lineage.json",
    "reports/validation.json": "reports/validation.json",
    "reports/fairness.json": "reports/fairness.json",
    "metrics/evaluation.json": "metrics/evaluation.json",
    "metrics/fairness.json": "metrics/fairness.json",
}
OPTIONAL_ARTIFACTS: dict[str, str] = {"comparison.json": "comparison.json"}
CHECKPOINT_FILE = "ledger/checkpoint.json"
PUBLIC_KEY_FILE = "ledger/checkpoint.pub"
PROOF_DIR = "ledger/proofs/"
PROMOTIONS_FILE = "ledger/promotions.json"

ERR_MISSING_ARTIFACT = (
    "cannot build the evidence pack: MLflow run {run_id} of {name} version {version} has no"
    " artifact {path}"
)
ERR_KEY_MISMATCH = "{path} does not hold this ledger's checkpoint public key"
ERR_SHARDED = (
    "evidence packs prove records under one chain's checkpoint, and this ledger is sharded: not"
    " supported yet (`governance audit bundle` covers every shard, for an outside verifier)"
)
ERR_PROOFS_MOVING = "checkpoints kept changing while proofs were gathered; try again"
ERR_NOT_A_FILE = "cannot write the evidence pack to {path}: it exists and is not a regular file"
ERR_CANNOT_WRITE = "cannot write the evidence pack to {path}: {error}"
ABSENT_COMPARISON = "the training run logged no champion/challenger comparison (comparison.json)"

register_event_type(
    EVENT_TYPE, "an evidence pack of a model version was built (body.digest anchors its manifest)"
)

README = """\
Evidence pack: {name} version {version}
Built {created} from ledger {origin}.

manifest.json lists every file in this pack with its SHA-256. The ledger/ folder holds the
latest signed checkpoint of the decision ledger, its public key, and RFC 9162 inclusion proofs
of sampled decisions of this version, of the model's promotion events, and of the record that
anchors this pack's manifest in the ledger.

Verify offline (no database, no registry needed):

    governance evidence verify {filename}
    governance evidence verify {filename} --public-key TRUSTED_checkpoint.pub

Compare the checkpoint key id ({key_id}) with the one your organisation published.
"""


class EvidenceError(LookupError):
    """The pack cannot be built (unknown version, missing artifact ...)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def _entry(data: bytes) -> dict[str, Any]:
    return {"sha256": _sha256(data), "bytes": len(data)}


def anchor_digest(manifest: Mapping[str, Any]) -> str:
    """The digest the anchor record carries: SHA-256 of ``format``, ``subject``, ``content``.

    Parameters
    ----------
    manifest
        The manifest (only those three members are read).

    Returns
    -------
    str
        ``"sha256:<hex>"`` over their canonical JSON (format 1, for good: anchors already in
        ledgers carry such digests).
    """
    core = {k: manifest[k] for k in ("format", "subject", "content")}
    return "sha256:" + _sha256(canonical_json_v1(core))


# -- building ------------------------------------------------------------------------------


def _decision_ids(ledger: Ledger, model: str, version: str) -> list[str]:
    return [r.id for r in iter_find(ledger, model=model, version=version, type="decision")]


def _run_artifacts(client: Any, run_id: str, wanted: Mapping[str, str]) -> dict[str, bytes | None]:
    """Download each wanted artifact; ``None`` for those the run does not have."""
    from mlflow.exceptions import MlflowException

    found: dict[str, bytes | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pack_path, artifact in wanted.items():
            folder = artifact.rpartition("/")[0] or None
            try:
                listed = {a.path for a in client.list_artifacts(run_id, folder) if not a.is_dir}
            except (MlflowException, OSError):
                listed = set()
            if artifact not in listed:
                found[pack_path] = None
                continue
            local = client.download_artifacts(run_id, artifact, tmp)
            found[pack_path] = Path(local).read_bytes()
    return found


def _public_key_pem(ledger: Ledger) -> bytes:
    path = ledger.home / "keys" / "checkpoint.pub"
    pem = path.read_bytes()
    key = serialization.load_pem_public_key(pem)
    ours = ledger.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    if not isinstance(key, Ed25519PublicKey) or (
        key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) != ours
    ):
        raise EvidenceError(ERR_KEY_MISMATCH.format(path=path))
    return pem


def _proofs(ledger: Ledger, ids: list[str]) -> tuple[Checkpoint, dict[str, dict[str, Any]]]:
    """Sign a checkpoint and prove every record under it (retrying if another one appears)."""
    cp = ledger.checkpoint()
    for _ in range(5):
        proofs = {rid: ledger.inclusion_proof(rid) for rid in ids}
        used = {json.dumps(p["checkpoint"], sort_keys=True) for p in proofs.values()}
        if used <= {json.dumps(cp.to_json(), sort_keys=True)}:
            return cp, proofs
        newest = max(
            (Checkpoint.from_json(p["checkpoint"]) for p in proofs.values()),
            key=lambda c: (c.size, c.timestamp),
        )
        cp = newest if newest.size >= cp.size else ledger.checkpoint()
    raise EvidenceError(ERR_PROOFS_MOVING)


@contextlib.contextmanager
def _prepared(out: Path) -> Iterator[Path]:
    """An empty temporary file next to ``out``, made before anything is recorded; removed on
    the way out unless the zip was renamed into place.

    Raises
    ------
    EvidenceError
        If ``out`` cannot be written (a folder, a parent that is a file or read-only ...).
    """
    try:
        if out.exists() and not out.is_file():
            raise EvidenceError(ERR_NOT_A_FILE.format(path=out))
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_file(out.parent, f".{out.name}.", ".tmp")
    except OSError as exc:
        raise EvidenceError(ERR_CANNOT_WRITE.format(path=out, error=exc)) from None
    try:
        yield tmp
    finally:
        with contextlib.suppress(OSError):  # already renamed into place
            tmp.unlink()


def _write_zip(tmp: Path, out: Path, files: Mapping[str, bytes]) -> None:
    """Write the zip to ``tmp`` (next to ``out``) and rename it into place (atomic on one
    filesystem)."""
    with tmp.open("wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(files, key=lambda n: (n != MANIFEST, n)):
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, files[name])
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(out)


def _registered(
    settings: Settings, model: str, version: str
) -> tuple[dict[str, Any], dict[str, bytes | None]]:
    """A version's registry entry and its run's artifacts (the required ones must be there)."""
    with registry.tracking(settings) as client:
        try:
            mv = registry.version_info(client, model, version)
        except registry.RegistryLookupError as exc:
            raise EvidenceError(str(exc)) from None
        run_id = str(mv.run_id)
        artifacts = _run_artifacts(client, run_id, {**REQUIRED_ARTIFACTS, **OPTIONAL_ARTIFACTS})
        version_doc = {
            "name": model,
            "version": version,
            "run_id": run_id,
            "source": mv.source,
            "status": mv.status,
            "creation_timestamp": mv.creation_timestamp,
            "aliases": sorted(mv.aliases),
            "tags": dict(mv.tags),
        }
    for pack_path in REQUIRED_ARTIFACTS:
        if artifacts[pack_path] is None:
            raise EvidenceError(
                ERR_MISSING_ARTIFACT.format(
                    run_id=run_id, name=model, version=version, path=REQUIRED_ARTIFACTS[pack_path]
                )
            )
    return version_doc, artifacts


def build_evidence(
    settings: Settings,
    ledger: Ledger,
    model: str,
    version: str | int,
    out: Path,
    *,
    sample: int = DEFAULT_SAMPLE,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Write the evidence pack of a model version to ``out`` (a zip, written atomically).

    Appends one ``evidence`` record (the anchor) and signs a checkpoint.

    Parameters
    ----------
    settings
        Where the registry lives.
    ledger
        The decision ledger (written to: the anchor record and a checkpoint).
    model, version
        The registered model version.
    out
        The zip file to write.
    sample
        How many of the version's decisions to prove (at most; seeded random sample).
    seed
        Seed of the sample (recorded in the manifest).

    Returns
    -------
    dict
        ``path``, ``files``, ``decisions`` (``population``, ``sampled``, ``seed``),
        ``promotions``, ``absent``, ``checkpoint`` (size, root, key id), ``anchor`` (record
        id, digest).

    Raises
    ------
    EvidenceError
        If the version is not registered or its run lacks a required artifact.
    """
    version = str(version)
    if sample < 0:
        raise ValueError("sample must be >= 0")
    if not isinstance(ledger, Ledger):  # a ShardedLedger: K chains, K checkpoints
        raise EvidenceError(ERR_SHARDED)
    version_doc, artifacts = _registered(settings, model, version)
    run_id = version_doc["run_id"]
    content: dict[str, bytes] = {k: v for k, v in artifacts.items() if v is not None}
    absent = {"comparison.json": ABSENT_COMPARISON} if artifacts["comparison.json"] is None else {}
    lineage = json.loads(content["lineage.json"])
    history = events(ledger, model, alias=None)
    population = _decision_ids(ledger, model, version)
    chosen = set(random.Random(seed).sample(population, min(sample, len(population))))
    sampled = [rid for rid in population if rid in chosen]  # ledger order
    created = utc_now()
    key_pem = _public_key_pem(ledger)
    content["registry/version.json"] = _json_bytes(version_doc)
    provenance, signature_check = evidence_files(settings, ledger, model, version)
    content.update(provenance)
    content[PROMOTIONS_FILE] = _json_bytes(history)
    key_id = key_id_for(ledger.origin, ledger.public_key)
    content["README.txt"] = README.format(
        name=model,
        version=version,
        created=created,
        origin=ledger.origin,
        filename=out.name,
        key_id=key_id,
    ).encode()
    subject = {
        "model": model,
        "version": version,
        "lineage_id": lineage_id(lineage),
        "mlflow_run_id": run_id,
        "created": created,
        "ledger_origin": ledger.origin,
        "decisions": {
            "population": len(population),
            "seed": seed,
            "requested": sample,
            "sample": sampled,
        },
        "promotions": [e["event_id"] for e in history],
        "absent": absent,
        "signature": signature_check,
    }
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "subject": subject,
        "content": {path: _entry(data) for path, data in sorted(content.items())},
    }
    digest = anchor_digest(manifest)
    with _prepared(out) as tmp:  # before the anchor: no record of a pack never written
        anchor = ledger.append(
            EVENT_TYPE,
            {
                "action": "evidence_pack",
                "model": {"name": model, "version": version},
                "digest": digest,
                "lineage_id": subject["lineage_id"],
                "files": len(content),
                "decisions_sampled": len(sampled),
            },
        )
        cp, proofs = _proofs(ledger, [*sampled, *subject["promotions"], anchor.id])
        ledger_files: dict[str, bytes] = {
            CHECKPOINT_FILE: _json_bytes(cp.to_json()),
            PUBLIC_KEY_FILE: key_pem,
            **{f"{PROOF_DIR}{rid}.json": _json_bytes(p) for rid, p in proofs.items()},
        }
        manifest["ledger"] = {
            "files": {path: _entry(data) for path, data in sorted(ledger_files.items())},
            "checkpoint": {
                "origin": cp.origin,
                "size": cp.size,
                "root": cp.root.hex(),
                "timestamp": cp.timestamp,
                "key_id": cp.key_id,
            },
            "anchor": {"record_id": anchor.id, "digest": digest},
        }
        _write_zip(tmp, out, {**content, **ledger_files, MANIFEST: _json_bytes(manifest)})
    return {
        "path": str(out),
        "model": model,
        "version": version,
        "files": len(content) + len(ledger_files) + 1,
        "decisions": {"population": len(population), "sampled": len(sampled), "seed": seed},
        "promotions": len(history),
        "absent": absent,
        "checkpoint": manifest["ledger"]["checkpoint"],
        "anchor": manifest["ledger"]["anchor"],
    }


# -- verifying -----------------------------------------------------------------------------


class _Problem(Exception):
    """The first thing wrong with a pack."""


@dataclass
class EvidenceReport:
    """Outcome of :func:`verify_evidence`.

    Attributes
    ----------
    ok
        Whether every check passed.
    problem
        The first problem found, in words (``None`` when ``ok``).
    model, version
        What the pack is about (when the manifest could be read).
    files
        Files whose SHA-256 matched.
    proofs
        Inclusion proofs that verified.
    checkpoint
        The checkpoint's origin, size, root, timestamp and key id (when it could be read).
    absent
        Items the manifest says are absent, and why.
    """

    ok: bool
    problem: str | None = None
    model: str | None = None
    version: str | None = None
    files: int = 0
    proofs: int = 0
    checkpoint: dict[str, Any] | None = None
    absent: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return asdict(self)


def _need(condition: bool, problem: str) -> None:
    if not condition:
        raise _Problem(problem)


def _load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Problem(f"{what} is not valid JSON: {exc}") from None


def _hexbytes(value: Any, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except (TypeError, ValueError):
        raise _Problem(f"{what} is not hex") from None


_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name and extra field lengths
_END_RECORD = struct.Struct("<4s6xHIIH")  # signature, entries, directory size and offset, comment
_ZIP64_LOCATOR = struct.Struct("<4s4xQ4x")  # signature, offset of the zip64 end record
_ZIP64_END = struct.Struct("<4sQ20xQQQ")  # signature, size after this field, entries, dir size, at
_DATA_DESCRIPTOR = 0x08


def _read_members(path: Path) -> dict[str, bytes]:
    """The files of the zip, which must hold nothing else: no folder entry, no comment, and no
    byte outside its entries and their directory (before, between or after them), where a
    reader that lists or extracts the zip would show what no hash covers."""
    try:
        with zipfile.ZipFile(path) as zf, Path(path).open("rb") as fh:
            infos = zf.infolist()
            _need(not zf.comment, f"{path}: the zip has a comment, which no pack has")
            for info in infos:
                _need(not info.is_dir(), f"the zip holds a folder entry {info.filename!r}")
                _need(not info.comment, f"the zip entry {info.filename!r} has a comment")
            names = [i.filename for i in infos]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise _Problem(f"the zip holds {duplicates[0]!r} more than once")
            _need(_contiguous(fh, infos, zf.start_dir), f"{path}: bytes outside the zip's files")
            return {name: zf.read(name) for name in names}
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, struct.error) as exc:
        raise _Problem(f"cannot read {path} as a zip: {exc}") from None


def _contiguous(fh: Any, infos: list[zipfile.ZipInfo], start_dir: int) -> bool:
    """Whether the entries start at byte 0 and follow each other with no gap, the directory
    follows the last, and the end record (with no comment) closes the file."""
    at = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset != at or info.flag_bits & _DATA_DESCRIPTOR:
            return False
        fh.seek(at)
        signature, name_length, extra_length = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
        if signature != b"PK\x03\x04":
            return False
        at += _LOCAL_HEADER.size + name_length + extra_length + info.compress_size
    size = fh.seek(0, os.SEEK_END)
    end = size - _END_RECORD.size
    fh.seek(end)
    signature, entries, directory, offset, comment = _END_RECORD.unpack(fh.read(_END_RECORD.size))
    if signature != b"PK\x05\x06" or comment != 0 or at != start_dir:
        return False
    if end >= _ZIP64_LOCATOR.size:  # a zip64 archive (2 GiB or more, or 65,535 entries and up)
        fh.seek(end - _ZIP64_LOCATOR.size)
        mark, record = _ZIP64_LOCATOR.unpack(fh.read(_ZIP64_LOCATOR.size))
        if mark == b"PK\x06\x07":
            fh.seek(record)
            mark, length, entries64, directory64, offset64 = _ZIP64_END.unpack(
                fh.read(_ZIP64_END.size)
            )
            return (
                mark == b"PK\x06\x06"
                and record + 12 + length == end - _ZIP64_LOCATOR.size
                and entries64 == len(infos)
                and offset64 == start_dir
                and start_dir + directory64 == record
                # the end record says the same, up to its 16- and 32-bit fields
                and entries == min(entries64, 0xFFFF)
                and directory == min(directory64, 0xFFFFFFFF)
                and offset == min(offset64, 0xFFFFFFFF)
            )
    return entries == len(infos) and offset == start_dir and start_dir + directory == end


def _check_files(members: Mapping[str, bytes], listed: Mapping[str, Any]) -> int:
    extra = sorted(set(members) - set(listed) - {MANIFEST})
    if extra:
        raise _Problem(f"{extra[0]} is in the zip but not in {MANIFEST}")
    for path in sorted(listed):
        entry = listed[path]
        _need(
            isinstance(entry, dict)
            and set(entry) == {"sha256", "bytes"}
            and isinstance(entry["sha256"], str)
            and len(entry["sha256"]) == 64
            and isinstance(entry["bytes"], int),
            f"{MANIFEST}: the entry of {path} is malformed",
        )
        _need(path in members, f"{path} is listed in {MANIFEST} but missing from the zip")
        actual = _sha256(members[path])
        _need(
            actual == entry["sha256"],
            f"{path}: SHA-256 {actual} does not match {MANIFEST} ({entry['sha256']})",
        )
        _need(len(members[path]) == entry["bytes"], f"{path}: size differs from {MANIFEST}")
    return len(listed)


def _load_key(pem: bytes, what: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise _Problem(f"{what} is not a PEM public key: {exc}") from None
    _need(isinstance(key, Ed25519PublicKey), f"{what} is not an Ed25519 public key")
    assert isinstance(key, Ed25519PublicKey)
    return key


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _check_proof(rid: str, data: bytes, cp: Checkpoint) -> Record:
    what = f"{PROOF_DIR}{rid}.json"
    proof = _load_json(data, what)
    _need(isinstance(proof, dict), f"{what} is not a JSON object")
    record_text = proof.get("record")
    _need(isinstance(record_text, str), f"{what} has no record text")
    record_bytes = record_text.encode("utf-8")
    leaf = leaf_hash(record_bytes)
    _need(
        leaf.hex() == proof.get("leaf_hash"),
        f"{what}: the record text does not hash to the proof's leaf hash",
    )
    try:
        record = Record.from_bytes(record_bytes)
    except ValueError as exc:
        raise _Problem(f"{what}: the record does not parse: {exc}") from None
    _need(record.id == rid == proof.get("id"), f"{what}: proves record {record.id}, not {rid}")
    _need(
        record.seq == proof.get("leaf_index"),
        f"{what}: leaf index {proof.get('leaf_index')} is not the record's seq {record.seq}",
    )
    _need(
        proof.get("tree_size") == cp.size and proof.get("root") == cp.root.hex(),
        f"{what}: the proof is for tree size {proof.get('tree_size')}, not the pack's"
        f" checkpoint of size {cp.size}",
    )
    path = proof.get("proof")
    _need(isinstance(path, list), f"{what}: the audit path is not a list")
    hashes = [_hexbytes(p, f"{what}: an audit path entry") for p in path]
    _need(
        verify_inclusion(leaf, record.seq, cp.size, hashes, cp.root),
        f"{what}: the inclusion proof of record {rid} (seq {record.seq}) does not verify"
        f" against the checkpoint root",
    )
    return record


def _verify(path: Path, trusted_key: Path | None, report: EvidenceReport) -> None:
    members = _read_members(path)
    _need(MANIFEST in members, f"{MANIFEST} is missing")
    manifest = _load_json(members[MANIFEST], MANIFEST)
    _need(isinstance(manifest, dict), f"{MANIFEST} is not a JSON object")
    _need(manifest.get("format") == FORMAT, f"{MANIFEST}: format is not {FORMAT!r}")
    unknown = sorted(set(manifest) - {"format", "subject", "content", "ledger"})
    if unknown:
        raise _Problem(f"{MANIFEST}: unexpected member {unknown[0]!r}")
    subject, content, ledger = (manifest.get(k) for k in ("subject", "content", "ledger"))
    _need(
        all(isinstance(x, dict) for x in (subject, content, ledger)),
        f"{MANIFEST}: subject, content and ledger must be objects",
    )
    assert isinstance(subject, dict) and isinstance(content, dict) and isinstance(ledger, dict)
    report.model, report.version = subject.get("model"), subject.get("version")
    report.absent = dict(subject.get("absent") or {})
    ledger_files = ledger.get("files")
    _need(isinstance(ledger_files, dict), f"{MANIFEST}: ledger.files must be an object")
    assert isinstance(ledger_files, dict)
    _need(
        set(ledger) == {"files", "checkpoint", "anchor"},
        f"{MANIFEST}: ledger must hold exactly files, checkpoint and anchor",
    )
    overlap = sorted(set(content) & set(ledger_files))
    if overlap:
        raise _Problem(f"{MANIFEST}: {overlap[0]} is listed twice")
    report.files = _check_files(members, {**content, **ledger_files})

    # the checkpoint and its key
    for name in (CHECKPOINT_FILE, PUBLIC_KEY_FILE):
        _need(name in ledger_files, f"{name} is missing")
    key = _load_key(members[PUBLIC_KEY_FILE], PUBLIC_KEY_FILE)
    if trusted_key is not None:
        try:
            trusted = _load_key(trusted_key.read_bytes(), str(trusted_key))
        except OSError as exc:
            raise _Problem(f"cannot read the trusted key {trusted_key}: {exc}") from None
        _need(
            _raw(trusted) == _raw(key),
            f"{PUBLIC_KEY_FILE} is not the trusted key {trusted_key}",
        )
    try:
        cp = Checkpoint.from_json(_load_json(members[CHECKPOINT_FILE], CHECKPOINT_FILE))
    except ValueError as exc:
        raise _Problem(f"{CHECKPOINT_FILE}: {exc}") from None
    _need(
        verify_checkpoint(cp, key),
        f"{CHECKPOINT_FILE}: the Ed25519 signature does not verify with {PUBLIC_KEY_FILE}",
    )
    report.checkpoint = {
        "origin": cp.origin,
        "size": cp.size,
        "root": cp.root.hex(),
        "timestamp": cp.timestamp,
        "key_id": cp.key_id,
    }
    _need(
        ledger.get("checkpoint") == report.checkpoint,
        f"{MANIFEST}: ledger.checkpoint does not describe {CHECKPOINT_FILE}",
    )
    _need(
        subject.get("ledger_origin") == cp.origin,
        f"{MANIFEST}: the pack names ledger {subject.get('ledger_origin')!r} but the checkpoint"
        f" is of {cp.origin!r}",
    )

    # the proofs: exactly those the manifest calls for, each under the checkpoint
    anchor = ledger.get("anchor")
    _need(isinstance(anchor, dict), f"{MANIFEST}: ledger.anchor must be an object")
    assert isinstance(anchor, dict)
    decisions = subject.get("decisions") or {}
    sample = list(decisions.get("sample") or [])
    promotions = list(subject.get("promotions") or [])
    wanted = [*sample, *promotions, anchor.get("record_id")]
    _need(
        set(anchor) == {"record_id", "digest"},
        f"{MANIFEST}: ledger.anchor must hold exactly record_id and digest",
    )
    present = {p[len(PROOF_DIR) : -len(".json")] for p in ledger_files if p.startswith(PROOF_DIR)}
    stray = sorted(
        p
        for p in ledger_files
        if p not in (CHECKPOINT_FILE, PUBLIC_KEY_FILE)
        and not (p.startswith(PROOF_DIR) and p.endswith(".json"))
    )
    if stray:
        raise _Problem(f"{stray[0]} is not a ledger file of a pack (nothing can vouch for it)")
    missing = [rid for rid in wanted if rid not in present]
    if missing:
        raise _Problem(f"no inclusion proof of record {missing[0]}")
    unasked = sorted(present - set(map(str, wanted)))
    if unasked:
        raise _Problem(f"{PROOF_DIR}{unasked[0]}.json is in the pack but not called for")
    records: dict[str, Record] = {}
    for rid in wanted:
        records[rid] = _check_proof(rid, members[f"{PROOF_DIR}{rid}.json"], cp)
        report.proofs += 1
    model, version = report.model, report.version
    for rid in sample:
        r = records[rid]
        m = r.body.get("model") or {}
        _need(
            r.type == "decision" and m.get("name") == model and str(m.get("version")) == version,
            f"record {rid} is not a decision of {model} version {version}",
        )
    for rid in promotions:
        r = records[rid]
        _need(
            r.type in ("promotion", "registration")
            and (r.body.get("model") or {}).get("name") == model,
            f"record {rid} is not a promotion event of {model}",
        )
    listed = _load_json(members.get(PROMOTIONS_FILE, b"[]"), PROMOTIONS_FILE)
    _need(isinstance(listed, list), f"{PROMOTIONS_FILE} is not a list")
    _need(
        [e.get("event_id") for e in listed if isinstance(e, dict)] == promotions,
        f"{PROMOTIONS_FILE} does not list the proven promotion events",
    )
    for e in listed:
        body = records[e["event_id"]].body
        recorded = "register" if records[e["event_id"]].type == "registration" else body["action"]
        _need(
            e.get("action") == recorded
            and e.get("version") == (body.get("model") or {}).get("version")
            and e.get("approver") == body.get("approver")
            and (e.get("action") == "register" or e.get("reason") == body.get("reason")),
            f"{PROMOTIONS_FILE}: event {e['event_id']} differs from the proven ledger record",
        )

    # the anchor: the ledger record that commits to this manifest
    digest = anchor_digest(manifest)
    _need(anchor.get("digest") == digest, f"{MANIFEST}: the anchor digest does not match")
    a = records[str(anchor.get("record_id"))]
    _need(
        a.type == EVENT_TYPE
        and a.body.get("digest") == digest
        and a.body.get("model") == {"name": model, "version": version},
        f"the anchor record {a.id} in the ledger does not commit to this manifest: the pack was"
        " altered after it was built",
    )


def verify_evidence(path: Path, *, public_key: Path | None = None) -> EvidenceReport:
    """Check an evidence pack offline; stop at the first problem.

    Parameters
    ----------
    path
        The zip written by :func:`build_evidence`.
    public_key
        A trusted copy of the ledger's checkpoint public key (PEM); the pack's own key must be
        this key. Without it the key inside the pack is used (compare its key id with a
        published one).

    Returns
    -------
    EvidenceReport
        ``ok`` and, if not, ``problem`` naming the first thing wrong. Never raises for a bad
        pack.
    """
    report = EvidenceReport(ok=False)
    try:
        _verify(Path(path), public_key, report)
    except _Problem as exc:
        report.problem = str(exc)
        return report
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        report.problem = f"malformed pack: {type(exc).__name__}: {exc}"
        return report
    report.ok = True
    return report
