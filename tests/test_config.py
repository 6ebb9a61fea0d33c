"""Config priority: RecBole defaults < ours < model file < dataset file < user files < dict < argv."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from datagen import make_dataset

from recbole_rlmm import config as config_module
from recbole_rlmm.config import create_config, default_config_files, properties_dir

LAYERS = ["overall", "model", "dataset", "user", "dict", "argv"]


@pytest.fixture
def layered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A properties dir where every layer sets `probe_<layer>` and all layers above it."""
    root = tmp_path / "props"
    (root / "model").mkdir(parents=True)
    (root / "dataset").mkdir()
    real = yaml.safe_load((properties_dir() / "overall.yaml").read_text())

    def keys(layer: str) -> dict[str, str]:
        return {f"probe_{other}": layer for other in LAYERS[LAYERS.index(layer) :]}

    (root / "overall.yaml").write_text(yaml.safe_dump({**real, **keys("overall")}))
    (root / "model" / "RLMultimodalRec.yaml").write_text(
        (properties_dir() / "model" / "RLMultimodalRec.yaml").read_text() + yaml.safe_dump(keys("model"))
    )
    (root / "dataset" / "tiny.yaml").write_text(yaml.safe_dump(keys("dataset")))
    (tmp_path / "user.yaml").write_text(yaml.safe_dump(keys("user")))
    monkeypatch.setattr(config_module, "properties_dir", lambda: root)
    make_dataset(tmp_path / "data")
    return tmp_path


def test_each_layer_overrides_the_one_below(layered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["run", "--probe_argv=argv"])
    config = create_config(
        "RLMultimodalRec",
        "tiny",
        config_file_list=[str(layered / "user.yaml")],
        config_dict={"data_path": str(layered / "data"), "probe_dict": "dict", "probe_argv": "dict"},
    )
    for layer in LAYERS:
        assert config[f"probe_{layer}"] == layer, layer


def test_our_defaults_override_recbole_defaults() -> None:
    config = create_config("BPR", "tiny", config_dict={"data_path": "x"})
    assert config["stopping_step"] == 20  # RecBole's default is 10
    assert config["valid_metric"] == "Recall@20"


def test_model_and_dataset_files_are_found() -> None:
    files = default_config_files("RLMultimodalRec", "amazon")
    assert [Path(f).name for f in files] == ["overall.yaml", "RLMultimodalRec.yaml", "amazon.yaml"]
    assert [Path(f).name for f in default_config_files("BPR", "unknown")] == ["overall.yaml"]


def test_command_line_model_and_dataset_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["run", "--model=BPR", "--dataset=other"])
    config = create_config("RLMultimodalRec", "tiny", config_dict={"data_path": "x"})
    assert config["model"] == "BPR" and config["dataset"] == "other"


def test_model_class_is_accepted() -> None:
    from recbole_rlmm.model.rlmultimodalrec import RLMultimodalRec

    config = create_config(RLMultimodalRec, "tiny", config_dict={"data_path": "x"})
    assert config["model"] == "RLMultimodalRec" and config["fusion"] == "gate"


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="neither a recbole-rlmm model"):
        create_config("NoSuchModel", "tiny")
