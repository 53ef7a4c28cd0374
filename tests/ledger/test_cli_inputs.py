"""The ``governance`` command on wrong locations, broken files and absurd numbers.

Each case runs the installed command, as a user would: a one-line ``error:`` and a non-zero exit,
never a traceback, and nothing created or changed. A command that only reads or records about
an existing ledger (retention, hold, forget, checkpoint, subject report, ...) pointed at a
mistyped location must not create an empty ledger there (or a PostgreSQL schema) and answer
"nothing found".
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from governance.ledger import Entry, Ledger

from .conftest import PG_URL, pg_unavailable

GOVERNANCE = str(Path(sys.executable).with_name("governance"))
READ_OR_RECORD = [
    ["audit", "retention"],
    ["audit", "hold", "s-1", "--reason", "litigation", "--by", "counsel"],
    ["audit", "release", "s-1", "--reason", "settled", "--by", "counsel"],
    ["audit", "forget", "s-1"],
    ["audit", "checkpoint"],
    ["audit", "find", "--subject", "s-1"],
    ["audit", "recourse", "00000000-0000-7000-8000-000000000000"],
]


def _run(home: Path, url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GOVERNANCE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=home.parent,
        env={
            **os.environ,
            "GOVERNANCE_HOME": str(home),
            "GOVERNANCE_LEDGER_URL": url,
            **env,
        },
    )


def _refused(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert words in lines[0], lines[0]


@pytest.mark.parametrize("args", READ_OR_RECORD, ids=lambda a: "-".join(a[:2]))
def test_a_command_on_a_missing_sqlite_ledger_creates_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    home = tmp_path / "typo"
    done = _run(home, f"sqlite:///{home / 'ledger.db'}", *args)
    _refused(done, "no ledger")
    assert not home.exists()


@pytest.mark.postgres
def test_a_command_on_a_mistyped_postgresql_schema_creates_no_schema(tmp_path: Path) -> None:
    if reason := pg_unavailable():
        pytest.skip(reason)
    import psycopg

    schema = f"typo_{uuid.uuid4().hex[:12]}"
    for args in READ_OR_RECORD:
        done = _run(tmp_path / "state", f"{PG_URL}?schema={schema}", *args)
        _refused(done, "no ledger")
    with psycopg.connect(PG_URL) as conn:
        found = conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchone()
    assert found is None


def test_a_file_that_is_not_a_ledger_database_is_a_one_line_error(tmp_path: Path) -> None:
    home = tmp_path / "state"
    path = tmp_path / "ledger.db"
    with Ledger.open(f"sqlite:///{path}", home=home) as ledger:
        ledger.append_many([Entry("decision", {"n": i, "pad": "x" * 500}) for i in range(500)])
    data = path.read_bytes()
    for broken in (data[: len(data) // 2], os.urandom(4096)):
        path.write_bytes(broken)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        for args in (["audit", "find", "--subject", "s-1"], ["audit", "export", "out.jsonl"]):
            _refused(
                _run(home, f"sqlite:///{path}", *args), f"{path} is not a readable SQLite ledger"
            )
    assert not (tmp_path / "out.jsonl").exists()


def test_verify_on_a_url_of_no_known_kind_cannot_check(tmp_path: Path) -> None:
    done = _run(tmp_path / "state", "mysql://127.0.0.1/test", "audit", "verify")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "unsupported ledger URL" in done.stderr and "Traceback" not in done.stderr


def test_a_malformed_setting_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    home = tmp_path / "state"
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        ledger.append("decision", {"n": 1})
    url = f"sqlite:///{home / 'ledger.db'}"
    for args in (["audit", "find", "--subject", "s-1"], ["audit", "vkey"], ["keys", "list"]):
        done = _run(home, url, *args, GOVERNANCE_SEPARATION_OF_DUTIES="maybe")
        _refused(done, "GOVERNANCE_SEPARATION_OF_DUTIES")


def test_an_offset_past_64_bits_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "state"
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        ledger.append("decision", {"n": 1}, subject_id="s-1")
    done = _run(
        home,
        f"sqlite:///{home / 'ledger.db'}",
        *("audit", "find", "--subject", "s-1", "--offset", str(2**64)),
    )
    _refused(done, "offset in 0..9223372036854775807")


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--every", "nan"), ("--every", "inf"), ("--every", "0"), ("--timeout", "nan")],
)
def test_checkpoint_periods_and_timeouts_must_be_finite_and_positive(
    tmp_path: Path, flag: str, value: str
) -> None:
    """``nan`` passed ``<= 0`` and made the periodic checkpointer spin; ``inf`` overflowed."""
    home = tmp_path / "state"
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        ledger.append("decision", {"n": 1})
    done = _run(home, f"sqlite:///{home / 'ledger.db'}", "audit", "checkpoint", flag, value)
    _refused(done, f"{flag} must be a positive number of seconds")
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        assert ledger.checkpoints() == []


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_serve_refuses_a_checkpoint_period_that_is_not_a_positive_number(
    tmp_path: Path, value: str
) -> None:
    home = tmp_path / "state"
    done = _run(home, f"sqlite:///{home / 'ledger.db'}", "serve", "--checkpoint-every", value)
    _refused(done, "--checkpoint-every must be a positive number of seconds")
    assert not home.exists()


def test_forget_of_an_empty_subject_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "state"
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        ledger.append("decision", {"n": 1}, subject_id="s-1")
        size = ledger.size()
    done = _run(home, f"sqlite:///{home / 'ledger.db'}", "audit", "forget", "")
    _refused(done, "subject_id must be a non-empty string")
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        assert ledger.size() == size


def test_forget_of_a_subject_the_ledger_never_saw_records_nothing(tmp_path: Path) -> None:
    """A mistyped id must not be recorded as an erasure while the real subject's data stays."""
    home = tmp_path / "state"
    url = f"sqlite:///{home / 'ledger.db'}"
    with Ledger.open(url, home=home) as ledger:
        ledger.append("decision", {"n": 1}, subject_id="s-1", pii={"name": "Ann"})
        size = ledger.size()
    _refused(_run(home, url, "audit", "forget", "s-11"), "no records about this subject")
    with Ledger.open(url, home=home) as ledger:
        assert ledger.size() == size and ledger.find(type="erasure") == []
    done = _run(home, url, "audit", "forget", "s-1")
    assert done.returncode == 0, done.stderr
    with Ledger.open(url, home=home) as ledger:
        (erasure,) = ledger.find(type="erasure")
        assert erasure.body["keys_destroyed"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit", "forget", "s-1", "--reason", "ticket 7\x1b[2K"], "--reason contains a"),
        (["audit", "hold", "s-1", "--reason", "a\x07b", "--by", "counsel"], "(U+0007)"),
        (["audit", "hold", "s-1", "--reason", "case 9", "--by", "counsel\nforged"], "--by"),
        (["audit", "release", "s-1", "--reason", "over\rwritten", "--by", "c"], "(U+000D)"),
    ],
    ids=["forget-reason", "hold-reason", "hold-by", "release-reason"],
)
def test_control_characters_in_a_reason_or_name_record_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    home = tmp_path / "state"
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        ledger.append("decision", {"n": 1}, subject_id="s-1")
        size = ledger.size()
    done = _run(home, f"sqlite:///{home / 'ledger.db'}", *args)
    _refused(done, message)
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        assert ledger.size() == size


@pytest.mark.parametrize("stage", ["validate", "register"])
def test_a_stage_run_via_a_name_with_control_characters_records_nothing(
    tmp_path: Path, stage: str
) -> None:
    """``--via`` is recorded in the lineage and in the ledger's pipeline events."""
    home = tmp_path / "state"
    done = _run(home, f"sqlite:///{home / 'ledger.db'}", "stage", stage, "--via", "dvc\nINJECT")
    _refused(done, "--via contains a control character (U+000A)")
    assert not home.exists()


def test_a_hold_reason_may_span_lines(tmp_path: Path) -> None:
    home = tmp_path / "state"
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        ledger.append("decision", {"n": 1}, subject_id="s-1")
    reason = "case 2026-114:\n\tpreserve until judgment"
    args = ["audit", "hold", "s-1", "--reason", reason, "--by", "counsel"]
    done = _run(home, f"sqlite:///{home / 'ledger.db'}", *args)
    assert done.returncode == 0, done.stderr
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        assert ledger.legal_hold("s-1").body["reason"] == reason  # type: ignore[union-attr]


def test_an_id_in_an_error_is_printed_escaped(tmp_path: Path) -> None:
    """What the caller typed comes back in the error on one line, its controls escaped."""
    home = tmp_path / "state"
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        ledger.append("decision", {"n": 1})
    done = _run(home, f"sqlite:///{home / 'ledger.db'}", "audit", "recourse", "x\x1b[31m\nok")
    _refused(done, "x\\x1b[31m\\nok")
    assert "\x1b" not in done.stderr


def test_a_witness_origin_that_cannot_name_a_log_is_refused(tmp_path: Path) -> None:
    from governance.witness.store import WitnessHome

    home = tmp_path / "state"
    url = f"sqlite:///{home / 'ledger.db'}"
    with Ledger.open(url, home=home) as ledger:
        ledger.append("decision", {"n": 1})
    vkey = _run(home, url, "audit", "vkey").stdout.strip()
    witness = tmp_path / "witness"
    assert _run(home, "sqlite:///x", "witness", "init", "--home", str(witness)).returncode == 0
    logs = (witness / "logs.json").read_bytes() if (witness / "logs.json").exists() else None
    for origin in ["two\nlines", "a b", "a+b", "csi\x9b2J", "bad\udcffutf8"]:
        args = ["witness", "trust", vkey, "--origin", origin, "--home", str(witness)]
        _refused(_run(home, "sqlite:///x", *args), "invalid origin")
    assert ((witness / "logs.json").read_bytes() if logs is not None else None) == logs
    assert WitnessHome(witness).logs() == {}


def test_a_folder_where_a_file_belongs_is_one_line(tmp_path: Path) -> None:
    """An OSError no command expected (here: the witnesses file is a folder)."""
    home = tmp_path / "state"
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        ledger.append("decision", {"n": 1})
    (home / "witnesses.json").mkdir()
    done = _run(home, f"sqlite:///{home / 'ledger.db'}", "witness", "list")
    _refused(done, "witnesses.json")


@pytest.mark.parametrize(
    "args",
    [["serve", "--port", "70000"], ["witness", "serve", "--port", "70000"]],
    ids=["serve", "witness-serve"],
)
def test_a_port_past_65535_is_refused_not_wrapped(tmp_path: Path, args: list[str]) -> None:
    """Port 70,000 listened on 4,464 (70,000 mod 65,536)."""
    done = _run(tmp_path / "state", f"sqlite:///{tmp_path / 'ledger.db'}", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--port" in done.stderr and "65535" in done.stderr, done.stderr  # Click's range error
    assert "Traceback" not in done.stderr


def test_verify_refuses_tiles_that_are_not_a_folder(tmp_path: Path) -> None:
    """A mistyped --tiles skipped the comparison it asks for; --checkpoints already exits 2."""
    home = tmp_path / "state"
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", home=home) as ledger:
        ledger.append("decision", {"n": 1})
        ledger.checkpoint()
    missing = tmp_path / "no-tiles"
    done = _run(home, f"sqlite:///{home / 'ledger.db'}", "audit", "verify", "--tiles", str(missing))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"--tiles {missing}: no such folder" in done.stderr


@pytest.mark.postgres
def test_vkey_of_a_sharded_ledger_is_the_control_shards(tmp_path: Path) -> None:
    """The log the witnesses know is the control shard's; ``shards=K`` was an invalid query."""
    if reason := pg_unavailable():
        pytest.skip(reason)
    import psycopg

    from governance.ledger.checkpoint import verifier_key
    from governance.ledger.shards import ShardedLedger, shard_schema

    schema = f"gl_vkey_{uuid.uuid4().hex[:12]}"
    base = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    home = tmp_path / "state"
    try:
        with ShardedLedger.open(base, home=home, shards=2) as ledger:
            expected = verifier_key(ledger.origin, ledger.public_key)
        done = _run(home, f"{base}&shards=2", "audit", "vkey")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for i in range(2):
                conn.execute(f"DROP SCHEMA IF EXISTS {shard_schema(schema, i)} CASCADE".encode())
