"""OpenSSF model signing of a model directory, with a local key (offline, no Sigstore).

A thin layer over the ``model-signing`` library: :func:`sign_directory` writes the library's
signature (a Sigstore bundle holding a DSSE-signed in-toto statement of every file's sha256)
and :func:`verify_directory` checks a directory against one with the trusted public key, naming
the files that differ. Keys are ECDSA P-256 in PEM; :func:`ensure_keypair` creates a pair once.

A registered model carries both files in its directory (:func:`sign_model`): first the SLSA
provenance statement (``provenance.intoto.jsonl``, a DSSE envelope whose subjects are the model's
files and whose materials are its data, code, parameters and environment), then the OpenSSF
signature (``model.sig``) over every file, the statement included. :func:`verify_model` checks
both with the trusted public key and compares the statement with the version's lineage.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import model_signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from governance.core.attestation import (
    AttestationError,
    check_statement,
    key_id,
    open_envelope,
    provenance_statement,
    sha256_hex,
    sign_envelope,
)

SIGNATURE_FILE = "model.sig"
PROVENANCE_FILE = "provenance.intoto.jsonl"
# The signature cannot sign itself; MLflow's client writes registered_model_meta (the registered
# name and version, read by nothing that scores) into every download of models:/NAME/VERSION.
# Everything else is signed.
IGNORED = (SIGNATURE_FILE, "registered_model_meta")

ERR_NO_KEY = "no model-signing key at {path}"
ERR_BAD_KEY = "{path} is not an ECDSA P-256/P-384/P-521 {kind} key in PEM: {problem}"
ERR_MISMATCH = "{what}: files differ from its signature: {files}"
ERR_SIGNATURE = "{what}: the signature does not verify with the trusted key {key}: {problem}"
ERR_NOT_SIGNED = "{what} is not signed: no {file}"
ERR_NO_STATEMENT = "{what} has no provenance statement ({file})"
ERR_STATEMENT = "{what}: {problem}"
ERR_PROVENANCE = "{what}: the provenance does not match: {problems}"
_LIBRARY_MISMATCH = "Signature mismatch"  # model-signing's words once the signature verified


class SignatureError(ValueError):
    """A model directory that does not match its signature, or a signature that is not ours.

    Attributes
    ----------
    files
        The files that differ (changed, added or missing), when the signature itself verified.
    """

    def __init__(self, message: str, files: tuple[str, ...] = ()):
        super().__init__(message)
        self.files = files


@dataclass(frozen=True)
class KeyPair:
    """Where a signing key pair lives: the private key file and its public half."""

    private: Path
    public: Path


def ensure_keypair(private: Path, public: Path) -> KeyPair:
    """Create an ECDSA P-256 key pair at these paths unless the private key exists.

    The private key is written with mode 0600 and atomically; an existing private key is kept
    and its public key (re)written beside it if missing.
    """
    if not private.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        private.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd, tmp = tempfile.mkstemp(dir=private.parent, prefix=f".{private.name}.")
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, private)  # never replaces a key another process just made
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    if not public.exists():
        key = load_private_key(private)
        public.parent.mkdir(parents=True, exist_ok=True)
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return KeyPair(private, public)


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The private key in the PEM file at ``path``."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), None)
    except FileNotFoundError:
        raise SignatureError(ERR_NO_KEY.format(path=path)) from None
    except (ValueError, TypeError) as exc:
        raise SignatureError(ERR_BAD_KEY.format(path=path, kind="private", problem=exc)) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SignatureError(
            ERR_BAD_KEY.format(path=path, kind="private", problem=type(key).__name__)
        )
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """The public key in the PEM file at ``path``."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise SignatureError(ERR_NO_KEY.format(path=path)) from None
    except (ValueError, TypeError) as exc:
        raise SignatureError(ERR_BAD_KEY.format(path=path, kind="public", problem=exc)) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureError(
            ERR_BAD_KEY.format(path=path, kind="public", problem=type(key).__name__)
        )
    return key


def _hashing() -> model_signing.hashing.Config:
    return model_signing.hashing.Config().set_ignored_paths(paths=list(IGNORED))


def file_digests(directory: Path) -> dict[str, str]:
    """Every file of a model directory the signature covers: relative path -> sha256 hex."""
    manifest = _hashing().hash(directory)
    return {str(rd.identifier): rd.digest.digest_hex for rd in manifest.resource_descriptors()}


def sign_directory(directory: Path, private_key: Path) -> bytes:
    """Sign every file of ``directory`` (but the signature) with the key; return the signature.

    The signature is also written to ``directory/model.sig``.
    """
    load_private_key(private_key)  # a clear error before the library's
    target = directory / SIGNATURE_FILE
    config = model_signing.signing.Config().set_hashing_config(_hashing())
    config.use_elliptic_key_signer(private_key=private_key).sign(directory, target)
    return target.read_bytes()


def verify_directory(directory: Path, public_key: Path, *, what: str = "the model") -> None:
    """Check ``directory`` against ``directory/model.sig`` with the trusted public key.

    Raises
    ------
    SignatureError
        If the signature is missing, is not by this key, or any file was changed, added or
        removed since signing (``files`` names them).
    """
    signature = directory / SIGNATURE_FILE
    if not signature.is_file():
        raise SignatureError(ERR_NOT_SIGNED.format(what=what, file=SIGNATURE_FILE))
    key = load_public_key(public_key)
    config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key)
    try:
        config.verify(directory, signature)
    except ValueError as exc:
        if str(exc).startswith(_LIBRARY_MISMATCH):
            # The library checked the signature and found files that differ: name them.
            files = differing_files(directory, signature.read_bytes())
            raise SignatureError(
                ERR_MISMATCH.format(what=what, files=", ".join(files)), files
            ) from None
        raise SignatureError(
            ERR_SIGNATURE.format(what=what, key=key_id(key)[:16], problem=exc)
        ) from None
    except Exception as exc:  # the library raises what its parsers raise on a mangled bundle
        raise SignatureError(
            ERR_SIGNATURE.format(what=what, key=key_id(key)[:16], problem=exc)
        ) from None


def signed_digests(signature: bytes) -> dict[str, str]:
    """The file digests a model-signing signature lists: path -> sha256 hex.

    Reads the bundle without checking it: use only on a signature already verified.
    """
    bundle = json.loads(signature)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}


def differing_files(directory: Path, signature: bytes) -> tuple[str, ...]:
    """Files changed, added or removed since ``signature`` was made, sorted."""
    signed = signed_digests(signature)
    found = file_digests(directory)
    return tuple(sorted(p for p in set(signed) | set(found) if signed.get(p) != found.get(p)))


@dataclass(frozen=True)
class SignedModel:
    """What signing a model directory produced (or what verifying it found).

    Attributes
    ----------
    signature_sha256, provenance_sha256
        sha256 of ``model.sig`` and of ``provenance.intoto.jsonl`` (the ledger records both).
    key_id
        sha256 of the signing key's public PEM.
    files
        The model's files the statement names: relative path -> sha256 hex.
    """

    signature_sha256: str
    provenance_sha256: str
    key_id: str
    files: dict[str, str]

    def digests(self) -> dict[str, str]:
        """The digests recorded with the version (tags and the registration event)."""
        return {
            "signature_sha256": self.signature_sha256,
            "provenance_sha256": self.provenance_sha256,
            "key_id": self.key_id,
        }


def sign_model(
    directory: Path,
    private_key: Path,
    *,
    lineage: Mapping[str, Any],
    materials: Mapping[str, str],
    code_url: str,
    started_on: str | None = None,
    finished_on: str | None = None,
) -> SignedModel:
    """Write the model's provenance statement, then sign every file of the directory.

    Parameters
    ----------
    directory
        The model directory (an MLflow model: ``MLmodel``, ``artifacts/``, ``code/`` ...).
    private_key
        The ECDSA signing key (PEM).
    lineage, materials, code_url, started_on, finished_on
        As for :func:`governance.core.attestation.provenance_statement`.
    """
    key = load_private_key(private_key)
    for stale in (SIGNATURE_FILE, PROVENANCE_FILE):
        (directory / stale).unlink(missing_ok=True)
    subjects = file_digests(directory)
    statement = provenance_statement(
        subjects=subjects,
        lineage=lineage,
        materials=materials,
        code_url=code_url,
        started_on=started_on,
        finished_on=finished_on,
    )
    envelope = sign_envelope(statement, key)
    (directory / PROVENANCE_FILE).write_bytes(envelope)
    signature = sign_directory(directory, private_key)
    return SignedModel(
        sha256_hex(signature), sha256_hex(envelope), key_id(key.public_key()), subjects
    )


def verify_model(
    directory: Path,
    public_key: Path,
    *,
    lineage: Mapping[str, Any] | None = None,
    what: str = "the model",
) -> SignedModel:
    """Check a signed model directory with the trusted public key, and its provenance.

    The OpenSSF signature must cover exactly the files present (the statement among them); the
    statement's DSSE signature must verify with the same key; its subjects must be the files
    present and, given the version's ``lineage``, its materials (data md5s, commit, parameters'
    hash, lock file) must be the lineage's.

    Raises
    ------
    SignatureError
        Naming what differs: the files (``files``), the key, or the lineage fields.
    """
    verify_directory(directory, public_key, what=what)
    try:
        envelope = (directory / PROVENANCE_FILE).read_bytes()
    except FileNotFoundError:
        raise SignatureError(ERR_NO_STATEMENT.format(what=what, file=PROVENANCE_FILE)) from None
    key = load_public_key(public_key)
    try:
        statement = open_envelope(envelope, key)
    except AttestationError as exc:
        raise SignatureError(ERR_STATEMENT.format(what=what, problem=exc)) from None
    files = {p: h for p, h in file_digests(directory).items() if p != PROVENANCE_FILE}
    problems = check_statement(statement, lineage=lineage, files=files)
    if problems:
        raise SignatureError(ERR_PROVENANCE.format(what=what, problems="; ".join(problems)))
    signature = (directory / SIGNATURE_FILE).read_bytes()
    return SignedModel(sha256_hex(signature), sha256_hex(envelope), key_id(key), files)
