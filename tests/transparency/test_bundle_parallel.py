"""Bundle verification split over two processes, and its faster parse, against the reference.

``verify_bundle(workers=2)`` walks the second half of ``records.jsonl`` in a helper process;
whatever is done to the records, its report (code, records, first bad record, reason) must be
the one a single process gives, so the first bad record is still the first. The orjson fast
path of :func:`bundle_row` must give exactly the columns the standard library's parse gives.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.ledger import Entry, Ledger, _verify
from governance.ledger.bundle_rows import BundleRows, _parsed_row, bundle_row, split_point
from governance.ledger.records import record_hash
from governance.transparency import WitnessConfig, publish, write_bundle
from governance.transparency.bundle import verify_bundle

N = 240


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of ``N`` varied records (PII, big integers, unicode), tiles included."""
    root = tmp_path_factory.mktemp("parallel")
    home = root / "home"
    with Ledger.open(f"sqlite:///{root / 'ledger.db'}", home=home) as ledger:
        entries = []
        for i in range(N):
            body: dict[str, Any] = {
                "model": {"name": "hmda", "version": str(1 + i % 3)},
                "outcome": "deny" if i % 2 else "approve",
                "n": i,
                "big": 2**70 + i,  # orjson reads it as a float; the columns must not care
                "text": "é☃\u2028" * (i % 7) + "x" * (i * 13 % 300),
            }
            if i % 5 == 0:
                entries.append(Entry("decision", body, subject_id=f"s-{i}", pii={"name": f"P {i}"}))
            else:
                entries.append(Entry("decision", body))
        ledger.append_many(entries[: N // 3])
        ledger.checkpoint()
        ledger.append_many(entries[N // 3 :])
        publish(ledger, WitnessConfig(), tiles_dir=root / "tiles")
        out = root / "bundle"
        write_bundle(
            out,
            store=ledger.store,
            meta=ledger.store.meta(),
            public_key=ledger.public_key,
            folder=ledger.checkpoint_dir.path,
            config=WitnessConfig(),
            tiles_dir=root / "tiles",
        )
    return out


def _report(path: Path, workers: int) -> tuple[Any, ...]:
    r = verify_bundle(path, fetch=False, workers=workers)
    return (r.code, r.records, r.first_bad, r.reason)


def _copy(bundle: Path, tmp: Path, tiles: bool) -> Path:
    target = tmp / "copy"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(bundle, target)
    if not tiles:
        shutil.rmtree(target / "tiles")
    return target


def test_an_intact_bundle_verifies_in_two_processes(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper process really walks the second half (no silent fallback to one process)."""
    split = split_point(bundle / "records.jsonl")
    assert split is not None
    helpers: list[tuple[int, int | None]] = []
    finish = _verify._VerifyHelper.finish

    def watched(self: Any, *args: Any) -> Any:
        walker = finish(self, *args)
        helpers.append((self.start, self._proc.returncode))
        return walker

    monkeypatch.setattr(_verify._VerifyHelper, "finish", watched)
    assert _report(bundle, 2) == (0, N, None, None)
    assert helpers == [(split.seq, 0)]
    assert _report(bundle, 1) == (0, N, None, None)
    assert len(helpers) == 1


_EDITS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "delete", "swap", "duplicate", "garbage", "truncate"]),
        st.integers(0, N - 1),
        st.integers(0, 4000),
    ),
    min_size=1,
    max_size=3,
)


def _edit(lines: list[bytes], kind: str, at: int, where: int) -> None:
    at = min(at, len(lines) - 1)
    if kind == "flip":
        line = bytearray(lines[at])
        line[where % len(line)] ^= 0x01 if line[where % len(line)] != 0x0B else 0x02
        lines[at] = bytes(line)
    elif kind == "delete" and len(lines) > 1:
        del lines[at]
    elif kind == "swap" and at + 1 < len(lines):
        lines[at], lines[at + 1] = lines[at + 1], lines[at]
    elif kind == "duplicate":
        lines.insert(at, lines[at])
    elif kind == "garbage":
        lines.insert(at, b'{"not": "a record"}')
    elif kind == "truncate":
        del lines[at + 1 :]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=_EDITS, tiles=st.booleans())
def test_two_processes_report_what_one_does(
    bundle: Path, tmp_path: Path, edits: list[tuple[str, int, int]], tiles: bool
) -> None:
    copy = _copy(bundle, tmp_path, tiles)
    records = copy / "records.jsonl"
    lines = records.read_bytes().split(b"\n")[:-1]
    for kind, at, where in edits:
        _edit(lines, kind, at, where)
    records.write_bytes(b"".join(line + b"\n" for line in lines))
    one = _report(copy, 1)
    assert one[0] != 0 or lines == bundle.joinpath("records.jsonl").read_bytes().split(b"\n")[:-1]
    assert _report(copy, 2) == one


@pytest.mark.parametrize("tiles", [True, False])
def test_the_first_of_two_changed_records_is_named(
    bundle: Path, tmp_path: Path, tiles: bool
) -> None:
    """One changed record in each half: the one in the first half is named, in both modes.

    With the published tiles the changed record is named; without them its own hash is all
    there is, and the chain breaks at the record after it (as in one process).
    """
    after = 0 if tiles else 1
    copy = _copy(bundle, tmp_path, tiles)
    records = copy / "records.jsonl"
    split = split_point(records)
    assert split is not None
    lines = records.read_bytes().split(b"\n")[:-1]
    for seq in (split.seq - 1, split.seq + 3):
        lines[seq] = lines[seq].replace(b'"outcome":"', b'"outcome":"X', 1)
    records.write_bytes(b"".join(line + b"\n" for line in lines))
    for workers in (1, 2):
        code, _, first_bad, _ = _report(copy, workers)
        assert (code, first_bad) == (1, split.seq - 1 + after)
    lines[split.seq - 1] = bundle.joinpath("records.jsonl").read_bytes().split(b"\n")[split.seq - 1]
    records.write_bytes(b"".join(line + b"\n" for line in lines))
    named = split.seq + 3 + after
    assert _report(copy, 2)[:3] == _report(copy, 1)[:3] == (1, named, named)


@given(lengths=st.lists(st.integers(0, 50), min_size=1, max_size=40), last=st.booleans())
def test_split_point_names_the_line_it_starts(
    tmp_path_factory: pytest.TempPathFactory, lengths: list[int], last: bool
) -> None:
    path = tmp_path_factory.mktemp("split") / "records.jsonl"
    lines = [bytes([65 + i % 26]) * n for i, n in enumerate(lengths)]
    text = b"\n".join(lines) + (b"\n" if last else b"")
    path.write_bytes(text)
    split = split_point(path)
    if split is None:
        return
    assert split.offset >= len(text) // 2
    assert text[: split.offset].count(b"\n") == split.seq
    assert split.offset == 0 or text[split.offset - 1 : split.offset] == b"\n"
    assert split.before == lines[split.seq - 1]
    rows = [
        row
        for batch in BundleRows(path, False, {split.seq: split.offset}).rows(split.seq)
        for row in batch
    ]
    assert [row[1] for row in rows] == lines[split.seq :][: len(rows)]


_TEXT = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    rid=_TEXT,
    rtype=_TEXT,
    ts=_TEXT,
    idx=st.one_of(
        st.none(), st.dictionaries(st.sampled_from(["subject", "model", "version", "ref"]), _TEXT)
    ),
    hexkey=st.booleans(),
    ascii_only=st.booleans(),
    dup=st.booleans(),
    flip=st.one_of(st.none(), st.integers(0, 10_000)),
    v1=st.booleans(),
)
def test_the_fast_parse_gives_the_reference_columns(
    rid: Any,
    rtype: Any,
    ts: Any,
    idx: Any,
    hexkey: bool,
    ascii_only: bool,
    dup: bool,
    flip: int | None,
    v1: bool,
) -> None:
    if hexkey and isinstance(idx, dict):
        idx["subject"] = "ab" * 32
    doc = {"body": {"x": 2**65, "s": "\ud800" if dup else "é"}, "id": rid, "idx": idx}
    doc.update({"prev": "00", "seq": 1, "ts": ts, "type": rtype})
    data = json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    if dup:  # a duplicate key: both parsers keep the last
        data = data[:-1] + b',"id":"dup"}'
    if flip is not None:
        buf = bytearray(data)
        buf[flip % len(buf)] ^= 0x20
        data = bytes(buf)
    expected = (7, data, record_hash(data), *_parsed_row(data, v1))
    assert bundle_row(7, data, None, v1) == expected


@pytest.mark.parametrize("seq", [0, N // 2 - 1, N // 2 + 1, N - 1])
def test_deep_verification_reports_the_same_in_both_modes(
    bundle: Path, tmp_path: Path, seq: int
) -> None:
    """With ``deep`` the helper walks deep too: an intact bundle verifies, and a changed record
    (one space added) is named alike by one process and by two."""
    copy = _copy(bundle, tmp_path, tiles=True)
    records = copy / "records.jsonl"
    assert verify_bundle(copy, fetch=False, deep=True, workers=2).ok
    lines = records.read_bytes().split(b"\n")[:-1]
    lines[seq] = lines[seq].replace(b'"outcome":', b'"outcome": ', 1)
    records.write_bytes(b"".join(line + b"\n" for line in lines))
    reports = [verify_bundle(copy, fetch=False, deep=True, workers=w) for w in (1, 2)]
    assert [(r.code, r.first_bad, r.reason) for r in reports] == [
        (reports[0].code, seq, reports[0].reason)
    ] * 2
    assert reports[0].code == 1
