"""``governance score FILE --out OUT``: an OUT that cannot be written is refused before scoring."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from governance.cli import app
from governance.ledger import Ledger
from governance.settings import Settings

MODEL = "mortgage-denial"
ROWS = 4
ENV: dict[str, str | None] = dict.fromkeys(
    ("GOVERNANCE_HOME", "GOVERNANCE_MLFLOW_URI", "GOVERNANCE_LEDGER_URL", "GOVERNANCE_PROJECT")
)


@pytest.fixture
def applications(trained: tuple[Path, Settings], tmp_path: Path) -> Path:
    path = tmp_path / "applications.csv"
    pd.read_csv(trained[0] / "data/split/test.csv").head(ROWS).to_csv(path, index=False)
    return path


def score(root: Path, applications: Path, out: Path | str) -> Any:
    args = ["score", str(applications), "--model", MODEL, "--alias", "candidate"]
    return CliRunner().invoke(app, [*args, "--out", str(out), "--project", str(root)], env=ENV)


def size(settings: Settings) -> int:
    with Ledger.open(settings.ledger_url, home=settings.home) as book:
        return book.size()


def _folder(tmp: Path, home: Path) -> Path:
    (tmp / "folder").mkdir()
    return tmp / "folder"


CASES: dict[str, tuple[Callable[[Path, Path], Path | str], str]] = {
    "a directory": (_folder, "--out {out}: is a directory"),
    "a missing parent": (lambda t, h: t / "missing" / "x.csv", "directory {parent} does not"),
    "a file as parent": (lambda t, h: t / "applications.csv" / "x.csv", "is not a directory"),
    "the ledger": (lambda t, h: h / "ledger.db", "is this project's ledger: refusing"),
    "MLflow's database": (lambda t, h: h / "mlflow.db", "is this project's MLflow database"),
    "the key folder": (lambda t, h: h / "keys" / "x.csv", "is inside the key folder"),
    "an empty name": (lambda t, h: "", "not a file name"),
}


@pytest.mark.parametrize("case", CASES)
def test_an_out_that_cannot_be_written_records_nothing(
    trained: tuple[Path, Settings], applications: Path, tmp_path: Path, case: str
) -> None:
    root, settings = trained
    make, message = CASES[case]
    out = make(tmp_path, settings.home)
    before = size(settings)
    listed = sorted(tmp_path.rglob("*"))
    result = score(root, applications, out)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    lines = result.stderr.splitlines()
    expected = message.format(out=out, parent=Path(out).parent)
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert size(settings) == before  # a retry will not record the decisions twice
    assert sorted(tmp_path.rglob("*")) == listed
    assert not [p for p in settings.home.iterdir() if p.name.endswith(".tmp")]


def test_out_lists_every_decision_recorded(
    trained: tuple[Path, Settings], applications: Path, tmp_path: Path
) -> None:
    root, settings = trained
    before = size(settings)
    out = tmp_path / "decisions.csv"
    result = score(root, applications, out)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["decision_id", "outcome", "score", "seq"]
    assert len(table) == ROWS and size(settings) == before + ROWS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["applications.csv", "decisions.csv"]


def test_out_may_be_a_new_file_in_the_state_directory_as_make_run_writes_it(
    trained: tuple[Path, Settings], applications: Path
) -> None:
    root, settings = trained
    out = settings.home / "score-cli-test-decisions.csv"
    try:
        result = score(root, applications, out)
        assert result.exit_code == 0, result.output
        assert len(pd.read_csv(out)) == ROWS
    finally:
        out.unlink(missing_ok=True)


def _with_ids(trained: tuple[Path, Settings], tmp_path: Path, ids: list[str]) -> Path:
    frame = pd.read_csv(trained[0] / "data/split/test.csv").head(len(ids))
    frame.insert(0, "applicant", ids)
    path = tmp_path / "with-ids.csv"
    frame.to_csv(path, index=False)
    return path


def test_subject_ids_are_read_as_written(trained: tuple[Path, Settings], tmp_path: Path) -> None:
    """``0042`` and ``42`` are two applicants: a CSV read must not make them one number."""
    root, settings = trained
    path = _with_ids(trained, tmp_path, ["0042", "42", "007"])
    args = ["score", str(path), "--model", MODEL, "--alias", "candidate"]
    args += ["--subject-column", "applicant", "--project", str(root)]
    done = CliRunner().invoke(app, args, env=ENV)
    assert done.exit_code == 0, done.output
    with Ledger.open(settings.ledger_url, home=settings.home) as book:
        found = {s: len(book.find(subject_id=s, type="decision")) for s in ["0042", "42", "007"]}
        assert found == {"0042": 1, "42": 1, "007": 1}
        assert book.find(subject_id="7", type="decision") == []


@pytest.mark.parametrize("missing", ["", "NA"])
def test_a_missing_subject_id_anywhere_records_nothing(
    trained: tuple[Path, Settings], tmp_path: Path, missing: str
) -> None:
    """Checked before the first chunk: else the chunks before it are recorded, and a retry
    records them twice."""
    root, settings = trained
    path = _with_ids(trained, tmp_path, ["s-1", "s-2", "s-3", "s-4", missing])
    frame = pd.read_csv(path, dtype={"applicant": str})
    before = size(settings)
    from governance.decisions.service import DecisionError, DecisionService

    with DecisionService.open(settings) as svc:
        chunks = svc.score_frame(
            MODEL, frame, subject_column="applicant", alias="candidate", chunk=2
        )
        with pytest.raises(DecisionError, match="row 4: subject_id is missing"):
            list(chunks)
    assert size(settings) == before
    args = ["score", str(path), "--model", MODEL, "--alias", "candidate"]
    done = CliRunner().invoke(app, [*args, "--subject-column", "applicant", "--project", str(root)])
    assert done.exit_code == 1 and "row 4: subject_id is missing" in done.stderr, done.output
    assert size(settings) == before


def test_a_column_named_twice_is_refused(
    trained: tuple[Path, Settings], applications: Path, tmp_path: Path
) -> None:
    """pandas would score the first ``pirat`` and rename the second ``pirat.1``."""
    root, settings = trained
    lines = applications.read_text().splitlines()
    lines = [lines[0] + ",pirat", *(line + ",4.9" for line in lines[1:])]
    twice = tmp_path / "twice.csv"
    twice.write_text("\n".join(lines) + "\n")
    before = size(settings)
    done = score(root, twice, tmp_path / "out.csv")
    assert done.exit_code == 1, done.output
    assert "names these columns more than once: ['pirat']" in done.stderr
    assert size(settings) == before and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("where", "message"),
    [("missing.csv", "no such file"), ("folder", "not a regular file (a folder, a pipe?)")],
)
def test_a_file_that_is_not_there_or_not_a_file_is_named(
    trained: tuple[Path, Settings], tmp_path: Path, where: str, message: str
) -> None:
    (tmp_path / "folder").mkdir()
    root, settings = trained
    before = size(settings)
    done = score(root, tmp_path / where, tmp_path / "out.csv")
    assert done.exit_code == 1 and f"{tmp_path / where}: {message}" in done.stderr, done.output
    assert size(settings) == before
