"""The ``witnessed_checkpoint`` job and its schedule, on a real ledger and a real witness."""

from __future__ import annotations

import threading
from pathlib import Path

import dagster as dg
import pytest

from governance.definitions import defs as load_defs
from governance.defs.resources import GovernanceProject
from governance.defs.witnessing.jobs import witnessed_checkpoint
from governance.ledger import Entry, Ledger
from governance.ledger.checkpoint import verifier_key
from governance.ledger.note import parse_checkpoint, parse_note
from governance.transparency import WitnessConfig
from governance.witness import Witness, WitnessClient, WitnessHome, WitnessServer

RUN_CONFIG = {"ops": {"publish_checkpoint": {"config": {"timeout": 5.0}}}}


def test_schedule_is_off_by_default_and_requests_the_job() -> None:
    defs = load_defs() if callable(load_defs) else load_defs
    schedule = defs.resolve_schedule_def("witnessed_checkpoints")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.job_name == "witnessed_checkpoint"
    with dg.instance_for_test() as instance:
        data = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
    assert len(data.run_requests or []) == 1


def test_the_job_publishes_to_the_witness_and_fails_the_run_when_it_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("GOVERNANCE_LEDGER_URL", "GOVERNANCE_TILES", "GOVERNANCE_HOME"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    project = GovernanceProject(project_dir=str(tmp_path), home=str(home))
    ledger = Ledger.open(project.settings().ledger_url, home=home)
    witness_home = WitnessHome.init(tmp_path / "witness", "witness.example/dagster")
    witness_home.add_log(verifier_key(ledger.origin, ledger.public_key))
    server = WitnessServer(("127.0.0.1", 0), Witness(witness_home), quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = WitnessConfig()
    config.add(server.url, witness_home.vkey)
    config.save(home / "witnesses.json")
    try:
        ledger.append_many([Entry("decision", {"outcome": "deny", "n": i}) for i in range(5)])
        done = witnessed_checkpoint.execute_in_process(
            run_config=RUN_CONFIG, resources={"project": project}
        )
        assert done.success and done.output_for_node("publish_checkpoint") == 5
        note = WitnessClient(server.url, witness_home.vkey).latest(ledger.origin)
        assert note is not None and parse_checkpoint(parse_note(note).text).size == 5
    finally:
        server.shutdown()
        server.server_close()
    ledger.append("decision", {"outcome": "approve", "n": 5})  # decisions go on meanwhile
    failed = witnessed_checkpoint.execute_in_process(
        run_config=RUN_CONFIG, resources={"project": project}, raise_on_error=False
    )
    assert not failed.success
    failure = failed.failure_data_for_node("publish_checkpoint")
    assert failure is not None and "checkpoint of 6 records NOT published" in str(failure.error)
    assert max(cp.size for cp in ledger.checkpoints()) == 6  # signed, not witnessed
    ledger.close()
