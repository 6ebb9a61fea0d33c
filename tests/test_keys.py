"""The table of configuration keys (recbole_rlmm/checks/keys.py) against everything it must
agree with: our property files, the models' code, RecBole's code and the generated tables in
README.md and docs/CHECKS.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import recbole

from recbole_rlmm.checks import keys
from recbole_rlmm.config import ConfigError, model_defaults, properties_dir, read_yaml
from recbole_rlmm.model.layers import GATE_TYPES

REPO = Path(__file__).resolve().parent.parent
_READ = re.compile(r"config\[\s*['\"]([A-Za-z_0-9]+)['\"]\s*\]")


def _keys_read(root: Path) -> set[str]:
    return {k for path in root.rglob("*.py") for k in _READ.findall(path.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("name", keys.GENERATED_IN)
def test_generated_tables_are_current(name: str) -> None:
    text = (REPO / name).read_text(encoding="utf-8")
    assert "<!-- keys:" in text
    assert keys.regenerate(text) == text, f"run `python -m recbole_rlmm.checks.keys --write` ({name})"


def test_every_model_key_of_our_yaml_is_in_the_table_and_back() -> None:
    for model, table in keys.MODEL_KEYS.items():
        yaml_keys = set(model_defaults(model))
        assert yaml_keys <= {k.name for k in table}, model
        # keys without a default in the yaml must be optional (off unless set)
        assert all(k.nullable for k in table if k.name not in yaml_keys), model
    overall = set(read_yaml(properties_dir() / "overall.yaml"))
    assert overall <= {k.name for k in keys.OVERALL_KEYS}


@pytest.mark.parametrize("model", list(keys.MODEL_KEYS))
def test_defaults_pass_their_own_checks(model: str) -> None:
    values = {k.name: keys.default_of(k.name, model) for k in (*keys.OVERALL_KEYS, *keys.MODEL_KEYS[model])}
    values = {k: v for k, v in values.items() if v is not None or k in ("modalities", "item_index_file", "benchmark_filename")}
    values["eval_args"] = read_yaml(properties_dir() / "overall.yaml")["eval_args"]
    keys.check_values(values, model)


def test_models_read_only_known_keys() -> None:
    """Every key a plugin model's code reads is in its table or the general keys."""
    general = keys.general_keys()
    for path in (REPO / "recbole_rlmm" / "model").glob("*.py"):
        read = set(_READ.findall(path.read_text()))
        owner = next((m for m in keys.MODEL_KEYS if m.lower() == path.stem), None)
        own = {k.name for k in keys.MODEL_KEYS.get(owner, ())}
        assert read <= general | own, (path.name, read - general - own)


def test_every_key_our_code_reads_is_known() -> None:
    known = keys.general_keys() | {k for m in keys.MODEL_KEYS for k in keys.keys_of(m)}
    assert _keys_read(REPO / "recbole_rlmm") <= known


def test_recbole_code_keys_are_complete() -> None:
    """Keys RecBole's code reads that none of its yaml files names: RECBOLE_CODE_KEYS."""
    root = Path(recbole.__file__).parent
    yaml_keys = {k for path in (root / "properties").rglob("*.yaml") for k in (read_yaml(path) or {})}
    missing = _keys_read(root) - yaml_keys - keys.general_keys()
    assert not missing


def test_choices_match_the_code() -> None:
    assert keys.GATE_TYPES == GATE_TYPES
    from recbole_rlmm.model import mmgcn, rlmultimodalrec

    assert rlmultimodalrec.FUSIONS == keys.FUSIONS and mmgcn.AGGREGATIONS == keys.AGGREGATIONS


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
    values = {key: value}
    if fragment is None:
        keys.check_values(values)
    else:
        with pytest.raises(ConfigError, match=re.escape(fragment)):
            keys.check_values(values)


def test_valid_metric_value_metrics_have_no_cutoff() -> None:
    assert keys.valid_metric_problem("AUC", ["AUC", "LogLoss"], [10]) is None
    assert "no cut-off" in keys.valid_metric_problem("AUC@10", ["AUC"], [10])
    assert "per cut-off" in keys.valid_metric_problem("Recall", ["Recall"], [10])


def test_unread_keys() -> None:
    lines = keys.unread_key_warnings(
        {"fusoin": "command line", "learning_rate": "x.yaml", "knn_k": "x.yaml", "cl_weight": "x.yaml", "Epochs": "x.yaml"},
        "RLMultimodalRec",
    )
    assert len(lines) == 4
    assert "Did you mean 'fusion'?" in lines[0]
    assert "LATTICE" in lines[1] and "cl_weight" in lines[2] and "Did you mean 'epochs'?" in lines[3]
    # a RecBole model's own keys, and keys RecBole reads for every model
    assert keys.unread_key_warnings({"n_layers": "c", "reg_weight": "c", "gpu_id": "c"}, "LightGCN") == []
    assert keys.unread_key_warnings({"fusion": "c"}, "BPR")  # ours, not BPR's


def test_check_model_keys_works_with_recbole_config_values() -> None:
    keys.check_model_keys({"fusion": "gate", "n_layers": 2}, "RLMultimodalRec")
    with pytest.raises(ConfigError, match="n_layers=-2"):
        keys.check_model_keys({"n_layers": -2}, "RLMultimodalRec")
    keys.check_model_keys({"n_layers": -2}, "LightGCN")  # RecBole's keys are RecBole's


def test_markdown_command(capsys: pytest.CaptureFixture) -> None:
    assert keys.main(["--markdown", "FREEDOM"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| key | default | allowed | meaning |") and "`mm_image_weight`" in out
