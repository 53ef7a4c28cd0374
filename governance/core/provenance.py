"""W3C PROV of a registered model version, built from its lineage with the ``prov`` package.

Pure: the lineage (``lineage.json`` as the registry keeps it), the stage runs that made the
version and the ledger's approvals go in; a ``prov.model.ProvDocument`` comes out, which
serialises as PROV-JSON (``doc.serialize(format="json")``) or PROV-N (``doc.get_provn()``).

What it holds:

* entities: every dataset by its md5 (``data:<md5>``), the code by its commit
  (``git:<commit>``), the parameters by their hash (``params:<sha256>``), the environment by
  its lock file's hash (``env:<sha256>``), the registered model version (``model:<name>.<v>``)
  and its model card (``card:<name>.<v>``);
* activities: the pipeline's stages (``run:<run id>.<stage>``; the OpenLineage run id when the
  version recorded its stage runs) and each promotion decision (``approval:<ledger event id>``);
* agents: the pipeline (``agent:governance-pipeline``), what ran it (``agent:dvc`` /
  ``agent:dagster``) and every person who approved a promotion (``person:<name>``);
* relations: used, wasGeneratedBy, wasAssociatedWith, wasDerivedFrom, wasAttributedTo,
  actedOnBehalfOf.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from prov.constants import PROV, PROV_LABEL, PROV_TYPE
from prov.identifier import Namespace, QualifiedName
from prov.model import ProvDocument, ProvEntity

from governance.core.openlineage import FILE_NAMESPACE, lineage_graph

NAMESPACES = {
    "gov": "urn:governance:",
    "data": "urn:governance:data:md5:",
    "git": "urn:governance:git:commit:",
    "params": "urn:governance:params:sha256:",
    "env": "urn:governance:environment:sha256:",
    "model": "urn:governance:model:",
    "card": "urn:governance:card:",
    "run": "urn:governance:run:",
    "approval": "urn:governance:ledger:event:",
    "agent": "urn:governance:agent:",
    "person": "urn:governance:person:",
}
GOV = Namespace("gov", NAMESPACES["gov"])
PIPELINE_AGENT = "agent:governance-pipeline"
FORMATS = ("prov-json", "prov-n")

# The stage graph when a version did not record its stage runs: (stage, reads, writes), by the
# dataset names of the lineage (raw, train, test) plus "model" and "card".
DEFAULT_STAGES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("ingest", (), ("raw",)),
    ("validate", ("raw",), ()),
    ("split", ("raw",), ("train", "test")),
    ("train", ("train",), ()),
    ("evaluate", ("test",), ()),
    ("fairness", ("test",), ()),
    ("model_card", ("train", "test"), ("card",)),
    ("register", ("train", "test"), ("model",)),
)

ERR_FORMAT = "format must be one of {formats}, got {value!r}"


def _local(text: str) -> str:
    """A PROV-N safe local name: letters, digits, '.', '-', '_' and %-escapes."""
    return quote(str(text), safe="-_.")


def _about(kind: QualifiedName, label: str, **values: Any) -> dict[Any, Any]:
    """A record's attributes: its PROV type, a label, and ``gov:`` values that are set."""
    out: dict[Any, Any] = {PROV_TYPE: kind, PROV_LABEL: label}
    out.update({f"gov:{k}": v for k, v in values.items() if v is not None})
    return out


def _once(doc: ProvDocument, ident: str, attributes: Callable[[], dict[Any, Any]]) -> ProvEntity:
    """The entity ``ident``, made with ``attributes()`` the first time it is named."""
    found = [r for r in doc.get_record(ident) if isinstance(r, ProvEntity)]
    return found[0] if found else doc.entity(ident, attributes())


def _dataset(doc: ProvDocument, md5: str, path: str, **extra: Any) -> ProvEntity:
    return _once(
        doc, f"data:{md5}", lambda: _about(GOV["Dataset"], path, path=path, md5=md5, **extra)
    )


def _code(doc: ProvDocument, commit: str | None, dirty: bool | None) -> ProvEntity:
    """The source code entity of a commit (one per commit in the document)."""
    return _once(
        doc,
        f"git:{_local(commit or 'unknown')}",
        lambda: _about(GOV["SourceCode"], f"commit {commit}", commit=commit, dirty=bool(dirty)),
    )


def _params(doc: ProvDocument, params_hash: str) -> ProvEntity:
    """The parameters another stage run used: known by their hash alone."""
    return _once(doc, f"params:{params_hash}", lambda: _about(GOV["Parameters"], "params.yaml"))


def _stage_records(lineage: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Stage runs from the default graph, for versions that recorded none."""
    by_name = {d["name"]: d for d in lineage.get("datasets") or []}
    run = str(lineage.get("mlflow_run_id") or "unknown")

    def files(names: tuple[str, ...]) -> list[dict[str, Any]]:
        return [
            {"path": by_name[n]["path"], "md5": by_name[n]["md5"]} for n in names if n in by_name
        ]

    return [
        {
            "stage": stage,
            "run_id": f"{run}.{stage}",
            "via": (lineage.get("run") or {}).get("source"),
            "inputs": files(reads),
            "outputs": files(writes),
            "writes": [w for w in writes if w in ("model", "card")],
        }
        for stage, reads, writes in DEFAULT_STAGES
    ]


def version_provenance(
    lineage: Mapping[str, Any],
    *,
    stages: Sequence[Mapping[str, Any]] = (),
    approvals: Sequence[Mapping[str, Any]] = (),
    signing: Mapping[str, Any] | None = None,
) -> ProvDocument:
    """The W3C PROV document of one registered model version.

    Parameters
    ----------
    lineage
        The version's lineage (``model``, ``version``, ``datasets``, ``git_commit``,
        ``git_dirty``, ``params``, ``params_hash``, ``environment``, ``model_card``,
        ``mlflow_run_id``, ``run``, ``package_version``).
    stages
        The stage runs that made it: ``stage``, ``run_id``, ``via``, optional ``started`` /
        ``ended`` (ISO 8601), ``inputs`` and ``outputs`` as ``{"path", "md5"}``. Empty: the
        default stage graph over the lineage's datasets. A run's own ``commit`` (with
        ``dirty``) and ``params_hash``, when given, are the code and parameters it used;
        otherwise the version's.
    approvals
        Promotion decisions from the ledger: ``event_id``, ``action``, ``alias``, ``approver``,
        ``reason``, ``timestamp``.
    signing
        Digests of the version's signature and provenance statement (recorded on the model).

    Returns
    -------
    prov.model.ProvDocument
    """
    doc = ProvDocument()
    for prefix, uri in NAMESPACES.items():
        doc.add_namespace(prefix, uri)
    name, version = str(lineage["model"]), str(lineage["version"])
    pipeline = doc.agent(
        PIPELINE_AGENT,
        _about(
            PROV["SoftwareAgent"], "governance pipeline", version=lineage.get("package_version")
        ),
    )
    commit = lineage.get("git_commit")
    code = _code(doc, commit, bool(lineage.get("git_dirty")))
    params = doc.entity(
        f"params:{lineage['params_hash']}",
        _about(
            GOV["Parameters"],
            "params.yaml",
            values=json.dumps(lineage.get("params") or {}, sort_keys=True),
        ),
    )
    env = lineage.get("environment") or {}
    environment = None
    if env.get("lock_sha256"):
        environment = doc.entity(
            f"env:{env['lock_sha256']}",
            _about(
                GOV["Environment"],
                str(env.get("lock_file")),
                lock_file=env.get("lock_file"),
                lock_sha256=env["lock_sha256"],
            ),
        )
    model = doc.entity(
        f"model:{_local(name)}.{_local(version)}",
        _about(
            GOV["ModelVersion"],
            f"{name} version {version}",
            name=name,
            version=version,
            model_uri=lineage.get("model_uri"),
            mlflow_run_id=lineage.get("mlflow_run_id"),
            **{k: v for k, v in (signing or {}).items() if isinstance(v, str | int | bool)},
        ),
    )
    card = doc.entity(
        f"card:{_local(name)}.{_local(version)}",
        _about(
            GOV["ModelCard"],
            "model card",
            path=lineage.get("model_card"),
            mlflow_artifact="model_card/model_card.md",
        ),
    )
    for d in lineage.get("datasets") or []:
        _dataset(doc, d["md5"], d["path"], rows=d.get("rows"), size=d.get("size"))
    drivers: dict[str, Any] = {}
    for s in stages or _stage_records(lineage):
        via = s.get("via") or "cli"
        if via not in drivers:
            drivers[via] = doc.agent(f"agent:{_local(via)}", _about(PROV["SoftwareAgent"], via))
            doc.actedOnBehalfOf(drivers[via], pipeline)
        act = doc.activity(
            f"run:{_local(s['run_id'])}",
            s.get("started"),
            s.get("ended"),
            _about(GOV["Stage"], s["stage"], stage=s["stage"], via=via),
        )
        doc.wasAssociatedWith(act, pipeline)
        doc.wasAssociatedWith(act, drivers[via])
        ran = s.get("commit")
        doc.used(act, code if ran in (None, commit) else _code(doc, ran, s.get("dirty")))
        used = s.get("params_hash")
        doc.used(act, params if used in (None, lineage["params_hash"]) else _params(doc, used))
        if environment is not None:
            doc.used(act, environment)
        for i in s.get("inputs") or []:
            doc.used(act, _dataset(doc, i["md5"], i["path"]))
        for o in s.get("outputs") or []:
            doc.wasGeneratedBy(_dataset(doc, o["md5"], o["path"]), act)
        writes = set(s.get("writes") or ())
        if s["stage"] == "register" or "model" in writes:
            doc.wasGeneratedBy(model, act)
        if s["stage"] == "model_card" or "card" in writes:
            doc.wasGeneratedBy(card, act)
    by_name = {d["name"]: d for d in lineage.get("datasets") or []}
    for n in ("train", "test", "raw"):
        if n in by_name:
            doc.wasDerivedFrom(model, f"data:{by_name[n]['md5']}")
    doc.wasDerivedFrom(model, code)
    doc.wasDerivedFrom(model, params)
    doc.wasDerivedFrom(card, model)
    doc.wasAttributedTo(model, pipeline)
    for a in approvals:
        person = doc.agent(
            f"person:{_local(a['approver'])}",
            _about(PROV["Person"], str(a["approver"])),
        )
        act = doc.activity(
            f"approval:{_local(a['event_id'])}",
            a.get("timestamp"),
            a.get("timestamp"),
            _about(
                GOV["Approval"],
                f"{a.get('action')} to {a.get('alias')}",
                action=a.get("action"),
                alias=a.get("alias"),
                reason=a.get("reason"),
            ),
        )
        doc.used(act, model)
        doc.wasAssociatedWith(act, person)
    return doc


def serialize(doc: ProvDocument, fmt: str) -> str:
    """``prov-json`` (PROV-JSON, indented) or ``prov-n`` (PROV-N) text of a document."""
    if fmt == "prov-json":
        return str(doc.serialize(format="json", indent=2))
    if fmt == "prov-n":
        return str(doc.get_provn())
    raise ValueError(ERR_FORMAT.format(formats=list(FORMATS), value=fmt))


def stage_records(
    events: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    model: str,
    version: str,
    root: str | None = None,
) -> list[dict[str, Any]]:
    """The stage runs that made a model version, read from an OpenLineage event log.

    Walks the log's lineage graph back from the registered version (the ``register`` run's
    output ``namespace`` / ``model`` / ``version``) to the data, and turns each run into the
    ``stages`` records :func:`version_provenance` takes: ``stage``, ``run_id`` (the OpenLineage
    run id), ``via``, the run's own ``commit``, ``dirty`` and ``params_hash``, ``started`` /
    ``ended`` (the START and COMPLETE event times), ``inputs``
    and ``outputs`` as ``{"path", "md5"}`` (file datasets; paths relative to ``root`` when under
    it) and ``writes`` (``model`` when the run wrote the version).

    Returns
    -------
    list of dict
        Empty when the log does not hold the version's chain.
    """
    chain = lineage_graph(events).chain(namespace, model, version)
    prefix = root.rstrip("/") + "/" if root else None

    def files(datasets: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
        out = []
        for d in datasets:
            if d["namespace"] != FILE_NAMESPACE or d["version"] is None:
                continue
            path = str(d["name"])
            if prefix and path.startswith(prefix):
                path = path[len(prefix) :]
            out.append({"path": path, "md5": str(d["version"])})
        return out

    records = []
    for c in reversed(chain):  # data first, the registration last
        wrote_model = any(
            (o["namespace"], o["name"], o["version"]) == (namespace, model, version)
            for o in c["outputs"]
        )
        records.append(
            {
                "stage": c["stage"],
                "run_id": c["run_id"],
                "via": c["via"] or None,
                "commit": c.get("git_commit"),
                "dirty": c.get("git_dirty"),
                "params_hash": c.get("params_hash"),
                "started": c["started"],
                "ended": c["ended"],
                "inputs": files(c["inputs"]),
                "outputs": files(c["outputs"]),
                "writes": ["model"] if wrote_model else [],
            }
        )
    return records
