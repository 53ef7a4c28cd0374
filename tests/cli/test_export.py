"""``governance audit export OUT``: hostile OUTs are refused and leave the ledger as it was."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from governance.cli import app
from governance.ledger import Ledger

RECORDS = 5
SQLITE_MAGIC = b"SQLite format 3\x00"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A state directory holding a small real ledger of ``RECORDS`` decisions."""
    home = tmp_path / "home"
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as book:
        book.append_many(
            {"type": "decision", "body": {"outcome": "deny", "n": i}, "subject_id": f"S-{i}"}
            for i in range(RECORDS)
        )
    return home


def export(home: Path, *args: str) -> Any:
    env = {
        "GOVERNANCE_HOME": str(home),
        "GOVERNANCE_LEDGER_URL": None,
        "GOVERNANCE_MLFLOW_URI": None,
        "GOVERNANCE_PROJECT": None,
    }
    project = str(home.parent)
    return CliRunner().invoke(app, ["audit", "export", *args, "--project", project], env=env)


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def assert_intact(home: Path) -> None:
    """The ledger is still a SQLite ledger holding every record, and its chain verifies."""
    assert (home / "ledger.db").read_bytes()[:16] == SQLITE_MAGIC
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as book:
        assert book.size() == RECORDS
        assert book.verify().ok


def assert_refused(result: Any, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def _symlink_to_ledger(home: Path, tmp: Path) -> Path:
    link = tmp / "innocent.jsonl"
    link.symlink_to(home / "ledger.db")
    return link


def _fifo(home: Path, tmp: Path) -> Path:
    os.mkfifo(tmp / "fifo")
    return tmp / "fifo"


def _folder(home: Path, tmp: Path) -> Path:
    (tmp / "folder").mkdir()
    return tmp / "folder"


CASES: dict[str, tuple[Callable[[Path, Path], Path | str], str]] = {
    "the ledger itself": (lambda h, t: h / "ledger.db", "is this project's ledger: refusing"),
    "its write-ahead log": (lambda h, t: h / "ledger.db-wal", "is this project's ledger: refusing"),
    "the ledger via ..": (
        lambda h, t: h / "keys" / ".." / "ledger.db",
        "is this project's ledger: refusing",
    ),
    "a link to the ledger": (_symlink_to_ledger, "is this project's ledger: refusing"),
    "inside the state directory": (lambda h, t: h / "export.jsonl", "inside the state directory"),
    "a directory": (_folder, "is a directory"),
    "a FIFO, not a regular file": (_fifo, "is not a regular file"),
    "a missing parent": (lambda h, t: t / "missing" / "x.jsonl", "does not exist"),
    "a file as parent": (lambda h, t: h / ".." / "outside.txt" / "x.jsonl", "is not a directory"),
    "an empty name": (lambda h, t: "", "not a file name"),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_hostile_out_is_refused_and_nothing_is_written(
    home: Path, tmp_path: Path, case: str, fmt: str
) -> None:
    make, message = CASES[case]
    (tmp_path / "outside.txt").write_text("mine\n")
    out = make(home, tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = export(home, str(out), "--format", fmt)
    assert_refused(result, message)
    assert_intact(home)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "outside.txt").read_text() == "mine\n"


def test_a_record_that_does_not_parse_fails_the_export_and_leaves_no_partial_file(
    home: Path, tmp_path: Path
) -> None:
    conn = sqlite3.connect(home / "ledger.db", isolation_level=None)
    try:  # as an attacker with database access would: around the append-only triggers
        triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger'")
        saved = triggers.fetchall()
        conn.execute("BEGIN IMMEDIATE")
        for name, _ in saved:
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("UPDATE records SET data = ? WHERE seq = 3", (b"{not json",))
        for _, ddl in saved:
            conn.execute(ddl)
        conn.execute("COMMIT")
    finally:
        conn.close()
    out = tmp_path / "out.jsonl"
    result = export(home, str(out))
    assert_refused(result, "seq 3")
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_export_writes_every_record_and_replaces_an_earlier_export(
    home: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"out.{fmt}"
    out.write_text("an earlier export\n")
    result = export(home, str(out), "--format", fmt)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"exported {RECORDS} records to {out}\n"
    if fmt == "jsonl":
        seqs = [json.loads(line)["seq"] for line in out.read_text().splitlines()]
    else:
        import pandas as pd

        seqs = pd.read_parquet(out)["seq"].tolist()
    assert seqs == list(range(RECORDS))
    assert leftovers(tmp_path) == []
    assert_intact(home)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_sigterm_mid_export_leaves_nothing_behind(tmp_path: Path, fmt: str) -> None:
    """SIGTERM (a CI job cancelled, a container stopped) while the export is being written:
    the process unwinds through its clean-up, so neither the temporary file nor OUT stays,
    and it still ends by SIGTERM."""
    import signal
    import subprocess
    import sys

    home = tmp_path / "home"
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as book:
        for start in range(0, 120_000, 20_000):
            book.append_many(
                {"type": "decision", "body": {"outcome": "deny", "n": i}}
                for i in range(start, start + 20_000)
            )
    out = tmp_path / "out" / f"all.{fmt}"
    out.parent.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_")} | {
        "GOVERNANCE_HOME": str(home)
    }
    governance = str(Path(sys.executable).with_name("governance"))
    proc = subprocess.Popen(
        [governance, "audit", "export", str(out), "--format", fmt, "--project", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        while not leftovers(out.parent):  # the export has begun writing
            assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM, err
    assert b"Traceback" not in err, err
    assert list(out.parent.iterdir()) == []
