"""The input contract at decision time: every decision path refuses impossible inputs, records
nothing for them, and decides but flags out-of-distribution values.

Paths: ``governance.decide`` (the Python API, :meth:`DecisionService.decide`), a batch of
applications (``decide_many``), batch scoring of a frame (``score_frame`` and the CLI
``governance score``) and the registered pyfunc itself (``mlflow.pyfunc.load_model``). The HTTP
endpoints are tested in ``tests/service/test_contract_http.py``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from support import cli_env

from governance.core.contract import Contract
from governance.decisions.service import ContractRefused, DecisionService
from governance.ledger import Ledger
from governance.registry import mlflow as registry
from governance.settings import Settings

MODEL = "mortgage-denial"

#: The issue's impossible inputs, each with the bound the refusal must name.
IMPOSSIBLE = [
    ({"pirat": -5}, "feature 'pirat' = -5 is below the hard minimum 0"),
    ({"chist": 99}, "feature 'chist' = 99 is not one of [1, 2, 3, 4, 5, 6]"),
    ({"lvrat": 1e300}, "feature 'lvrat' = 1e+300 is above the hard maximum 3"),
    ({"phist": "missing"}, "feature 'phist' = 'missing' is not one of ['no', 'yes']"),
    ({"chist": 2.5}, "feature 'chist' = 2.5"),
]


@pytest.fixture(scope="module")
def service(trained: tuple[Path, Settings]) -> Any:
    svc = DecisionService.open(trained[1])
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def rows(trained: tuple[Path, Settings]) -> pd.DataFrame:
    return pd.read_csv(trained[0] / "data/split/test.csv").head(20)


def _features(rows: pd.DataFrame, i: int = 0) -> dict[str, Any]:
    spec_inputs = [
        "pirat", "hirat", "lvrat", "chist", "mhist", "phist",
        "unemp", "selfemp", "insurance", "condomin", "hschool",
    ]  # fmt: skip
    return {
        k: (v.item() if hasattr(v, "item") else v) for k, v in rows.iloc[i][spec_inputs].items()
    }


def test_the_registered_version_carries_its_contract(
    trained: tuple[Path, Settings], service: DecisionService
) -> None:
    root, settings = trained
    loaded, _ = service.model(MODEL, alias="candidate")
    assert isinstance(loaded.contract, Contract)
    info = registry.resolve(settings, MODEL, loaded.version)
    assert info["contract"]["contract_id"] == loaded.contract.contract_id
    on_disk = json.loads((root / "reports/contract.json").read_text())
    assert Contract.from_dict(on_disk).contract_id == loaded.contract.contract_id
    assert loaded.contract.feature("pirat").bounds.low == 0
    assert loaded.contract.policy.out_of_distribution == "flag"


@pytest.mark.parametrize(("change", "message"), IMPOSSIBLE)
def test_impossible_inputs_are_refused_on_every_python_path(
    service: DecisionService, rows: pd.DataFrame, change: dict[str, Any], message: str
) -> None:
    bad = {**_features(rows), **change}
    before = service.ledger.size()
    with pytest.raises(ContractRefused) as one:
        service.decide(MODEL, bad, subject_id="s-1", alias="candidate")
    assert message in str(one.value)
    assert one.value.violations and one.value.violations[0]["feature"] == next(iter(change))
    with pytest.raises(ContractRefused, match="application 1: "):
        service.decide_many(
            MODEL, [_features(rows, 1), bad], subject_ids=["a", "b"], alias="candidate"
        )
    frame = rows.copy()
    frame = frame.astype({k: object for k in change})
    for k, v in change.items():
        frame.at[frame.index[7], k] = v
    with pytest.raises(ContractRefused, match="row 7: "):
        list(service.score_frame(MODEL, frame, alias="candidate", chunk=5))
    assert service.ledger.size() == before  # not even the chunks before the bad row


def test_out_of_distribution_is_decided_and_flagged(
    service: DecisionService, rows: pd.DataFrame
) -> None:
    loaded, _ = service.model(MODEL, alias="candidate")
    high = loaded.contract.feature("lvrat").training_range.high
    assert high < 2.9 <= 3  # inside the hard bound, outside what training saw
    decision = service.decide(
        MODEL, {**_features(rows), "lvrat": 2.9}, subject_id="s-ood", alias="candidate"
    )
    assert decision.out_of_distribution == ["lvrat"]
    assert service.ledger.get(decision.decision_id).body["out_of_distribution"] == ["lvrat"]
    normal = service.decide(MODEL, _features(rows), subject_id="s-ok", alias="candidate")
    assert "out_of_distribution" not in service.ledger.get(normal.decision_id).body
    frame = rows.copy()
    frame.loc[frame.index[3], "lvrat"] = 2.9
    (_, receipts, _, _), *_ = list(service.score_frame(MODEL, frame, alias="candidate"))
    flagged = [service.ledger.get(r.id).body.get("out_of_distribution") for r in receipts]
    assert flagged[3] == ["lvrat"]
    assert flagged.count(None) == len(frame) - 1


def test_governance_score_refuses_the_whole_file(
    trained: tuple[Path, Settings], service: DecisionService, rows: pd.DataFrame, tmp_path: Path
) -> None:
    root, _ = trained
    frame = rows.copy()
    frame.loc[frame.index[12], "pirat"] = -5
    path = tmp_path / "apps.csv"
    frame.to_csv(path, index=False)
    before = service.ledger.size()
    done = subprocess.run(
        ["governance", "score", str(path), "--model", MODEL, "--alias", "candidate"],
        cwd=root,
        env=cli_env(root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert "row 12: feature 'pirat' = -5.0 is below the hard minimum 0" in done.stderr
    assert "Traceback" not in done.stderr
    assert service.ledger.size() == before


def test_the_pyfunc_obeys_the_same_contract(
    trained: tuple[Path, Settings], rows: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, settings = trained
    monkeypatch.setenv("GOVERNANCE_PROJECT", str(root))  # the pyfunc records in the project
    with registry.tracking(settings):
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}@candidate")
    numeric = ["pirat", "hirat", "lvrat", "chist", "mhist", "unemp"]
    good = pd.DataFrame([_features(rows, i) for i in range(3)]).astype(
        dict.fromkeys(numeric, float)
    )
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        before = ledger.size()
        out = model.predict(good)
        assert len(out) == 3 and (out["recorded"] == "ledger").all()
        assert ledger.size() == before + 3
        assert {ledger.get(d).body["caller"] for d in out["decision_id"]} == {"mlflow-pyfunc"}
        bad = good.copy()
        bad.at[1, "chist"] = 99.0
        with pytest.raises(MlflowException, match=r"row 1: feature 'chist' = 99(\.0)? is not one"):
            model.predict(bad)
        assert ledger.size() == before + 3
