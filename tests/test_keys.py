"""The declared configuration keys (recbole_rlmm/keys/) against everything derived from them or
that must agree with them: the generated property files and tables, the models' code, RecBole's
code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import recbole

from recbole_rlmm.errors import ConfigError
from recbole_rlmm.keys import docs, schema, unread, values
from recbole_rlmm.keys.schema import RECBOLE, model_defaults, our_defaults
from recbole_rlmm.keys.sources import read_yaml

REPO = Path(__file__).resolve().parent.parent
_READ = re.compile(r"config\[\s*['\"]([A-Za-z_0-9]+)['\"]\s*\]")


def _keys_read(root: Path) -> set[str]:
    return {k for path in root.rglob("*.py") for k in _READ.findall(path.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("name", docs.GENERATED_IN)
def test_generated_tables_are_current(name: str) -> None:
    text = (REPO / name).read_text(encoding="utf-8")
    assert "<!-- keys:" in text
    assert docs.regenerate(text) == text, f"run `python -m recbole_rlmm.keys.docs --write` ({name})"


def test_property_files_are_generated_from_the_declarations() -> None:
    files = docs.property_files()
    assert {p.relative_to(REPO).as_posix() for p in files} == {
        p.relative_to(REPO).as_posix() for p in (REPO / "properties").rglob("*.yaml") if p.parent.name != "dataset"
    }
    for path, text in files.items():
        assert path.read_text(encoding="utf-8") == text, f"run `python -m recbole_rlmm.keys.docs --write` ({path.name})"
        assert read_yaml(path) == (our_defaults() if path.name == "overall.yaml" else model_defaults(path.stem))


def test_every_default_is_declared_once() -> None:
    """No yaml file of ours but the generated ones sets a model's key, and a key's default is one
    declaration: the models' own keys are not repeated in the overall table."""
    overall = {k.name for k in schema.OVERALL_KEYS}
    for model, table in schema.MODEL_KEYS.items():
        names = [k.name for k in table]
        assert len(names) == len(set(names)), model
        assert not set(names) & overall, model  # an overall key gets a model default in MODEL_OVERRIDES
        assert all(k.default is not RECBOLE for k in table), model
    names = [k.name for k in schema.OVERALL_KEYS]
    assert len(names) == len(set(names))
    for path in (REPO / "properties" / "dataset").glob("*.yaml"):
        assert not set(read_yaml(path)) & {k for m in schema.MODEL_KEYS for k in model_defaults(m)}, path


@pytest.mark.parametrize("model", list(schema.MODEL_KEYS))
def test_defaults_pass_their_own_checks(model: str) -> None:
    defaults = {k.name: schema.default_of(k.name, model) for k in (*schema.OVERALL_KEYS, *schema.MODEL_KEYS[model])}
    defaults = {k: v for k, v in defaults.items() if v is not None or k in ("modalities", "item_index_file", "benchmark_filename")}
    values.check_values(defaults, model)


def test_models_read_only_known_keys() -> None:
    """Every key a plugin model's code reads is in its table or the general keys."""
    general = unread.general_keys()
    for path in (REPO / "recbole_rlmm" / "model").glob("*.py"):
        read = set(_READ.findall(path.read_text()))
        owner = next((m for m in schema.MODEL_KEYS if m.lower() == path.stem), None)
        own = {k.name for k in schema.MODEL_KEYS.get(owner, ())}
        assert read <= general | own, (path.name, read - general - own)


def test_every_key_our_code_reads_is_known() -> None:
    known = unread.general_keys() | {k for m in schema.MODEL_KEYS for k in unread.keys_of(m)} | {"run_plan"}
    assert _keys_read(REPO / "recbole_rlmm") <= known


def test_recbole_code_keys_are_complete() -> None:
    """Keys RecBole's code reads that none of its yaml files names: RECBOLE_CODE_KEYS."""
    root = Path(recbole.__file__).parent
    yaml_keys = {k for path in (root / "properties").rglob("*.yaml") for k in (read_yaml(path) or {})}
    missing = _keys_read(root) - yaml_keys - unread.general_keys()
    assert not missing


def test_choices_are_defined_once() -> None:
    """Each choice tuple lives in recbole_rlmm/keys/choices.py only."""
    from recbole_rlmm.keys import choices

    names = [n for n in vars(choices) if n.isupper()]
    assert {"FUSIONS", "GATE_TYPES", "AGGREGATIONS"} <= set(names)
    for path in (REPO / "recbole_rlmm").rglob("*.py"):
        if path.name == "choices.py":
            continue
        text = path.read_text(encoding="utf-8")
        for name in names:
            assert not re.search(rf"^{name}\b[^=]*=", text, re.M), (path, name)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("epochs", True, "not an integer"),
        ("learning_rate", float("inf"), "not a finite number"),
        ("learning_rate", "1e-3", "not a number"),
        ("topk", [], "empty"),
        ("learner", "ADAM", None),  # RecBole lower-cases it
        ("state", "warning", None),
        ("log_dir", None, None),
        ("train_neg_sample_args", {"distribution": "uniform", "sample_nums": 1}, "did you mean sample_num"),
        ("load_col", {"inter": "user_id"}, "not a list of column names"),
        ("eval_args", {"spilt": {"RS": [0.8, 0.1, 0.1]}}, "did you mean split"),
        ("eval_args", {"split": {"RS": [0.8, 0.1, 0.1]}, "mode": {"valid": "uni100", "test": "full"}}, None),
        ("benchmark_filename", "train", "not a non-empty list"),
    ],
)
def test_value_checks(key: str, value: object, fragment: str | None) -> None:
    given = {key: value}
    if fragment is None:
        values.check_values(given)
    else:
        with pytest.raises(ConfigError, match=re.escape(fragment)):
            values.check_values(given)


def test_valid_metric_value_metrics_have_no_cutoff() -> None:
    assert values.valid_metric_problem("AUC", ["AUC", "LogLoss"], [10]) is None
    assert "no cut-off" in values.valid_metric_problem("AUC@10", ["AUC"], [10])
    assert "per cut-off" in values.valid_metric_problem("Recall", ["Recall"], [10])


def test_unread_keys() -> None:
    lines = unread.unread_key_warnings(
        {"fusoin": "command line", "learning_rate": "x.yaml", "knn_k": "x.yaml", "cl_weight": "x.yaml", "Epochs": "x.yaml"},
        "RLMultimodalRec",
    )
    assert len(lines) == 4
    assert "Did you mean 'fusion'?" in lines[0]
    assert "LATTICE" in lines[1] and "cl_weight" in lines[2] and "Did you mean 'epochs'?" in lines[3]
    # a RecBole model's own keys, and keys RecBole reads for every model
    assert unread.unread_key_warnings({"n_layers": "c", "reg_weight": "c", "gpu_id": "c"}, "LightGCN") == []
    assert unread.unread_key_warnings({"fusion": "c"}, "BPR")  # ours, not BPR's


def test_check_model_keys_works_with_recbole_config_values() -> None:
    values.check_model_keys({"fusion": "gate", "n_layers": 2}, "RLMultimodalRec")
    with pytest.raises(ConfigError, match="n_layers=-2"):
        values.check_model_keys({"n_layers": -2}, "RLMultimodalRec")
    values.check_model_keys({"n_layers": -2}, "LightGCN")  # RecBole's keys are RecBole's


def test_markdown_command(capsys: pytest.CaptureFixture) -> None:
    assert docs.main(["--markdown", "FREEDOM"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| key | default | allowed | meaning |") and "`mm_image_weight`" in out
