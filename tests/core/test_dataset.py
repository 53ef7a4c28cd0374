"""Dataset specs and ingestion."""

from __future__ import annotations

from pathlib import Path

import pytest

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
            "hschool:", "afam: {kind: categorical, categories: [no, yes], reason: r}\n  hschool:"
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
