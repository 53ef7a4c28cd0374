"""An independent verifier, for checking what the package produces: stdlib and ``openssl`` only.

It imports nothing from ``governance``. The proof checks follow RFC 9162's *recursive*
definitions (§2.1.3.1 PATH, §2.1.4.1 SUBPROOF), rebuilding the roots from a proof, unlike the
package's iterative verifiers; note signatures are checked by ``openssl pkeyutl -verify
-rawin`` (OpenSSL's Ed25519, not the ``cryptography`` bindings the package signs with). The
README's "verify it yourself" section describes the same steps.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import tempfile
from pathlib import Path

# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID
# 1.3.101.112 }, BIT STRING { 32-byte key } }.
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def inclusion_ok(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """Rebuild the root from PATH(index, D[0:size]) (its last hash is the top sibling)."""

    def rebuild(m: int, n: int, path: list[bytes]) -> bytes | None:
        if n == 1:
            return leaf if not path else None
        if not path:
            return None
        k = _split(n)
        if m < k:
            below = rebuild(m, k, path[:-1])
            return None if below is None else node(below, path[-1])
        below = rebuild(m - k, n - k, path[:-1])
        return None if below is None else node(path[-1], below)

    return 0 <= index < size and rebuild(index, size, list(proof)) == root


def consistency_ok(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    """Rebuild both roots from SUBPROOF(old, D[0:new], true), consuming the proof from the end."""
    path = list(proof)

    def rebuild(m: int, n: int, known: bool) -> tuple[bytes, bytes]:
        if m == n:
            if known:
                return old_root, old_root
            value = path.pop()
            return value, value
        k = _split(n)
        if m <= k:
            right = path.pop()
            old_part, new_left = rebuild(m, k, known)
            return old_part, node(new_left, right)
        left = path.pop()
        old_right, new_right = rebuild(m - k, n - k, False)
        return node(left, old_right), node(left, new_right)

    if not 0 < old <= new:
        return False
    try:
        got_old, got_new = rebuild(old, new, True)
    except IndexError:  # the proof ran out
        return False
    return not path and got_old == old_root and got_new == new_root


def ed25519_ok(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """``openssl pkeyutl -verify -rawin`` of an Ed25519 signature."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        der = base64.b64encode(_SPKI_PREFIX + public_key).decode()
        (d / "key.pem").write_text(f"-----BEGIN PUBLIC KEY-----\n{der}\n-----END PUBLIC KEY-----\n")
        (d / "msg").write_bytes(message)
        (d / "sig").write_bytes(signature)
        command = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(d / "key.pem")]
        command += ["-rawin", "-in", str(d / "msg"), "-sigfile", str(d / "sig")]
        result = subprocess.run(command, capture_output=True)
        return result.returncode == 0


def note_signatures(note: str, vkey: str) -> list[tuple[bytes, bytes]]:
    """The ``(signed message, signature)`` pairs of ``vkey``'s signature lines in ``note``.

    ``vkey`` is ``name+hex key id+base64(type || key)``; type 0x01 signs the note text, type
    0x04 (a witness cosignature) signs ``cosignature/v1\\ntime T\\n`` + the text, and carries
    ``T`` as 8 big-endian bytes before the signature.
    """
    name, key_hex, material = vkey.split("+", 2)
    raw = base64.b64decode(material)
    assert hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() == key_hex
    text, _, block = note.rpartition("\n\n")
    text += "\n"
    found = []
    for line in block.splitlines():
        dash, key_name, b64 = line.split(" ")
        blob = base64.b64decode(b64)
        if dash != "\u2014" or key_name != name or blob[:4].hex() != key_hex:
            continue
        if raw[0] == 0x04:
            when = int.from_bytes(blob[4:12], "big")
            found.append((b"cosignature/v1\ntime %d\n" % when + text.encode(), blob[12:]))
        else:
            found.append((text.encode(), blob[4:]))
    return found


def note_signed_by(note: str, vkey: str) -> bool:
    """Whether ``note`` carries a signature by ``vkey`` that OpenSSL verifies."""
    raw = base64.b64decode(vkey.split("+", 2)[2])
    pairs = note_signatures(note, vkey)
    return bool(pairs) and all(ed25519_ok(raw[1:], msg, sig) for msg, sig in pairs)
