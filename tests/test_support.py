"""The test support's copy of a live state directory leaves the original's connections intact."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from support import copy_state

TOUCH = (
    "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('select 1 from t'); c.close()"
)


def test_copy_state_keeps_this_process_locks_and_copies_the_wal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "keys").mkdir()
    (home / "keys" / "k").write_bytes(b"secret")
    (home / "mlflow.db").write_bytes(b"left out")
    live = sqlite3.connect(home / "ledger.db")
    live.execute("pragma journal_mode=wal")
    live.execute("pragma wal_autocheckpoint=0")  # the row below stays in the WAL only
    live.execute("create table t(x)")
    live.execute("insert into t values (1)")
    live.commit()

    copy = copy_state(home, tmp_path / "copy", leave_out=("mlflow.db*",))
    # Another process opens and closes the ledger: with this process's locks intact it is not
    # the last user, so it must leave the WAL alone.
    subprocess.run([sys.executable, "-c", TOUCH, str(home / "ledger.db")], check=True)
    live.execute("insert into t values (2)")
    live.commit()
    again = sqlite3.connect(home / "ledger.db")
    assert again.execute("select count(*) from t").fetchone() == (2,)
    again.close()
    live.close()

    copied = sqlite3.connect(copy / "ledger.db")
    assert copied.execute("select x from t").fetchall() == [(1,)]
    copied.close()
    assert (copy / "keys" / "k").read_bytes() == b"secret"
    assert not (copy / "mlflow.db").exists()
