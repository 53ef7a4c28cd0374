"""OpenSSF model signing of a model directory, with a local key (offline, no Sigstore).

A thin layer over the ``model-signing`` library: :func:`sign_directory` writes the library's
signature (a Sigstore bundle holding a DSSE-signed in-toto statement of every file's sha256)
and :func:`verify_directory` checks a directory against one with the trusted public key, naming
the files that differ. Keys are ECDSA P-256 in PEM; :func:`ensure_keypair` creates a pair once.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import model_signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from governance.core.attestation import key_id

SIGNATURE_FILE = "model.sig"
PROVENANCE_FILE = "provenance.intoto.jsonl"
IGNORED = (SIGNATURE_FILE,)  # the signature cannot sign itself; everything else is signed

ERR_NO_KEY = "no model-signing key at {path}"
ERR_BAD_KEY = "{path} is not an ECDSA P-256/P-384/P-521 {kind} key in PEM: {problem}"
ERR_MISMATCH = "{what}: {files} differ from its signature"
ERR_SIGNATURE = "{what}: the signature does not verify with the trusted key {key}: {problem}"
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
    key = load_public_key(public_key)
    signature = directory / SIGNATURE_FILE
    if not signature.is_file():
        raise SignatureError(f"{what} is not signed: no {SIGNATURE_FILE}")
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
