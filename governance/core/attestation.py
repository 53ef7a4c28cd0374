"""In-toto statements with an SLSA provenance predicate, in signed DSSE envelopes.

Pure: the statement of a registered model version says which artifact files (subjects, by
sha256) came from which materials (the data by md5, the code by git commit, ``params.yaml`` and
the environment's lock file by sha256). It follows in-toto Statement v1 and SLSA Provenance v1,
where what SLSA v0.2 called ``materials`` is ``buildDefinition.resolvedDependencies``.

The statement travels in a DSSE envelope (``application/vnd.in-toto+json``) signed with the same
ECDSA key as the model's OpenSSF model-signing signature; :func:`open_envelope` checks it with
the public key alone, and :func:`check_statement` compares it with the version's lineage and
with the files actually present.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "urn:governance:pipeline:v1"
BUILDER_ID = "urn:governance:pipeline:{via}"
CODE_URI = "git+{url}@{commit}"
CURVE_HASHES: dict[int, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    256: hashes.SHA256,
    384: hashes.SHA384,
    521: hashes.SHA512,
}

ERR_ENVELOPE = "the provenance envelope is malformed: {problem}"
ERR_PAYLOAD_TYPE = "the provenance envelope carries {found!r}, not {expected!r}"
ERR_SIGNATURE = "the provenance statement's signature does not verify with the trusted key"
ERR_STATEMENT = "the provenance statement is not an in-toto v1 statement with an SLSA v1 predicate"
ERR_KEY = "signing keys must be ECDSA on P-256, P-384 or P-521, got {kind}"


class AttestationError(ValueError):
    """A provenance envelope or statement that cannot be trusted."""


def sha256_hex(data: bytes) -> str:
    """The sha256 of ``data``, hex."""
    return hashlib.sha256(data).hexdigest()


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """sha256 of the public key's PEM (SubjectPublicKeyInfo): the model-signing key hint."""
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return sha256_hex(pem)


def _hash_for(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.key_size not in CURVE_HASHES:
        raise AttestationError(ERR_KEY.format(kind=type(key).__name__))
    return CURVE_HASHES[key.curve.key_size]()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of a payload."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def provenance_statement(
    *,
    subjects: Mapping[str, str],
    lineage: Mapping[str, Any],
    materials: Mapping[str, str],
    code_url: str,
    started_on: str | None = None,
    finished_on: str | None = None,
) -> dict[str, Any]:
    """The in-toto statement of a model version, with an SLSA v1 provenance predicate.

    Parameters
    ----------
    subjects
        Artifact path (relative to the model directory) -> sha256 hex.
    lineage
        The version's lineage: ``datasets`` (path, md5), ``git_commit``, ``git_dirty``,
        ``params``, ``params_hash``, ``environment`` (lock file and its sha256),
        ``mlflow_run_id``, ``run``, ``package_version``, ``model``, ``dataset``.
    materials
        Other files by path -> sha256 hex: ``params.yaml`` and the lock file.
    code_url
        Where the code lives (a git remote URL or a ``file://`` path).
    started_on, finished_on
        When the build ran (ISO 8601).

    Returns
    -------
    dict
        The statement as JSON.
    """
    env = lineage.get("environment") or {}
    commit = lineage.get("git_commit")
    deps: list[dict[str, Any]] = [
        {
            "uri": CODE_URI.format(url=code_url, commit=commit),
            "digest": {"gitCommit": str(commit)},
            "annotations": {"dirty": bool(lineage.get("git_dirty"))},
        }
    ]
    for d in lineage.get("datasets") or []:
        deps.append({"name": d["path"], "digest": {"md5": d["md5"]}})
    for path, digest in sorted(materials.items()):
        item: dict[str, Any] = {"name": path, "digest": {"sha256": digest}}
        if path == "params.yaml":
            item["annotations"] = {"params_hash": lineage.get("params_hash")}
        deps.append(item)
    run = dict(lineage.get("run") or {})
    metadata: dict[str, Any] = {"invocationId": str(lineage.get("mlflow_run_id"))}
    if started_on:
        metadata["startedOn"] = started_on
    if finished_on:
        metadata["finishedOn"] = finished_on
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": p, "digest": {"sha256": h}} for p, h in sorted(subjects.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "model": lineage.get("model"),
                    "dataset": lineage.get("dataset"),
                    "params": lineage.get("params"),
                },
                "internalParameters": {
                    "run": run,
                    "environment_lock": env.get("lock_file"),
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID.format(via=run.get("source", "cli")),
                    "version": {"governance": str(lineage.get("package_version"))},
                },
                "metadata": metadata,
            },
        },
    }


def sign_envelope(statement: Mapping[str, Any], private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """The statement in a DSSE envelope signed with ``private_key`` (JSON bytes, one line)."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    public = private_key.public_key()
    sig = private_key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(_hash_for(public)))
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key_id(public), "sig": base64.b64encode(sig).decode()}],
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def open_envelope(data: bytes, public_key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """Check a DSSE envelope's signature with the trusted key; return the statement.

    Raises
    ------
    AttestationError
        If the envelope is malformed, carries another payload type, is not signed by this key
        or does not hold an in-toto v1 statement with an SLSA v1 predicate.
    """
    try:
        envelope = json.loads(data)
        payload = base64.b64decode(envelope["payload"], validate=True)
        sigs = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
        payload_type = envelope["payloadType"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise AttestationError(ERR_ENVELOPE.format(problem=exc)) from None
    if payload_type != PAYLOAD_TYPE:
        raise AttestationError(ERR_PAYLOAD_TYPE.format(found=payload_type, expected=PAYLOAD_TYPE))
    algorithm = ec.ECDSA(_hash_for(public_key))
    for sig in sigs:
        try:
            public_key.verify(sig, pae(PAYLOAD_TYPE, payload), algorithm)
            break
        except InvalidSignature:
            continue
    else:
        raise AttestationError(ERR_SIGNATURE)
    try:
        statement = json.loads(payload)
    except ValueError as exc:
        raise AttestationError(ERR_ENVELOPE.format(problem=exc)) from None
    if (
        not isinstance(statement, dict)
        or statement.get("_type") != STATEMENT_TYPE
        or statement.get("predicateType") != PREDICATE_TYPE
        or not isinstance(statement.get("subject"), list)
    ):
        raise AttestationError(ERR_STATEMENT)
    return statement


def statement_subjects(statement: Mapping[str, Any]) -> dict[str, str]:
    """Subject name -> sha256 hex."""
    return {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}


def check_statement(
    statement: Mapping[str, Any],
    *,
    lineage: Mapping[str, Any] | None,
    files: Mapping[str, str] | None = None,
) -> list[str]:
    """What in a (signature-checked) statement disagrees with the lineage or the files.

    Parameters
    ----------
    statement
        From :func:`open_envelope`.
    lineage
        The version's lineage as the registry holds it (``None``: materials not compared).
    files
        The model's files as found now, path -> sha256 hex (``None``: not compared).

    Returns
    -------
    list of str
        One sentence per disagreement, naming the file or the lineage field; empty when they
        agree.
    """
    problems: list[str] = []
    if files is not None:
        signed = statement_subjects(statement)
        for path in sorted(set(signed) | set(files)):
            if path not in files:
                problems.append(f"{path}: in the provenance statement but missing")
            elif path not in signed:
                problems.append(f"{path}: present but not in the provenance statement")
            elif signed[path] != files[path]:
                problems.append(
                    f"{path}: sha256 {files[path]} differs from the provenance statement's"
                    f" {signed[path]}"
                )
    if lineage is None:
        return problems
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    data = {d["name"]: d["digest"]["md5"] for d in deps if "md5" in d.get("digest", {})}
    recorded = {d["path"]: d["md5"] for d in lineage.get("datasets") or []}
    for path in sorted(set(data) | set(recorded)):
        if data.get(path) != recorded.get(path):
            problems.append(
                f"data {path}: md5 {recorded.get(path)} in the lineage, {data.get(path)} in the"
                " provenance statement"
            )
    commits = [d["digest"]["gitCommit"] for d in deps if "gitCommit" in d.get("digest", {})]
    if commits != [str(lineage.get("git_commit"))]:
        problems.append(
            f"code: commit {lineage.get('git_commit')} in the lineage, {commits} in the"
            " provenance statement"
        )
    by_name = {d.get("name"): d for d in deps}
    params = (by_name.get("params.yaml") or {}).get("annotations", {}).get("params_hash")
    if params != lineage.get("params_hash"):
        problems.append(
            f"params.yaml: hash {lineage.get('params_hash')} in the lineage, {params} in the"
            " provenance statement"
        )
    env = lineage.get("environment") or {}
    if env.get("lock_file"):
        lock = (by_name.get(env["lock_file"]) or {}).get("digest", {}).get("sha256")
        if lock != env.get("lock_sha256"):
            problems.append(
                f"{env['lock_file']}: sha256 {env.get('lock_sha256')} in the lineage, {lock} in"
                " the provenance statement"
            )
    return problems
