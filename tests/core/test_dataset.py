"""Dataset specs and ingestion."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from governance.core.dataset import builtin_specs, file_md5, ingest, load_spec


def test_builtin_specs_load_and_keep_sensitive_attributes_out_of_inputs() -> None:
    assert builtin_specs() == ["credit", "hmda"]
    for name in builtin_specs():
        spec = load_spec(name)
        assert not set(spec.sensitive_features) & set(spec.feature_names)
        assert all(f.reason for f in spec.features)


def test_ingest_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    spec = load_spec("hmda")
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    frame = ingest(spec, a)
    ingest(spec, b)
    assert file_md5(a) == file_md5(b)
    assert len(frame) == 2380 and "application_id" in frame.columns
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\n", "missing keys"),
        (": : :\n", "invalid YAML"),
    ],
)
def test_broken_specs_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_spec(str(path))
    assert str(path) in str(err.value)


def test_a_sensitive_input_is_refused(tmp_path: Path) -> None:
    text = (
        Path(load_spec("hmda").spec_path)
        .read_text()
        .replace(
            "hschool:",
            'afam: {kind: categorical, categories: ["no", "yes"], reason: r}\n  hschool:',
        )
    )
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"sensitive features \['afam'\] must not be model inputs"):
        load_spec(str(path))


def test_unknown_dataset_and_source_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        load_spec("nope")
    with pytest.raises(ValueError, match="cannot read source"):
        ingest(load_spec("hmda"), tmp_path / "x.csv", source=str(tmp_path / "missing.csv"))


def _hmda(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> str:
    """The hmda spec with ``change`` applied, written to a file of its own."""
    raw = yaml.safe_load(Path(load_spec("hmda").spec_path).read_text())
    raw["name"] = "mine"
    change(raw)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        *parents, leaf = key.split(".")
        node = raw
        for p in parents:
            node = node[p]
        node[leaf] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # words that end up in recorded decisions and notices
        (_set("outcomes", {"adverse": "deny", "favorable": "deny"}), "both 'deny'"),
        (_set("outcomes", {"adverse": "deny"}), "exactly adverse and favorable, got ['adverse']"),
        (_set("outcomes", ["deny", "approve"]), "outcomes must be a mapping, got list"),
        (_set("outcomes.favorable", "ok\nApproved"), "outcomes.favorable contains a control"),
        (_set("features.insurance.reason", ""), "feature 'insurance' needs an adverse-action"),
        (_set("features.lvrat.reason", None), "feature 'lvrat' needs an adverse-action reason"),
        (_set("features.pirat.reason", "Debt\n5. Forged"), "'pirat' reason contains a control"),
        (_set("features.lvrat.label", "ltv\n- forged"), "'lvrat' label contains a control"),
        (_set("features.lvrat.label", 5), "feature 'lvrat': label must be text, got 5"),
        (_set("title", "Boston\x1b[2J"), "title contains a control character (U+001B)"),
        (_set("intended_use", "ok\x00"), "intended_use contains a control character (U+0000)"),
        (_set("description", ["a"]), "description must be text, got list"),
        # YAML booleans: `yes` unquoted
        (_set("adverse_label", True), "adverse_label must be a value the data holds, got True"),
        (_set("features.phist.categories", [False, True]), "'phist' category must be a value"),
        (_set("features.phist.nullable", "false"), "nullable must be true or false, got 'false'"),
        # structure
        (_set("features", ["pirat"]), "features must be a mapping, got list"),
        (_set("features.pirat", "numeric"), "feature 'pirat' must be a mapping"),
        (_set("features.pirat.categories", "yes"), "categories must be a list"),
        (_set("features.pirat.bounds", [5, 1]), "bounds must be [low, high] with low <= high"),
        # what a reason's words say, checked against the fitted model at train
        (_set("features.pirat.adverse", "low"), "'pirat': adverse: low contradicts action: dec"),
        (_set("features.unemp.adverse", "up"), "adverse must be high or low for a numeric feat"),
        (_set("features.unemp.adverse", ["high"]), "adverse must be high or low for a numeric"),
        (_set("features.phist.adverse", "yes"), "adverse must list some of its categories"),
        (_set("features.phist.adverse", []), "adverse must list some of its categories"),
        (_set("features.phist.adverse", 5), "adverse must list some of its categories"),
        (_set("features.phist.adverse", [True]), "'phist' adverse must be a value the data holds"),
        (_set("features.phist.adverse", ["no", "yes"]), "adverse lists every category; leave"),
        (_set("features.hirat.label", ""), "feature 'hirat' needs a label (its name in plain"),
        (_set("features.phist.adverse", ["maybe"]), "categories ['no', 'yes'], got ['maybe']"),
        (_set("features.phist.adverse", ["yes", "yes"]), "adverse must list some of its categ"),
        (_set("sensitive_features", "afam"), "sensitive_features must be a list of column names"),
        (_set("sensitive_features", ["afam", "afam"]), "names ['afam'] more than once"),
        (_set("rename", ["rownames"]), "rename must be a mapping, got list"),
        (_set("rename", {"rownames": 5}), "rename: 'rownames' must become a column name"),
        (_set("source", 3), "source must be one line of text, got 3"),
        (_set("suite", None), "suite must be one line of text, got None"),
        (_set("model_name", ""), "model_name must be one line of text"),
        # columns in two roles
        (_set("target", "pirat"), "target 'pirat' must be neither a model input nor sensitive"),
        (_set("id_column", "afam"), "id_column 'afam' must be neither a model input nor sensitive"),
        (_set("id_column", "deny"), "id_column and target are both 'deny'"),
    ],
)
def test_a_spec_key_of_the_wrong_kind_is_refused_by_name(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    """Each used to be taken as written: a spec whose outcomes were both ``deny`` recorded every
    applicant as denied; an empty reason dropped the strongest reason from the notice; a
    newline in a reason forged a fifth reason and a section in the notice."""
    path = _hmda(tmp_path, change)
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        load_spec(path)
    assert str(err.value).startswith(f"dataset spec {path}: ")


def _derived(value: object) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        raw["derived"] = {"band": value}
        raw["sensitive_features"] = ["afam", "band"]

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_derived({"from": "pirat", "bins": [0, 1, 9], "labels": ["a", "b"]}), "['pirat'] must"),
        (_derived({"bins": [0, 1], "labels": ["a"]}), "derived.band must have exactly from, bins"),
        (_derived({"from": "x", "bins": [1, 0], "labels": ["a"]}), "bins must be two or more"),
        (_derived({"from": "x", "bins": ["a", "b"], "labels": ["a"]}), "bins must be two or more"),
        (_derived({"from": "x", "bins": [0, 1, 2], "labels": ["a"]}), "needs 2 labels, one per"),
        (_derived({"from": "x", "bins": [0, 1, 2], "labels": ["a", "a"]}), "names ['a'] more"),
    ],
)
def test_a_derived_sensitive_feature_is_checked(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    """A band computed from a model input made the card say sensitive attributes were never
    inputs while the model used them; bad bins failed only at the fairness stage."""
    with pytest.raises(ValueError, match=re.escape(message)):
        load_spec(_hmda(tmp_path, change))


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: the feature read was not the one reviewed."""
    text = Path(load_spec("hmda").spec_path).read_text()
    path = tmp_path / "twice.yaml"
    path.write_text(text.replace("  hschool:", "  pirat: {kind: numeric, reason: r}\n  hschool:"))
    with pytest.raises(ValueError, match=r"invalid YAML: .*key 'pirat' is given twice"):
        load_spec(str(path))


def test_a_well_formed_own_spec_loads_as_written(tmp_path: Path) -> None:
    path = _hmda(tmp_path, _set("outcomes", {"adverse": "refer", "favorable": "accept"}))
    spec = load_spec(path)
    assert spec.outcomes == {"adverse": "refer", "favorable": "accept"}
    assert spec.features == load_spec("hmda").features


def test_categories_a_reason_speaks_of_are_read_as_the_categories_are(tmp_path: Path) -> None:
    def numbered(raw: dict[str, Any]) -> None:
        raw["features"]["phist"] |= {"categories": [0, 1], "adverse": [1]}

    assert load_spec(_hmda(tmp_path, numbered)).feature("phist").adverse == ("1",)


def test_the_values_a_reason_speaks_of_are_stated_or_implied_by_the_action() -> None:
    hmda, credit = load_spec("hmda"), load_spec("credit")
    assert hmda.feature("pirat").adverse == ("high",)  # action: decrease
    assert credit.feature("Income").adverse == ("low",)  # action: increase
    assert hmda.feature("chist").adverse == ("high",)  # stated
    assert hmda.feature("hschool").adverse == ("no",)  # a category
    assert hmda.feature("unemp").adverse == ()  # "Unemployment rate in ...": no direction
    assert credit.feature("Time").adverse == ()  # action: any


def test_a_copy_keeping_a_built_in_name_is_refused(tmp_path: Path) -> None:
    """An unrenamed copy of hmda.yaml used the mortgage notice wording and shared the built-in
    dataset's MLflow experiment, whatever it described."""
    path = tmp_path / "copy.yaml"
    path.write_text(Path(load_spec("hmda").spec_path).read_text())
    with pytest.raises(ValueError, match=r"name 'hmda' is a built-in dataset's: give your spec"):
        load_spec(str(path))
    assert load_spec("hmda").name == "hmda" and load_spec(load_spec("credit").spec_path)
