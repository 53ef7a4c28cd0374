"""Governed alias moves: promotion, refusal and rollback, each a ledger ``promotion`` event.

Moving an alias such as ``champion`` decides which model version answers real applicants, so it
is a governed action (DESIGN §3): :func:`promote` moves it only when the version

* has a lineage that resolves from the registry (``lineage.json`` of its run),
* passed the data-validation gate and the fairness gate (as its lineage records),
* can have its training data restored byte for byte (every dataset md5 is in the DVC cache or
  the remote),
* was trained from a clean git commit (no uncommitted change to what shapes the model),
* has its model card (the run artifact ``model_card/model_card.md``),

and a named approver gives a reason. Otherwise it refuses with :class:`PromotionRefused`, whose
message names every failed condition with a fixed phrase (``REFUSE_*``). Every promotion, every
refusal and every rollback is appended to the ledger as a ``promotion`` event::

    {"action": "promote" | "refuse" | "rollback", "requested": "promote" | "rollback",
     "model": {"name", "version"}, "alias", "previous_version", "approver", "reason",
     "checks": {name: {"passed": true | false | null, "detail"}}, "failures": [...],
     "lineage_id", "mlflow_run_id", "git_commit"}

so :func:`history` answers "which version held the alias at time T, who approved it and why"
from the ledger alone, without MLflow. Registration events that set the same alias (the
pipeline aliases new versions ``candidate``) count as moves too, so the history of any alias is
complete as far as governance moved it.

The alias is moved in the registry first and the event appended right after; if the append
fails the alias is put back, so no move stays unrecorded. Moves of one model are serialised by a
file lock under the state directory, so the ledger's order is the registry's order.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from governance.core.text import TextRefused, refuse_control
from governance.ledger import Ledger, Receipt, Record
from governance.ledger.canonical import utc_text
from governance.ledger.paging import iter_find
from governance.registry import mlflow as registry
from governance.settings import Settings

DEFAULT_ALIAS = registry.CHAMPION
EVENT_TYPE = "promotion"
ACTIONS = ("promote", "refuse", "rollback")
MOVES = ("promote", "rollback", "register")  # actions that point an alias at a version
CHECK_NAMES = ("lineage", "validation", "fairness", "data", "git_clean", "model_card")
CARD_ARTIFACT = "model_card/model_card.md"

# One fixed phrase per refused condition: tests and callers can rely on them.
REFUSE_LINEAGE = "its lineage does not resolve"
REFUSE_VALIDATION = "it did not pass the data validation gate"
REFUSE_FAIRNESS = "it did not pass the fairness gate"
REFUSE_DATA = "its training data cannot be restored from the DVC cache or remote"
REFUSE_DIRTY = "it was trained from uncommitted changes (git dirty)"
REFUSE_CARD = "its model card is missing"
REFUSE_NO_PREVIOUS = "the ledger records no earlier version to roll back to"
REFUSE_ALIAS_DRIFT = "the alias was moved outside governance since the last recorded move"
REFUSE_DUTIES = "the approver registered this version (separation of duties)"
REFUSALS: dict[str, str] = {
    "lineage": REFUSE_LINEAGE,
    "validation": REFUSE_VALIDATION,
    "fairness": REFUSE_FAIRNESS,
    "data": REFUSE_DATA,
    "git_clean": REFUSE_DIRTY,
    "model_card": REFUSE_CARD,
    "previous_version": REFUSE_NO_PREVIOUS,
    "alias_consistent": REFUSE_ALIAS_DRIFT,
    "separation_of_duties": REFUSE_DUTIES,
}

ERR_REQUIRED = "{what} is required (a non-empty string)"
ERR_REFUSED = "refusing to {action} {name} version {version} to {alias}: {failures}"
ERR_REFUSED_ROLLBACK = "refusing to roll back {alias} of {name}: {failures}"
ERR_ALIAS = "cannot set alias {alias!r}: {problem}"
ERR_AT = "--at: {value!r} is not an ISO 8601 time"


class PromotionError(ValueError):
    """The request is malformed (no approver, unknown version ...); nothing was recorded."""


class UnknownVersion(PromotionError):
    """The registry has no such model or version (the HTTP layer's 404)."""


class PromotionRefused(PromotionError):
    """The alias was not moved because a condition failed; the refusal is in the ledger.

    Attributes
    ----------
    failures
        The names of the failed conditions (keys of :data:`REFUSALS`).
    event
        The ledger receipt of the recorded refusal.
    checks
        Every condition checked, with ``passed`` (``None`` when it could not be checked) and a
        detail.
    """

    def __init__(
        self,
        message: str,
        *,
        failures: list[str],
        event: Receipt,
        checks: Mapping[str, Mapping[str, Any]],
    ) -> None:
        super().__init__(message)
        self.failures = failures
        self.event = event
        self.checks = dict(checks)


# -- checks --------------------------------------------------------------------------------


def _check(passed: bool | None, detail: str) -> dict[str, Any]:
    return {"passed": passed, "detail": detail}


def _version_info(client: Any, model: str, version: str) -> Any:
    try:
        return registry.version_info(client, model, version)
    except registry.RegistryLookupError as exc:
        raise UnknownVersion(str(exc)) from exc


def _alias_target(client: Any, model: str, alias: str) -> str | None:
    try:
        return registry.alias_version(client, model, alias)
    except registry.RegistryLookupError:
        return None


def _card_check(client: Any, run_id: str) -> dict[str, Any]:
    from mlflow.exceptions import MlflowException

    folder = CARD_ARTIFACT.rpartition("/")[0]
    try:
        listed = {a.path: a for a in client.list_artifacts(run_id, folder)}
    except (MlflowException, OSError) as exc:
        return _check(False, f"cannot list the artifacts of run {run_id}: {exc}")
    found = listed.get(CARD_ARTIFACT)
    if found is None or found.is_dir:
        return _check(False, f"run {run_id} has no artifact {CARD_ARTIFACT}")
    if not found.file_size:
        return _check(False, f"run {run_id}: artifact {CARD_ARTIFACT} is empty")
    return _check(True, f"run {run_id}: {CARD_ARTIFACT} ({found.file_size} bytes)")


def _data_check(lineage: Mapping[str, Any]) -> dict[str, Any]:
    from governance.core.lineage import DataStore

    storage = lineage.get("storage")
    datasets = lineage.get("datasets")
    if not isinstance(storage, Mapping) or not storage.get("cache") or not storage.get("remote"):
        return _check(False, "the lineage records no DVC cache / remote location")
    if not isinstance(datasets, list) or not datasets:
        return _check(False, "the lineage names no datasets")
    store = DataStore(Path(storage["cache"]), Path(storage["remote"]))
    missing: list[str] = []
    for d in datasets:
        try:
            store.locate(str(d["md5"]))
        except (FileNotFoundError, KeyError, TypeError):
            missing.append(f"{d.get('name', '?')} ({d.get('path', '?')}, md5 {d.get('md5')})")
    if missing:
        return _check(False, "not stored: " + ", ".join(missing))
    return _check(True, f"{len(datasets)} datasets restorable by md5")


def check_version(settings: Settings, model: str, version: str) -> dict[str, Any]:
    """Check every promotion condition of a registered version; never moves anything.

    Parameters
    ----------
    settings
        Where the registry lives.
    model, version
        The registered model version.

    Returns
    -------
    dict
        ``{"checks": {name: {"passed", "detail"}}, "failures": [names], "lineage": dict | None,
        "run_id": str}``; ``passed`` is ``None`` for a condition that could not be checked
        because the lineage did not resolve (only ``lineage`` is then listed as failed).

    Raises
    ------
    PromotionError
        If the model or version is not registered.
    """

    with registry.tracking(settings) as client:
        info = _version_info(client, model, version)
        run_id = str(info.run_id)
        checks: dict[str, dict[str, Any]] = {}
        lineage: dict[str, Any] | None = None
        try:
            lineage = registry.resolve(settings, model, version)
            checks["lineage"] = _check(True, f"lineage.json of MLflow run {run_id}")
        except LookupError as exc:
            checks["lineage"] = _check(False, str(exc))
        if lineage is None:
            skipped = _check(None, "not checked: the lineage does not resolve")
            for name in ("validation", "fairness", "data", "git_clean"):
                checks[name] = dict(skipped)
        else:
            validation = lineage.get("validation") or {}
            success = validation.get("success") is True
            checks["validation"] = _check(
                success,
                f"suite {validation.get('suite')!r} on md5 {validation.get('data_md5')}: "
                + ("passed" if success else f"success is {validation.get('success')!r}"),
            )
            fairness = lineage.get("fairness") or {}
            passed = fairness.get("passed") is True
            checks["fairness"] = _check(
                passed, str(fairness.get("message") or f"passed is {fairness.get('passed')!r}")
            )
            checks["data"] = _data_check(lineage)
            commit, dirty = lineage.get("git_commit"), lineage.get("git_dirty")
            clean = dirty is False and bool(commit)
            detail = f"commit {commit}" + ("" if clean else f", dirty={dirty!r}")
            changes = lineage.get("git_changes") or []
            if not clean and changes:
                detail += ", uncommitted: " + ", ".join(map(str, changes[:10]))
            checks["git_clean"] = _check(clean, detail)
        checks["model_card"] = _card_check(client, run_id)
    failures = [name for name in CHECK_NAMES if checks[name]["passed"] is False]
    return {"checks": checks, "failures": failures, "lineage": lineage, "run_id": run_id}


# -- the ledger side -----------------------------------------------------------------------


def same_person(a: str | None, b: str | None) -> bool:
    """Whether two recorded identities name the same person (case and spacing ignored)."""
    if not a or not b:
        return False
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _with_duties(settings: Settings, checked: dict[str, Any], approver: str) -> dict[str, Any]:
    """Add the separation-of-duties check: whoever registered a version cannot approve it.

    On by default; ``GOVERNANCE_SEPARATION_OF_DUTIES=off`` records it as not enforced.
    """
    registered_by = (checked.get("lineage") or {}).get("registered_by")
    if not settings.separation_of_duties:
        check = _check(None, "not enforced (GOVERNANCE_SEPARATION_OF_DUTIES=off)")
    elif registered_by is None:
        check = _check(None, "the version records no registrant (registered before this check)")
    elif same_person(registered_by, approver):
        check = _check(False, f"{approver!r} registered it and cannot also approve it")
    else:
        check = _check(True, f"registered by {registered_by!r}, approved by {approver!r}")
    failures = [f for f in checked["failures"] if f != "separation_of_duties"]
    if check["passed"] is False:
        failures.append("separation_of_duties")
    return {
        **checked,
        "checks": {**checked["checks"], "separation_of_duties": check},
        "failures": failures,
    }


def _required(value: str | None, what: str, *, prose: bool = False) -> str:
    """Given, not blank, and without control characters (a reason may hold newlines)."""
    if not isinstance(value, str) or not value.strip():
        raise PromotionError(ERR_REQUIRED.format(what=what))
    try:
        refuse_control(what, value, prose=prose)
    except TextRefused as exc:
        raise PromotionError(str(exc)) from None
    return value.strip()


@contextlib.contextmanager
def _model_lock(settings: Settings, model: str) -> Iterator[None]:
    """Serialise alias moves of one model across processes on this machine."""
    folder = settings.home / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(model.encode()).hexdigest()[:16]
    with (folder / f"promotion-{digest}.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _records(ledger: Ledger, model: str, type_: str) -> Iterator[Record]:
    return iter_find(ledger, model=model, type=type_)


def _as_event(record: Record) -> dict[str, Any] | None:
    """A ``promotion`` or alias-setting ``registration`` record as a history entry."""
    b = record.body
    model = b.get("model") or {}
    version = model.get("version")
    base = {
        "event_id": record.id,
        "seq": record.seq,
        "ts": record.ts,
        "model": model.get("name"),
        "version": None if version is None else str(version),
        "alias": b.get("alias"),
        "lineage_id": b.get("lineage_id"),
    }
    if record.type == "registration":
        return {
            **base,
            "action": "register",
            "requested": "register",
            "previous_version": None,
            "approver": None,
            "reason": "registered by the governed pipeline",
            "failures": [],
            "undoes": None,
        }
    if record.type != EVENT_TYPE:
        return None
    return {
        **base,
        "action": b.get("action"),
        "requested": b.get("requested", b.get("action")),
        "previous_version": b.get("previous_version"),
        "approver": b.get("approver"),
        "reason": b.get("reason"),
        "failures": list(b.get("failures") or []),
        "undoes": b.get("undoes"),
    }


def events(
    ledger: Ledger, model: str, *, alias: str | None = DEFAULT_ALIAS
) -> list[dict[str, Any]]:
    """Every promotion event (moves and refusals) of a model, oldest first, from the ledger.

    Parameters
    ----------
    ledger
        The ledger.
    model
        Registered model name.
    alias
        Only events about this alias; ``None`` for all aliases.

    Returns
    -------
    list[dict]
        History entries: ``event_id``, ``seq``, ``ts``, ``action`` (``promote``, ``rollback``,
        ``refuse`` or ``register``), ``requested``, ``model``, ``version``, ``alias``,
        ``previous_version``, ``approver``, ``reason``, ``failures``, ``lineage_id``.
    """
    found: list[dict[str, Any]] = []
    for type_ in (EVENT_TYPE, "registration"):
        for record in _records(ledger, model, type_):
            event = _as_event(record)
            if event is None or (alias is not None and event["alias"] != alias):
                continue
            if event["action"] == "register" and not event["alias"]:
                continue
            found.append(event)
    found.sort(key=lambda e: e["seq"])
    held: dict[str, str | None] = {}  # alias -> version, to say what a registration replaced
    for event in found:
        if event["action"] == "register":
            event["previous_version"] = held.get(event["alias"])
        if event["action"] in MOVES:
            held[event["alias"]] = event["version"]
    return found


def parse_time(value: str | datetime) -> datetime:
    """An aware UTC datetime from an ISO 8601 string or datetime; naive times are UTC.

    Raises
    ------
    PromotionError
        If the string is not ISO 8601, or the time is outside years 1..9999 in UTC.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise PromotionError(ERR_AT.format(value=value)) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PromotionError(
            f"--at: {value.isoformat()} is outside the years 1 to 9999 in UTC"
        ) from None


def history(
    ledger: Ledger,
    model: str,
    *,
    alias: str | None = DEFAULT_ALIAS,
    at: str | datetime | None = None,
) -> list[dict[str, Any]] | dict[str, Any]:
    """Who moved an alias, when and why; or which version held it at a given time.

    Answers from the ledger alone (no registry access).

    Parameters
    ----------
    ledger
        The ledger.
    model
        Registered model name.
    alias
        The alias (``None``: every alias; only without ``at``).
    at
        A point in time (ISO 8601 or datetime; a time without zone is taken as UTC).

    Returns
    -------
    list[dict] | dict
        Without ``at``: :func:`events` (moves and refusals, oldest first). With ``at``:
        ``{"model", "alias", "at", "version", "action", "since", "approver", "reason",
        "event_id", "lineage_id", "previous_version"}`` describing the last move at or before
        ``at``; ``version`` and the rest are ``None`` if the alias pointed nowhere then.

    Raises
    ------
    PromotionError
        If ``at`` is not a time, or ``at`` is given without an alias.
    """
    found = events(ledger, model, alias=alias)
    if at is None:
        return found
    if alias is None:
        raise PromotionError("a point in time needs an alias")
    when = parse_time(at)
    current: dict[str, Any] | None = None
    for event in found:
        if event["action"] in MOVES and parse_time(event["ts"]) <= when:
            current = event
    answer: dict[str, Any] = {"model": model, "alias": alias, "at": utc_text(when)}
    keys = ("version", "action", "approver", "reason", "event_id", "lineage_id")
    if current is None:
        return {**answer, **dict.fromkeys(keys), "since": None, "previous_version": None}
    return {
        **answer,
        **{k: current[k] for k in keys},
        "since": current["ts"],
        "previous_version": current["previous_version"],
    }


def _last_move(ledger: Ledger, model: str, alias: str) -> dict[str, Any] | None:
    moves = [e for e in events(ledger, model, alias=alias) if e["action"] in MOVES]
    return moves[-1] if moves else None


def _record(
    ledger: Ledger,
    *,
    action: str,
    requested: str,
    model: str,
    version: str | None,
    alias: str,
    previous: str | None,
    approver: str,
    reason: str,
    checked: Mapping[str, Any] | None,
    extra: Mapping[str, Any] | None = None,
) -> Receipt:
    lineage = checked.get("lineage") if checked else None
    body: dict[str, Any] = {
        "action": action,
        "requested": requested,
        "model": {"name": model, "version": version},
        "alias": alias,
        "previous_version": previous,
        "approver": approver,
        "reason": reason,
        "checks": dict(checked["checks"]) if checked else {},
        "failures": list(checked["failures"]) if checked else [],
        "lineage_id": _lineage_id(checked) if checked else None,
        "mlflow_run_id": checked["run_id"] if checked else None,
        "git_commit": lineage.get("git_commit") if lineage else None,
        **(extra or {}),
    }
    return ledger.append(EVENT_TYPE, body)


def _refuse(
    ledger: Ledger,
    message: str,
    *,
    checked: Mapping[str, Any],
    **fields: Any,
) -> PromotionRefused:
    receipt = _record(ledger, action="refuse", checked=checked, **fields)
    return PromotionRefused(
        message, failures=list(checked["failures"]), event=receipt, checks=checked["checks"]
    )


def _describe(failures: list[str], checks: Mapping[str, Mapping[str, Any]]) -> str:
    return "; ".join(f"{REFUSALS[f]} ({checks[f]['detail']})" for f in failures)


def _move(
    settings: Settings,
    ledger: Ledger,
    *,
    action: str,
    model: str,
    version: str,
    alias: str,
    previous: str | None,
    approver: str,
    reason: str,
    checked: Mapping[str, Any],
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Point the alias at the version, then record it; put the alias back if recording fails."""
    from mlflow.exceptions import MlflowException

    with registry.tracking(settings) as client:
        try:
            client.set_registered_model_alias(model, alias, version)
        except MlflowException as exc:  # e.g. a reserved alias name; nothing moved or recorded
            raise PromotionError(ERR_ALIAS.format(alias=alias, problem=exc.message)) from None
        try:
            receipt = _record(
                ledger,
                action=action,
                requested=action,
                model=model,
                version=version,
                alias=alias,
                previous=previous,
                approver=approver,
                reason=reason,
                checked=checked,
                extra=extra,
            )
        except BaseException:
            if previous is None:
                client.delete_registered_model_alias(model, alias)
            else:
                client.set_registered_model_alias(model, alias, previous)
            raise
    return {
        "action": action,
        "model": model,
        "version": version,
        "alias": alias,
        "previous_version": previous,
        "approver": approver,
        "reason": reason,
        "checks": dict(checked["checks"]),
        "lineage_id": _lineage_id(checked),
        "event": {"id": receipt.id, "seq": receipt.seq, "ts": receipt.ts, "hash": receipt.hash},
        **(extra or {}),
    }


def _lineage_id(checked: Mapping[str, Any]) -> str | None:
    from governance.core.lineage import lineage_id

    lineage = checked.get("lineage")
    return lineage_id(lineage) if lineage else None


OnMove = Callable[[dict[str, Any]], None]


def promote(
    settings: Settings,
    ledger: Ledger,
    model: str,
    version: str | int,
    *,
    approver: str,
    reason: str,
    alias: str = DEFAULT_ALIAS,
    on_move: OnMove | None = None,
) -> dict[str, Any]:
    """Point ``alias`` at a version if it passes every condition; record the move or refusal.

    Parameters
    ----------
    settings
        Where the registry and state directory live.
    ledger
        The ledger the event is appended to.
    model, version
        The registered model version to promote.
    approver
        Who approves (recorded).
    reason
        Why (recorded).
    alias
        The alias to move (default ``champion``).
    on_move
        Called with the result after a successful move (e.g. to drop a serving cache).

    Returns
    -------
    dict
        ``action`` (``"promote"``), ``model``, ``version``, ``alias``, ``previous_version``,
        ``approver``, ``reason``, ``checks``, ``lineage_id`` and ``event`` (its ledger id, seq,
        ts and hash). ``alias_drift`` is present when the registry's alias disagreed with the
        ledger's last recorded move.

    Raises
    ------
    PromotionRefused
        If a condition failed; the message names each one (:data:`REFUSALS`) and the refusal
        is recorded in the ledger.
    PromotionError
        If approver or reason is empty or the version is not registered (nothing recorded).
    """

    approver = _required(approver, "approver")
    reason = _required(reason, "reason", prose=True)
    alias = _required(alias, "alias")
    version = str(version)
    with _model_lock(settings, model):
        checked = _with_duties(settings, check_version(settings, model, version), approver)
        with registry.tracking(settings) as client:
            previous = _alias_target(client, model, alias)
        fields: dict[str, Any] = {
            "requested": "promote",
            "model": model,
            "version": version,
            "alias": alias,
            "previous": previous,
            "approver": approver,
            "reason": reason,
        }
        if checked["failures"]:
            message = ERR_REFUSED.format(
                action="promote",
                name=model,
                version=version,
                alias=alias,
                failures=_describe(checked["failures"], checked["checks"]),
            )
            raise _refuse(ledger, message, checked=checked, **fields)
        last = _last_move(ledger, model, alias)
        believed = last["version"] if last else None
        extra = (
            {"alias_drift": {"ledger": believed, "registry": previous}}
            if believed != previous
            else None
        )
        result = _move(
            settings,
            ledger,
            action="promote",
            model=model,
            version=version,
            alias=alias,
            previous=previous,
            approver=approver,
            reason=reason,
            checked=checked,
            extra=extra,
        )
    if on_move is not None:
        on_move(result)
    return result


def rollback(
    settings: Settings,
    ledger: Ledger,
    model: str,
    *,
    approver: str,
    reason: str,
    alias: str = DEFAULT_ALIAS,
    on_move: OnMove | None = None,
) -> dict[str, Any]:
    """Point ``alias`` back at the version it held before its last recorded move.

    The target comes from the ledger (the last move's ``previous_version``), the registry must
    still agree with that last move, and the target must pass the same checks as
    :func:`promote`. Rolling back twice undoes the first rollback.

    Parameters
    ----------
    settings, ledger, model, approver, reason, alias, on_move
        As for :func:`promote`.

    Returns
    -------
    dict
        As for :func:`promote`, with ``action`` ``"rollback"`` and ``undoes`` (the event id of
        the move rolled back).

    Raises
    ------
    PromotionRefused
        If there is nothing to roll back to, the alias was moved outside governance, or the
        target fails a check; recorded in the ledger.
    PromotionError
        If approver or reason is empty (nothing recorded).
    """

    approver = _required(approver, "approver")
    reason = _required(reason, "reason", prose=True)
    alias = _required(alias, "alias")
    with _model_lock(settings, model):
        last = _last_move(ledger, model, alias)
        with registry.tracking(settings) as client:
            current = _alias_target(client, model, alias)
        target = last["previous_version"] if last else None
        fields: dict[str, Any] = {
            "requested": "rollback",
            "model": model,
            "alias": alias,
            "previous": current,
            "approver": approver,
            "reason": reason,
        }
        problems: dict[str, dict[str, Any]] = {}
        if last is None or target is None:
            what = "no recorded move" if last is None else f"event {last['event_id']}"
            problems["previous_version"] = _check(
                False, f"{what}: {alias} pointed at no version before"
            )
        if last is not None and current != last["version"]:
            problems["alias_consistent"] = _check(
                False,
                f"the ledger says {alias} is version {last['version']}, the registry says"
                f" {current}",
            )
        if problems:
            checked: dict[str, Any] = {
                "checks": problems,
                "failures": list(problems),
                "lineage": None,
                "run_id": None,
            }
            message = ERR_REFUSED_ROLLBACK.format(
                alias=alias, name=model, failures=_describe(list(problems), problems)
            )
            raise _refuse(ledger, message, checked=checked, version=target, **fields)
        assert last is not None and target is not None
        try:
            checked = check_version(settings, model, target)
        except PromotionError as exc:  # the earlier version was deleted from the registry
            gone = {"lineage": _check(False, str(exc))}
            checked = {"checks": gone, "failures": ["lineage"], "lineage": None, "run_id": None}
        if checked["failures"]:
            message = ERR_REFUSED.format(
                action="roll back",
                name=model,
                version=target,
                alias=alias,
                failures=_describe(checked["failures"], checked["checks"]),
            )
            raise _refuse(ledger, message, checked=checked, version=target, **fields)
        result = _move(
            settings,
            ledger,
            action="rollback",
            model=model,
            version=target,
            alias=alias,
            previous=current,
            approver=approver,
            reason=reason,
            checked=checked,
            extra={"undoes": last["event_id"]},
        )
    if on_move is not None:
        on_move(result)
    return result
