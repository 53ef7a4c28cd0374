"""Which witnesses a ledger's checkpoints go to, and how many cosignatures publish one.

The configuration lives with the ledger's state, in ``<home>/witnesses.json``::

    {"format": "governance.witnesses/v1", "quorum": 2,
     "witnesses": [{"name": "witness.example/w1", "url": "http://...", "vkey": "w1+..."}]}

``governance witness add URL VKEY [--quorum K]``, ``remove`` and ``list`` edit it. A
checkpoint counts as *published* once ``quorum`` of these witnesses cosigned it. The same file
goes into an audit bundle, where an outside verifier may replace it with witnesses they trust.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from governance.ledger.note import ALG_COSIGNATURE_V1, Verifier, parse_verifier_key

__all__ = [
    "ERR_BAD_CONFIG",
    "ERR_QUORUM",
    "WITNESSES_FILE",
    "WITNESSES_FORMAT",
    "WitnessConfig",
    "WitnessEntry",
]

WITNESSES_FILE = "witnesses.json"
WITNESSES_FORMAT = "governance.witnesses/v1"
ERR_BAD_CONFIG = "{path}: not a witness configuration ({problem})"
ERR_QUORUM = "quorum {quorum} is impossible with {count} witness(es): use 0..{count}"
ERR_BAD_URL = "invalid witness URL {url!r}: expected http(s)://host[:port][/prefix]"
ERR_NOT_COSIGNER = "{vkey!r} is not a witness key (a tlog-cosignature key, type 0x04)"


@dataclass(frozen=True)
class WitnessEntry:
    """One witness: its name (the key's name), URL and verifier key."""

    name: str
    url: str
    vkey: str

    @property
    def verifier(self) -> Verifier:
        """The verifier of its cosignatures."""
        return parse_verifier_key(self.vkey)

    @classmethod
    def make(cls, url: str, vkey: str) -> WitnessEntry:
        """Check a URL and a witness verifier key.

        Raises
        ------
        ValueError
            If the URL is not http(s) or the key is not a cosignature key.
        """
        if not isinstance(url, str) or not isinstance(vkey, str):
            raise ValueError(f"url and vkey must be text, not {url!r} and {vkey!r}")
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 -- raises ValueError for a port out of range or not a number
        except ValueError:
            raise ValueError(ERR_BAD_URL.format(url=url)) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(ERR_BAD_URL.format(url=url))
        verifier = parse_verifier_key(vkey.strip())
        if verifier.alg != ALG_COSIGNATURE_V1:
            raise ValueError(ERR_NOT_COSIGNER.format(vkey=vkey))
        return cls(verifier.name, url.rstrip("/"), verifier.vkey)


@dataclass
class WitnessConfig:
    """The witnesses of a ledger and the quorum.

    Attributes
    ----------
    witnesses
        The configured witnesses, by name order of addition.
    quorum
        Cosignatures needed to publish a checkpoint (0 when there are no witnesses).
    path
        The file it was read from (and is saved to), if any.
    """

    witnesses: list[WitnessEntry] = field(default_factory=list)
    quorum: int = 0
    path: Path | None = None

    @classmethod
    def load(cls, path: Path) -> WitnessConfig:
        """Read the configuration (an absent file is no witnesses, quorum 0).

        Raises
        ------
        ValueError
            If the file is malformed (:data:`ERR_BAD_CONFIG`).
        """
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path=path)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(ERR_BAD_CONFIG.format(path=path, problem=exc)) from None
        return cls.from_json(doc, path)

    @classmethod
    def from_json(cls, doc: Any, path: Path | None = None) -> WitnessConfig:
        """Build from the file's JSON document (see the module docstring)."""
        where = path or "witnesses"
        if not isinstance(doc, dict) or doc.get("format") != WITNESSES_FORMAT:
            raise ValueError(ERR_BAD_CONFIG.format(path=where, problem="unknown format"))
        items = doc.get("witnesses")
        quorum = doc.get("quorum")
        if not isinstance(items, list) or not isinstance(quorum, int) or isinstance(quorum, bool):
            raise ValueError(ERR_BAD_CONFIG.format(path=where, problem="witnesses or quorum"))
        try:
            entries = [WitnessEntry.make(item["url"], item["vkey"]) for item in items]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(ERR_BAD_CONFIG.format(path=where, problem=exc)) from None
        config = cls(entries, quorum, path)
        config.check()
        return config

    def check(self) -> None:
        """Raise ``ValueError`` unless names are unique and ``0 <= quorum <= len(witnesses)``."""
        names = [w.name for w in self.witnesses]
        if len(set(names)) != len(names):
            raise ValueError(f"two witnesses share a name: {sorted(names)}")
        if not 0 <= self.quorum <= len(self.witnesses):
            raise ValueError(ERR_QUORUM.format(quorum=self.quorum, count=len(self.witnesses)))

    def to_json(self) -> dict[str, Any]:
        """The file's JSON document."""
        return {
            "format": WITNESSES_FORMAT,
            "quorum": self.quorum,
            "witnesses": [{"name": w.name, "url": w.url, "vkey": w.vkey} for w in self.witnesses],
        }

    def save(self, path: Path | None = None) -> Path:
        """Write the configuration atomically; return the file."""
        target = Path(path or self.path or WITNESSES_FILE)
        self.check()
        target.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".witnesses-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.path = target
        return target

    def add(self, url: str, vkey: str, quorum: int | None = None) -> WitnessEntry:
        """Add (or update the URL of) a witness; set the quorum (default: at least 1).

        Raises
        ------
        ValueError
            For a bad URL or key, or an impossible quorum.
        """
        entry = WitnessEntry.make(url, vkey)
        others = [w for w in self.witnesses if w.name != entry.name]
        if any(w.vkey != entry.vkey and w.name == entry.name for w in self.witnesses):
            raise ValueError(f"witness {entry.name!r} is configured with another key; remove it")
        self.witnesses = [*others, entry]
        self.quorum = max(self.quorum, 1) if quorum is None else quorum
        self.check()
        return entry

    def remove(self, name_or_url: str, quorum: int | None = None) -> WitnessEntry:
        """Remove a witness by name or URL; lower the quorum only if asked (or if it must).

        Raises
        ------
        ValueError
            If no such witness is configured, or the quorum is impossible.
        """
        target = name_or_url.rstrip("/")
        found = [w for w in self.witnesses if target in (w.name, w.url)]
        if not found:
            raise ValueError(f"no witness named or at {name_or_url!r}")
        self.witnesses = [w for w in self.witnesses if w not in found]
        if quorum is not None:
            self.quorum = quorum
        elif self.quorum > len(self.witnesses):
            raise ValueError(
                f"removing {found[0].name} leaves {len(self.witnesses)} witness(es) for quorum"
                f" {self.quorum}: pass --quorum"
            )
        self.check()
        return found[0]

    @property
    def verifiers(self) -> list[Verifier]:
        """The witnesses' verifiers."""
        return [w.verifier for w in self.witnesses]
