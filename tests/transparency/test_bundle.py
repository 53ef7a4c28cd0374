"""Audit bundles and key-free verification from the command line.

A bundle verifies in an empty environment (no state directory, no project, no network), holds
none of the secret keys' bytes, and a changed byte in it is named; ``--bundle`` and
``--checkpoints`` refuse missing, empty or foreign folders with exit code 2.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from governance.ledger import Entry, Ledger
from governance.ledger.checkpoint import verifier_key

GOVERNANCE = str(Path(sys.executable).with_name("governance"))


def _run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GOVERNANCE, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GOVERNANCE_HOME": str(home),
        "GOVERNANCE_LEDGER_URL": f"sqlite:///{home / 'ledger.db'}",
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A ledger with 40 decisions and two checkpoints (the newest covering 35)."""
    home = tmp_path / "state"
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        ledger.append_many(
            [
                Entry(
                    "decision",
                    {"model": {"name": "hmda", "version": "2"}, "outcome": "deny", "n": i},
                    subject_id=f"applicant-{i}",
                    pii={"name": f"Person {i}"},
                )
                for i in range(20)
            ]
        )
        ledger.checkpoint()
        ledger.append_many([Entry("decision", {"n": i}) for i in range(20, 35)])
    assert _run("audit", "checkpoint", env=_env(home)).returncode == 0
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        ledger.append_many([Entry("decision", {"n": i}) for i in range(35, 40)])
    return home


def _bundle(home: Path, out: Path) -> dict[str, Any]:
    done = _run("audit", "bundle", str(out), "--json", env=_env(home))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _empty_env(tmp_path: Path) -> dict[str, str]:
    """No state directory, no project: PATH and a HOME that holds nothing."""
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(nowhere), "LANG": "C.UTF-8"}
    if "PYTHONPATH" in os.environ:  # the code under test, when it is not the installed one
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def test_a_bundle_verifies_with_nothing_else(home: Path, tmp_path: Path) -> None:
    summary = _bundle(home, tmp_path / "bundle")
    assert summary["records"] == 35 and summary["not_bundled"] == 5
    shutil.rmtree(home)  # the operator's state is gone
    env = _empty_env(tmp_path)
    done = _run(
        "audit",
        "verify",
        "--bundle",
        str(tmp_path / "bundle"),
        "--json",
        env=env,
        cwd=tmp_path / "nowhere",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] and doc["records"] == 35 and doc["first_bad"] is None
    assert doc["checkpoints"] == 2 and doc["witnessed_size"] is None and doc["quorum"] == 0
    assert not (tmp_path / "nowhere" / ".governance").exists()  # reading created nothing


def test_a_bundle_reads_like_any_other_folder(home: Path, tmp_path: Path) -> None:
    """It is made for others to read: not the 0700 of the temporary folder it was built in."""
    _bundle(home, tmp_path / "bundle")
    (tmp_path / "ordinary").mkdir()  # what this umask gives a folder (the CLI runs with it)
    assert (tmp_path / "bundle").stat().st_mode & 0o777 == (
        tmp_path / "ordinary"
    ).stat().st_mode & 0o777


def test_a_bundle_holds_no_secret(home: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    _bundle(home, tmp_path / "bundle")
    secrets: list[bytes] = []
    for path in (home / "keys").iterdir():
        data = path.read_bytes()
        if path.suffix == ".pub":
            continue
        secrets.append(data)
        if path.suffix == ".pem":
            key = serialization.load_pem_private_key(data, password=None)
            secrets.append(
                key.private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
            )
        else:
            secrets.append(data.strip())
    assert len(secrets) >= 4
    variants = {v for s in secrets for v in (s, s.hex().encode(), base64.b64encode(s))}
    for path in (tmp_path / "bundle").rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            for secret in variants:
                assert secret not in blob, f"{path} holds a secret key's bytes"
    assert b"Person 3" not in (tmp_path / "bundle" / "records.jsonl").read_bytes()


@pytest.mark.parametrize("seq", [0, 13, 34])
def test_one_changed_byte_is_named(home: Path, tmp_path: Path, seq: int) -> None:
    bundle = tmp_path / "bundle"
    _bundle(home, bundle)
    records = bundle / "records.jsonl"
    lines = records.read_bytes().split(b"\n")
    at = lines[seq].index(b'"n":') + 4
    lines[seq] = (
        lines[seq][:at] + (b"7" if lines[seq][at : at + 1] != b"7" else b"8") + lines[seq][at + 1 :]
    )
    records.write_bytes(b"\n".join(lines))
    done = _run("audit", "verify", "--bundle", str(bundle), "--json", env=_empty_env(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["first_bad"] == seq, doc


def test_missing_empty_or_foreign_inputs_exit_2(home: Path, tmp_path: Path) -> None:
    env = _env(home)
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "missing", tmp_path / "empty"):
        for flag in ("--bundle", "--checkpoints"):
            done = _run("audit", "verify", flag, str(folder), env=env)
            assert done.returncode == 2, (flag, folder, done.stdout, done.stderr)
            assert done.stderr.startswith("error: could not check") and not done.stdout
    other = tmp_path / "other"
    with Ledger.open(f"sqlite:///{other / 'ledger.db'}", home=other) as ledger:
        ledger.append("decision", {"n": 1})
        ledger.checkpoint()
    foreign = _run("audit", "verify", "--checkpoints", str(other / "checkpoints"), env=env)
    assert foreign.returncode == 2 and "other ledgers" in foreign.stderr, foreign.stderr
    nothing = _run("audit", "verify", env=_env(tmp_path / "no-ledger"))
    assert nothing.returncode == 2 and "no ledger" in nothing.stderr, nothing.stderr
    assert not (tmp_path / "no-ledger" / "ledger.db").exists()


def test_the_exported_folder_is_accepted_as_the_readme_says_to_copy_it(
    home: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(home / "checkpoints", copy)  # `cp -r .governance/checkpoints COPY`
    env = _env(home)
    for folder in (copy, next(copy.iterdir())):
        done = _run("audit", "verify", "--checkpoints", str(folder), "--json", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["checkpoints"] == 2
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        ledger.append("decision", {"n": 1})
        ledger.checkpoint()  # the copy now misses this one...
    import sqlite3

    conn = sqlite3.connect(home / "ledger.db")
    try:
        conn.execute("DROP TRIGGER IF EXISTS records_no_delete")
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DELETE FROM records WHERE seq >= 30")
        conn.execute("DELETE FROM checkpoints")
        conn.commit()
    finally:
        conn.close()
    shutil.rmtree(home / "checkpoints")
    done = _run("audit", "verify", "--checkpoints", str(copy), "--json", env=env)
    assert done.returncode == 1  # ...but still covers 35 records: a truncation
    assert json.loads(done.stdout)["first_bad"] == 30


def test_prove_never_signs(home: Path) -> None:
    env = _env(home)
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        covered, uncovered = ledger.get_seq(3), ledger.get_seq(37)
        stored = len(ledger.checkpoints())
    assert covered is not None and uncovered is not None
    assert _run("audit", "prove", covered.id, env=env).returncode == 0
    done = _run("audit", "prove", uncovered.id, env=env)
    assert done.returncode == 2 and "audit checkpoint" in done.stderr, done.stderr
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        assert len(ledger.checkpoints()) == stored  # nothing was signed
    asked = _run("audit", "prove", uncovered.id, "--checkpoint", "--json", env=env)
    assert asked.returncode == 0 and json.loads(asked.stdout)["tree_size"] == 40


def test_vkey_and_witness_configuration(home: Path) -> None:
    env = _env(home)
    vkey = _run("audit", "vkey", env=env)
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        assert vkey.stdout.strip() == verifier_key(ledger.origin, ledger.public_key)
    w = home.parent / "w1"
    created = _run("witness", "init", "--home", str(w), "--name", "witness.example/w1")
    wkey = created.stdout.strip()
    added = _run("witness", "add", "http://127.0.0.1:9", wkey, "--quorum", "1", env=env)
    assert added.returncode == 0, added.stderr
    listed = json.loads(_run("witness", "list", "--json", env=env).stdout)
    assert listed["quorum"] == 1 and listed["witnesses"][0]["vkey"] == wkey
    bad = _run("witness", "add", "http://127.0.0.1:9", vkey.stdout.strip(), env=env)
    assert bad.returncode == 1 and "not a witness key" in bad.stderr
    # witnesses configured but unreachable and nothing cosigned: cannot check
    done = _run("audit", "verify", "--json", env=env)
    assert done.returncode == 2 and json.loads(done.stdout)["code"] == 2
    removed = _run("witness", "remove", "witness.example/w1", "--quorum", "0", env=env)
    assert removed.returncode == 0, removed.stderr
    assert _run("audit", "verify", env=env).returncode == 0
