"""A bundle from a hostile hand: the auditor's verifier must not be fooled, hang or crash.

The bundle is whatever folder the operator handed over, so everything in it is an input:
records appended past the newest checkpoint (genuine, well-linked, but signed by nobody) are
refused, as is a ``records.jsonl`` shorter than ``ledger.json`` says; a malformed
``ledger.json``, ``witnesses.json``, checkpoint, note or tile is "cannot check" (exit 2) or a
fallback, never a traceback; a FIFO or a device in the folder is refused before anything is
read from it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from governance.ledger import Entry, Ledger
from governance.transparency import WitnessConfig, write_bundle
from governance.transparency.bundle import verify_bundle
from governance.transparency.sources import CannotCheck
from governance.transparency.status import seconds_since

GOVERNANCE = str(Path(sys.executable).with_name("governance"))
SIGNED = 35  # the newest checkpoint's size: what the bundle holds
WRITTEN = 40  # records in the ledger: 5 past the newest checkpoint


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    """A bundle of 35 records (checkpoints at 20 and 35) and the ledger's 40 records' bytes."""
    root = tmp_path_factory.mktemp("hostile")
    home = root / "state"
    with Ledger.open(f"sqlite:///{root / 'ledger.db'}", home=home) as ledger:
        ledger.append_many([Entry("decision", {"n": i}, subject_id=f"s-{i}") for i in range(20)])
        ledger.checkpoint()
        ledger.append_many([Entry("decision", {"n": i}) for i in range(20, SIGNED)])
        ledger.checkpoint()
        ledger.append_many([Entry("decision", {"n": i}) for i in range(SIGNED, WRITTEN)])
        out = root / "bundle"
        write_bundle(
            out,
            store=ledger.store,
            meta=ledger.store.meta(),
            public_key=ledger.public_key,
            folder=ledger.checkpoint_dir.path,
            config=WitnessConfig(),
            tiles_dir=None,
        )
        every = [bytes(row[1]) for rows in ledger.store.iter_chain(0, None) for row in rows]
    assert len(every) == WRITTEN
    return out, every


@pytest.fixture
def bundle(made: tuple[Path, list[bytes]], tmp_path: Path) -> Path:
    """A fresh copy of the bundle to spoil."""
    return Path(shutil.copytree(made[0], tmp_path / "bundle"))


def _verify(bundle: Path) -> Any:
    return verify_bundle(bundle, fetch=False)


def _cli(bundle: Path, tmp_path: Path, *more: str) -> subprocess.CompletedProcess[str]:
    """``governance audit verify --bundle`` in an empty environment; a hang fails the test."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [GOVERNANCE, "audit", "verify", "--bundle", str(bundle), "--json", *more],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )


def _edit_doc(bundle: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads((bundle / "ledger.json").read_text())
    change(doc)
    (bundle / "ledger.json").write_text(json.dumps(doc))


def test_the_bundle_as_written_verifies(bundle: Path) -> None:
    report = _verify(bundle)
    assert report.ok and report.records == SIGNED, report


@pytest.mark.parametrize("size_too", [False, True])
def test_records_appended_past_the_newest_checkpoint_are_refused(
    made: tuple[Path, list[bytes]], bundle: Path, size_too: bool
) -> None:
    """The ledger's own next five records: genuine and linked, but no signature covers them."""
    with (bundle / "records.jsonl").open("ab") as fh:
        fh.write(b"".join(data + b"\n" for data in made[1][SIGNED:]))
    if size_too:
        _edit_doc(bundle, lambda doc: doc.update(size=WRITTEN))
    report = _verify(bundle)
    assert (report.ok, report.code, report.first_bad) == (False, 1, SIGNED), report
    assert "past the newest checkpoint (35 records)" in report.reason


def test_records_jsonl_shorter_than_ledger_json_says_is_refused(bundle: Path) -> None:
    """Cut back to the checkpoint of size 20 (the newer checkpoint thrown away)."""
    lines = (bundle / "records.jsonl").read_bytes().split(b"\n")
    (bundle / "records.jsonl").write_bytes(b"\n".join(lines[:20]) + b"\n")
    (bundle / "checkpoints" / f"{SIGNED:012d}.json").unlink()
    report = _verify(bundle)
    assert (report.ok, report.code, report.first_bad) == (False, 1, 20), report
    assert "ledger.json says the bundle holds 35 records, but records.jsonl holds 20" in (
        report.reason
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("origin", None),
        ("origin", 5),
        ("origin", ""),
        ("origin", "not an origin\nwith a newline"),
        ("ledger_id", None),
        ("size", [35]),
        ("size", -1),
        ("size", "35"),
        ("size", True),
        ("canonical", "governance.canonical-json/9"),
        ("canonical", None),
        ("record_format", "governance.record/9"),
    ],
)
def test_a_malformed_ledger_json_cannot_be_checked(bundle: Path, key: str, value: Any) -> None:
    if value is None:
        _edit_doc(bundle, lambda doc: doc.pop(key))
    else:
        _edit_doc(bundle, lambda doc: doc.update({key: value}))
    with pytest.raises(CannotCheck, match=f"ledger.json: {key}|origin"):
        _verify(bundle)


@pytest.mark.parametrize(
    "text",
    ["[" * 5000 + "]" * 5000, '{"format": "governance.bundle/v1", "size": ' + "9" * 5000 + "}"],
    ids=["nested-5000-deep", "a-5000-digit-number"],
)
@pytest.mark.parametrize(
    "name", ["ledger.json", "witnesses.json", f"checkpoints/{SIGNED:012d}.json"]
)
def test_json_files_too_deep_or_too_long_cannot_be_checked(
    bundle: Path, name: str, text: str
) -> None:
    (bundle / name).write_text(text)
    with pytest.raises(CannotCheck, match=r"unreadable|not a|JSON"):
        _verify(bundle)


def test_a_record_nested_too_deep_is_named(bundle: Path) -> None:
    lines = (bundle / "records.jsonl").read_bytes().split(b"\n")
    lines[7] = b'{"body":' + b"[" * 5000 + b"]" * 5000 + lines[7][lines[7].index(b',"id":') :]
    (bundle / "records.jsonl").write_bytes(b"\n".join(lines))
    report = _verify(bundle)
    assert (report.ok, report.code, report.first_bad) == (False, 1, 7), report


@pytest.mark.parametrize(
    "entry",
    [
        {"url": "http://127.0.0.1:99999", "vkey": "w+00000000+AAAA"},
        {"url": "http://127.0.0.1:abc", "vkey": "w+00000000+AAAA"},
        {"url": "http://127.0.0.1:8099", "vkey": 5},
        {"url": ["http://127.0.0.1:8099"], "vkey": "w+00000000+AAAA"},
    ],
    ids=["port-out-of-range", "port-not-a-number", "vkey-a-number", "url-a-list"],
)
def test_a_malformed_witness_entry_cannot_be_checked(
    bundle: Path, tmp_path: Path, entry: dict[str, Any]
) -> None:
    doc = json.loads((bundle / "witnesses.json").read_text())
    doc["witnesses"] = [entry]
    (bundle / "witnesses.json").write_text(json.dumps(doc))
    done = _cli(bundle, tmp_path)  # asks the witnesses: the URL is used, not only read
    assert done.returncode == 2, done.stdout + done.stderr
    report = json.loads(done.stdout)  # --json: the report says why, not a traceback
    assert report["code"] == 2 and "witnesses.json" in report["reason"], report


def test_unreadable_notes_and_checkpoints_cannot_be_checked(bundle: Path) -> None:
    note = bundle / "cosigned" / f"{SIGNED:012d}-0000000000000000.note"
    note.write_bytes(b"\xff\xfe not UTF-8")
    with pytest.raises(CannotCheck, match="unreadable note"):
        _verify(bundle)
    note.unlink()
    note.mkdir()
    with pytest.raises(CannotCheck, match="unreadable note"):
        _verify(bundle)
    note.rmdir()
    checkpoint = bundle / "checkpoints" / f"{SIGNED:012d}.json"
    checkpoint.unlink()
    checkpoint.mkdir()
    with pytest.raises(CannotCheck, match="checkpoints"):
        _verify(bundle)


def test_unusable_tiles_fall_back_to_the_records_own_hashes(bundle: Path) -> None:
    shutil.rmtree(bundle / "tiles")
    (bundle / "tiles").write_text("not a folder")
    report = _verify(bundle)
    assert report.ok and report.records == SIGNED, report


@pytest.mark.parametrize(
    "name", ["ledger.json", f"checkpoints/{SIGNED:012d}.json", "keys/checkpoint.pub"]
)
@pytest.mark.parametrize("kind", ["fifo", "link-to-dev-zero"])
def test_a_fifo_or_a_device_in_the_bundle_is_refused_before_it_is_read(
    bundle: Path, tmp_path: Path, name: str, kind: str
) -> None:
    target = bundle / name
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)  # opened for reading, it would block until someone writes
    else:
        target.symlink_to("/dev/zero")  # read whole, it would never end
    done = _cli(bundle, tmp_path, "--offline")
    assert done.returncode == 2, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["reason"] == f"{bundle / name}: not a regular file or folder", report


def test_a_link_loop_in_the_bundle_is_walked_once(bundle: Path) -> None:
    (bundle / "tiles" / "loop").symlink_to(bundle / "tiles")
    report = _verify(bundle)
    assert report.ok and report.records == SIGNED, report


def test_a_checkpoint_time_that_is_not_a_time_has_no_age() -> None:
    """A checkpoint's timestamp line is the log's text: naive, garbage or out of range."""
    assert seconds_since("2026-01-01T00:00:00") is None
    assert seconds_since("yesterday") is None
    assert seconds_since(None) is None
    assert seconds_since("2026-01-01T00:01:00Z", now=_at("2026-01-01T00:00:00Z")) == -60.0
    assert seconds_since("2026-01-01T00:00:00+01:00", now=_at("2026-01-01T00:00:00Z")) == 3600.0


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)
