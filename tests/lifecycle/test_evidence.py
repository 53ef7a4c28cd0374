"""Evidence packs: a fresh pack verifies offline; any altered file, proof or signature fails."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from governance.cli import app
from governance.decisions.service import DecisionService
from governance.ledger import Ledger, leaf_hash
from governance.lifecycle import PromotionRefused, rollback
from governance.lifecycle.evidence import (
    ABSENT_COMPARISON,
    CHECKPOINT_FILE,
    MANIFEST,
    PROMOTIONS_FILE,
    PUBLIC_KEY_FILE,
    REQUIRED_ARTIFACTS,
    EvidenceError,
    build_evidence,
    verify_evidence,
)
from governance.registry import mlflow as registry
from governance.settings import Settings

MODEL = "mortgage-denial"
DECISIONS = 30
ENV: dict[str, str | None] = dict.fromkeys(
    ("GOVERNANCE_HOME", "GOVERNANCE_MLFLOW_URI", "GOVERNANCE_LEDGER_URL", "GOVERNANCE_PROJECT")
)


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def write(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def flip(data: bytes) -> bytes:
    """Change one byte in the middle."""
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def rehash(files: dict[str, bytes], *names: str) -> None:
    """Update the manifest's hashes of ``names``, as a careful forger would."""
    manifest = json.loads(files[MANIFEST])
    for name in names:
        section = (
            manifest["content"] if name in manifest["content"] else manifest["ledger"]["files"]
        )
        section[name] = {
            "sha256": hashlib.sha256(files[name]).hexdigest(),
            "bytes": len(files[name]),
        }
    files[MANIFEST] = json.dumps(manifest).encode()


@pytest.fixture(scope="module")
def packed(
    trained: tuple[Path, Settings], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any], Settings]:
    """A pack of v1 of the shared trained project, after scoring some decisions with it."""
    root, settings = trained
    frame = pd.read_csv(root / "data" / "split" / "test.csv").head(DECISIONS)
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        svc = DecisionService(settings, ledger)
        for _ in svc.score_frame(MODEL, frame, version="1", caller="test", purpose="evidence"):
            pass
        # a real promotion event that leaves the shared registry alone: nothing to roll back to
        with pytest.raises(PromotionRefused):
            rollback(settings, ledger, MODEL, approver="ann", reason="drill", alias="evidence")
        out = tmp_path_factory.mktemp("evidence") / "pack.zip"
        summary = build_evidence(settings, ledger, MODEL, "1", out, seed=7)
    return out, summary, settings


def test_fresh_pack_verifies(packed: tuple[Path, dict[str, Any], Settings]) -> None:
    path, summary, settings = packed
    report = verify_evidence(path)
    assert report.ok, report.problem
    assert (report.model, report.version) == (MODEL, "1")
    files = members(path)
    assert report.files == len(files) - 1  # everything but the manifest itself
    assert summary["decisions"]["sampled"] == 20
    assert summary["decisions"]["population"] >= DECISIONS
    assert report.proofs == 20 + summary["promotions"] + 1  # decisions, promotions, the anchor
    trusted = settings.home / "keys" / "checkpoint.pub"
    assert verify_evidence(path, public_key=trusted).ok
    assert files[PUBLIC_KEY_FILE] == trusted.read_bytes()


def test_a_pack_reads_like_any_other_file(
    packed: tuple[Path, dict[str, Any], Settings],
) -> None:
    """It is made for reviewers: not the 0600 of the temporary file it was written to."""
    path = packed[0]
    ordinary = path.with_name("ordinary")
    ordinary.write_bytes(b"")
    assert path.stat().st_mode & 0o777 == ordinary.stat().st_mode & 0o777


def test_pack_contents(packed: tuple[Path, dict[str, Any], Settings], tmp_path: Path) -> None:
    path, summary, settings = packed
    files = members(path)
    manifest = json.loads(files[MANIFEST])
    for name in [*REQUIRED_ARTIFACTS, CHECKPOINT_FILE, PUBLIC_KEY_FILE, PROMOTIONS_FILE]:
        assert name in files, name
    with registry.tracking(settings) as client:
        run_id = client.get_model_version(MODEL, "1").run_id
        stored = Path(client.download_artifacts(run_id, "lineage.json", str(tmp_path)))
    assert files["lineage.json"] == stored.read_bytes(), "lineage exactly as logged with the run"
    # the run has no champion/challenger comparison: recorded, not silently missing
    assert "comparison.json" not in files
    assert manifest["subject"]["absent"] == {"comparison.json": ABSENT_COMPARISON}
    assert summary["absent"] == manifest["subject"]["absent"]
    # every hash in the manifest is the file's
    listed = {**manifest["content"], **manifest["ledger"]["files"]}
    assert set(listed) == set(files) - {MANIFEST}
    for name, entry in listed.items():
        assert entry["sha256"] == hashlib.sha256(files[name]).hexdigest()
    # the promotion history of the model, proven record by record
    history = json.loads(files[PROMOTIONS_FILE])
    assert any(e["action"] == "refuse" and e["requested"] == "rollback" for e in history)
    assert any(e["action"] == "register" and e["version"] == "1" for e in history)
    for e in history:
        assert f"ledger/proofs/{e['event_id']}.json" in files
    # sampled decisions are this version's, each with a proof whose leaf is its record
    sample = manifest["subject"]["decisions"]["sample"]
    assert len(sample) == len(set(sample)) == 20
    for rid in sample:
        proof = json.loads(files[f"ledger/proofs/{rid}.json"])
        record = json.loads(proof["record"])
        assert record["type"] == "decision" and record["body"]["model"]["version"] == "1"
        assert leaf_hash(proof["record"].encode()).hex() == proof["leaf_hash"]
    # no raw personal data, and the checkpoint covers the anchor
    anchor = json.loads(files[f"ledger/proofs/{manifest['ledger']['anchor']['record_id']}.json"])
    assert anchor["tree_size"] == manifest["ledger"]["checkpoint"]["size"]


def test_sample_is_seeded(packed: tuple[Path, dict[str, Any], Settings], tmp_path: Path) -> None:
    settings = packed[2]
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        for name, seed, sample in (("a", 7, 20), ("b", 7, 20), ("c", 8, 5)):
            build_evidence(
                settings, ledger, MODEL, "1", tmp_path / f"{name}.zip", seed=seed, sample=sample
            )
    chosen = {
        name: json.loads(members(tmp_path / f"{name}.zip")[MANIFEST])["subject"]["decisions"]
        for name in "abc"
    }
    assert chosen["a"]["sample"] == chosen["b"]["sample"]
    assert (chosen["a"]["seed"], len(chosen["a"]["sample"])) == (7, 20)
    assert (chosen["c"]["seed"], len(chosen["c"]["sample"])) == (8, 5)
    assert verify_evidence(tmp_path / "c.zip").ok
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "b.zip", "c.zip"], "no temp"


def _proof_of(kind: str) -> Callable[[dict[str, Any]], str]:
    def pick(manifest: dict[str, Any]) -> str:
        rid = {
            "decision": lambda: manifest["subject"]["decisions"]["sample"][0],
            "promotion": lambda: manifest["subject"]["promotions"][0],
            "anchor": lambda: manifest["ledger"]["anchor"]["record_id"],
        }[kind]()
        return f"ledger/proofs/{rid}.json"

    return pick


TAMPERED = [
    *REQUIRED_ARTIFACTS,
    "registry/version.json",
    PROMOTIONS_FILE,
    "README.txt",
    CHECKPOINT_FILE,
    PUBLIC_KEY_FILE,
    MANIFEST,
    "proof:decision",
    "proof:promotion",
    "proof:anchor",
]


@pytest.mark.parametrize("name", TAMPERED)
def test_altered_file_fails(
    packed: tuple[Path, dict[str, Any], Settings], tmp_path: Path, name: str
) -> None:
    path = packed[0]
    files = members(path)
    if name.startswith("proof:"):
        name = _proof_of(name.partition(":")[2])(json.loads(files[MANIFEST]))
    files[name] = flip(files[name])
    report = verify_evidence(write(tmp_path / "bad.zip", files))
    assert not report.ok
    assert report.problem and name in report.problem


def test_every_file_is_covered(
    packed: tuple[Path, dict[str, Any], Settings], tmp_path: Path
) -> None:
    """Whatever file of the pack changes (each proof included), verification fails."""
    path = packed[0]
    original = members(path)
    for name in original:
        files = dict(original)
        files[name] = flip(files[name])
        report = verify_evidence(write(tmp_path / "bad.zip", files))
        assert not report.ok, name
    for name in original:  # removing a file fails too
        files = {k: v for k, v in original.items() if k != name}
        assert not verify_evidence(write(tmp_path / "bad.zip", files)).ok, name
    files = {**original, "extra.txt": b"smuggled"}
    report = verify_evidence(write(tmp_path / "bad.zip", files))
    assert report.problem == "extra.txt is in the zip but not in manifest.json"


def _waiver(files: dict[str, bytes]) -> None:
    files["ledger/waiver.txt"] = b"Fairness exception approved by the board."
    rehash(files, "ledger/waiver.txt")  # listed, with its hash, under ledger.files


def _manifest_member(*where: str) -> Callable[[dict[str, bytes]], None]:
    def add(files: dict[str, bytes]) -> None:
        manifest = json.loads(files[MANIFEST])
        section = manifest
        for key in where:
            section = section[key]
        section["verified_by"] = "Big4 LLP"
        files[MANIFEST] = json.dumps(manifest).encode()

    return add


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_waiver, "ledger/waiver.txt is not a ledger file of a pack"),
        (_manifest_member("ledger"), "ledger must hold exactly files, checkpoint and anchor"),
        (_manifest_member("ledger", "anchor"), "ledger.anchor must hold exactly record_id"),
    ],
    ids=["file-listed-under-ledger", "ledger-member", "anchor-member"],
)
def test_additions_nothing_vouches_for_fail(
    packed: tuple[Path, dict[str, Any], Settings],
    tmp_path: Path,
    change: Callable[[dict[str, bytes]], None],
    problem: str,
) -> None:
    """The manifest's ledger section is outside the anchor's digest (it names the anchor): a
    file or a claim added there, however well hashed, is refused rather than shown as part of
    a verified pack."""
    files = members(packed[0])
    assert verify_evidence(write(tmp_path / "same.zip", dict(files))).ok  # rewritten, unaltered
    change(files)
    report = verify_evidence(write(tmp_path / "bad.zip", files))
    assert not report.ok and problem in str(report.problem), report.problem


def _comment(path: Path) -> None:
    with zipfile.ZipFile(path, "a") as zf:
        zf.comment = b"Reviewed and approved: no findings."


def _folder(path: Path) -> None:
    with zipfile.ZipFile(path, "a") as zf:
        zf.mkdir("FINDINGS_WAIVED")


def _entry_comment(path: Path) -> None:
    files = members(path)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            if name == MANIFEST:
                info.comment = b"signed off"
            zf.writestr(info, data)


def _before(path: Path) -> None:
    path.write_bytes(b"#!/bin/sh\necho approved\nexit 0\n" + path.read_bytes())


def _after(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"approved")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_comment, "the zip has a comment"),
        (_folder, "folder entry 'FINDINGS_WAIVED/'"),
        (_entry_comment, f"the zip entry '{MANIFEST}' has a comment"),
        (_before, "bytes outside the zip's files"),
        (_after, "bytes outside the zip's files"),
    ],
    ids=["zip-comment", "folder", "entry-comment", "bytes-before", "bytes-after"],
)
def test_anything_else_in_the_zip_fails(
    packed: tuple[Path, dict[str, Any], Settings],
    tmp_path: Path,
    change: Callable[[Path], None],
    problem: str,
) -> None:
    """What a zip tool lists or runs besides the hashed files (a comment, a folder, a script
    before the first entry, bytes after the last) is refused: every file still matches."""
    bad = tmp_path / "bad.zip"
    bad.write_bytes(packed[0].read_bytes())
    change(bad)
    assert members(bad).items() >= {k: v for k, v in members(packed[0]).items()}.items()
    report = verify_evidence(bad)
    assert not report.ok and problem in str(report.problem), report.problem


@pytest.mark.parametrize("name", ["model_card/model_card.md", "reports/fairness.json"])
def test_altered_document_with_updated_manifest_fails(
    packed: tuple[Path, dict[str, Any], Settings], tmp_path: Path, name: str
) -> None:
    """Rewriting a document and its hash is caught by the anchor record in the ledger."""
    files = members(packed[0])
    files[name] = files[name].replace(b"a", b"e", 1)
    rehash(files, name)
    report = verify_evidence(write(tmp_path / "bad.zip", files))
    assert not report.ok and "anchor" in str(report.problem)


def test_altered_manifest_subject_fails(
    packed: tuple[Path, dict[str, Any], Settings], tmp_path: Path
) -> None:
    files = members(packed[0])
    manifest = json.loads(files[MANIFEST])
    manifest["subject"]["created"] = "2020-01-01T00:00:00.000000Z"
    files[MANIFEST] = json.dumps(manifest).encode()
    report = verify_evidence(write(tmp_path / "bad.zip", files))
    assert not report.ok and "anchor digest does not match" in str(report.problem)


def _edit_proof(
    files: dict[str, bytes], name: str, change: Callable[[dict[str, Any]], None]
) -> None:
    proof = json.loads(files[name])
    change(proof)
    files[name] = json.dumps(proof).encode()
    rehash(files, name)


def _swap_audit_hash(proof: dict[str, Any]) -> None:
    proof["proof"][0] = hashlib.sha256(b"forged").hexdigest()


def _forge_record(proof: dict[str, Any]) -> None:
    record = json.loads(proof["record"])
    record["body"]["outcome"] = "approve" if record["body"]["outcome"] == "deny" else "deny"
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    proof["record"] = text
    proof["leaf_hash"] = leaf_hash(text.encode()).hex()


@pytest.mark.parametrize(
    "change", [_swap_audit_hash, _forge_record], ids=["audit-path", "decision-record"]
)
def test_altered_proof_fails(
    packed: tuple[Path, dict[str, Any], Settings],
    tmp_path: Path,
    change: Callable[[dict[str, Any]], None],
) -> None:
    files = members(packed[0])
    name = _proof_of("decision")(json.loads(files[MANIFEST]))
    _edit_proof(files, name, change)
    report = verify_evidence(write(tmp_path / "bad.zip", files))
    assert not report.ok
    assert "inclusion proof" in str(report.problem) and "does not verify" in str(report.problem)


def test_forged_checkpoint_fails(
    packed: tuple[Path, dict[str, Any], Settings], tmp_path: Path
) -> None:
    files = members(packed[0])
    cp = json.loads(files[CHECKPOINT_FILE])
    cp["size"] += 1
    files[CHECKPOINT_FILE] = json.dumps(cp).encode()
    rehash(files, CHECKPOINT_FILE)
    report = verify_evidence(write(tmp_path / "bad.zip", files))
    assert not report.ok and "signature does not verify" in str(report.problem)


def test_untrusted_key_fails(packed: tuple[Path, dict[str, Any], Settings], tmp_path: Path) -> None:
    other = Ed25519PrivateKey.generate().public_key()
    pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "trusted.pub").write_bytes(pem)
    report = verify_evidence(packed[0], public_key=tmp_path / "trusted.pub")
    assert not report.ok and "is not the trusted key" in str(report.problem)
    # a forger who re-signs with their own key and ships it is caught by the trusted key too
    files = members(packed[0])
    files[PUBLIC_KEY_FILE] = pem
    rehash(files, PUBLIC_KEY_FILE)
    report = verify_evidence(write(tmp_path / "bad.zip", files))
    assert not report.ok and "signature does not verify" in str(report.problem)


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    report = verify_evidence(tmp_path / "x.zip")
    assert not report.ok and "cannot read" in str(report.problem)


def test_unknown_version(trained: tuple[Path, Settings], tmp_path: Path) -> None:
    _, settings = trained
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        size = ledger.size()
        with pytest.raises(EvidenceError, match="has no version '42'"):
            build_evidence(settings, ledger, MODEL, "42", tmp_path / "x.zip")
        assert ledger.size() == size
    assert not list(tmp_path.iterdir())


def test_cli(packed: tuple[Path, dict[str, Any], Settings], tmp_path: Path) -> None:
    root = packed[2].project_dir
    runner = CliRunner()
    out = tmp_path / "cli.zip"
    result = runner.invoke(
        app, ["evidence", MODEL, "1", str(out), "--sample", "3", "--project", str(root)], env=ENV
    )
    assert result.exit_code == 0, result.output
    assert "3 of" in result.stdout and "absent: comparison.json" in result.stdout
    result = runner.invoke(app, ["evidence", "verify", str(out)], env=ENV)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {out} ({MODEL} version 1)")
    files = members(out)
    files["model_card/model_card.html"] = flip(files["model_card/model_card.html"])
    write(out, files)
    result = runner.invoke(app, ["evidence", "verify", str(out), "--json"], env=ENV)
    assert result.exit_code == 1
    assert "model_card/model_card.html" in json.loads(result.stdout)["problem"]
    result = runner.invoke(app, ["evidence", "verify", str(out)], env=ENV)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: evidence pack does not verify: model_card/model_card")


def test_pack_carries_prov_signature_and_statement(
    packed: tuple[Path, dict[str, Any], Settings],
) -> None:
    from prov.model import ProvDocument, ProvEntity

    from governance.core import signing
    from governance.lifecycle.provenance import (
        PACK_PROV,
        PACK_PUBLIC_KEY,
        PACK_SIGNATURE,
        PACK_STATEMENT,
    )

    path, _, settings = packed
    files = members(path)
    manifest = json.loads(files[MANIFEST])
    assert manifest["subject"]["signature"] == {"verified": True, "problem": None}
    doc = ProvDocument.deserialize(content=files[PACK_PROV].decode(), format="json")
    lineage = registry.resolve(settings, MODEL, "1")
    entities = {str(e.identifier) for e in doc.get_records(ProvEntity)}
    assert {f"data:{d['md5']}" for d in lineage["datasets"]} <= entities
    assert (
        hashlib.sha256(files[PACK_SIGNATURE]).hexdigest()
        == (lineage["tags"]["signing.signature_sha256"])
    )
    assert (
        hashlib.sha256(files[PACK_STATEMENT]).hexdigest()
        == (lineage["tags"]["signing.provenance_sha256"])
    )
    assert files[PACK_PUBLIC_KEY] == settings.signing_public_key.read_bytes()
    # the statement checks out offline with the packed key alone
    key = signing.load_public_key(settings.signing_public_key)
    statement = signing.open_envelope(files[PACK_STATEMENT], key)
    assert signing.check_statement(statement, lineage=json.loads(files["lineage.json"])) == []


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("folder", "OUT {out}: is a directory"),
        ("file/pack.zip", "is not a directory"),
        ("HOME/pack.zip", "inside the state directory"),
    ],
)
def test_cli_refuses_an_out_it_cannot_write_and_records_no_anchor(
    trained: tuple[Path, Settings], tmp_path: Path, where: str, message: str
) -> None:
    root, settings = trained
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("mine\n")
    out = settings.home / where[5:] if where.startswith("HOME/") else tmp_path / where
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        size = ledger.size()
    listed = sorted(tmp_path.rglob("*"))
    result = CliRunner().invoke(
        app, ["evidence", MODEL, "1", str(out), "--project", str(root)], env=ENV
    )
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert message.format(out=out) in lines[0]
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        assert ledger.size() == size
    assert sorted(tmp_path.rglob("*")) == listed
    assert not [p for p in settings.home.iterdir() if p.name.endswith(".tmp")]


def test_build_prepares_the_zip_before_recording_the_anchor(
    trained: tuple[Path, Settings], tmp_path: Path
) -> None:
    _, settings = trained
    (tmp_path / "file").write_text("mine\n")
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        size = ledger.size()
        with pytest.raises(EvidenceError, match="is not a regular file"):
            build_evidence(settings, ledger, MODEL, "1", tmp_path)
        with pytest.raises(EvidenceError, match="cannot write the evidence pack"):
            build_evidence(settings, ledger, MODEL, "1", tmp_path / "file" / "pack.zip")
        assert ledger.size() == size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize("limit", [100, None], ids=["zip64-records", "zip64-entries"])
def test_a_zip64_pack_is_read_as_written(
    packed: tuple[Path, dict[str, Any], Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    limit: int | None,
) -> None:
    """A pack of 2 GiB or more is a zip64 archive (zip64 end records before the end record);
    one of 65,535 entries or more too. Both hold nothing outside their files: both verify.
    (The limit is lowered to have a small pack written as a large one is.)"""
    from governance.lifecycle import evidence

    files = members(packed[0])
    if limit is not None:
        monkeypatch.setattr(zipfile, "ZIP64_LIMIT", limit)
    else:
        monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 4)
    out = tmp_path / "big.zip"
    evidence._write_zip(tmp_path / "big.tmp", out, files)
    assert b"PK\x06\x06" in out.read_bytes()[-200:]  # written as zip64
    monkeypatch.undo()
    report = verify_evidence(out)
    assert report.ok, report.problem
    out.write_bytes(out.read_bytes()[:-22] + b"stray" + out.read_bytes()[-22:])
    assert not verify_evidence(out).ok  # bytes between the records are still refused


def test_a_zip64_record_the_end_record_contradicts_is_refused(
    packed: tuple[Path, dict[str, Any], Settings], tmp_path: Path
) -> None:
    """zip64 end records slipped before an end record that counts one entry fewer: Python reads
    the zip64 counts and lists every file, zip tools that follow the specification read the end
    record and see bytes outside the files. The two must agree."""
    import struct

    data = packed[0].read_bytes()
    body, end = data[:-22], data[-22:]
    sig, _, _, _, n, size, offset, _ = struct.unpack("<4sHHHHIIH", end)
    zip64 = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, size, offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, len(body), 1)
    honest = struct.pack("<4sHHHHIIH", sig, 0, 0, n, n, size, offset, 0)
    fewer = struct.pack("<4sHHHHIIH", sig, 0, 0, n - 1, n - 1, size, offset, 0)
    (tmp_path / "honest.zip").write_bytes(body + zip64 + locator + honest)
    (tmp_path / "fewer.zip").write_bytes(body + zip64 + locator + fewer)
    assert verify_evidence(tmp_path / "honest.zip").ok
    with zipfile.ZipFile(tmp_path / "fewer.zip") as zf:
        assert len(zf.infolist()) == n  # Python goes by the zip64 record
    report = verify_evidence(tmp_path / "fewer.zip")
    assert not report.ok and "bytes outside the zip's files" in str(report.problem)
