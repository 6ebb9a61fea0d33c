"""Config semantics: RecBole's layers and resolution, with our declared defaults and the dataset
folder's own yaml layered in (recbole_rlmm/config.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from datagen import make_dataset

from recbole_rlmm import config as config_module
from recbole_rlmm.config import DatasetNotFoundError, create_config, dataset_defaults_file
from recbole_rlmm.keys.schema import model_defaults, our_defaults

LAYERS = ["overall", "model", "dataset", "folder", "user", "dict", "argv"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    make_dataset(root)
    return root


@pytest.fixture
def layered(tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every layer sets `probe_<layer>` and all layers above it: our overall and model defaults
    (the declarations), our dataset defaults file, the dataset folder's yaml, the user's layers."""
    root = tmp_path / "props"
    (root / "dataset").mkdir(parents=True)

    def keys(layer: str) -> dict[str, str]:
        return {f"probe_{other}": layer for other in LAYERS[LAYERS.index(layer) :]}

    overall, model = {**our_defaults(), **keys("overall")}, {**model_defaults("RLMultimodalRec"), **keys("model")}
    monkeypatch.setattr(config_module, "our_defaults", lambda: overall)
    monkeypatch.setattr(config_module, "model_defaults", lambda name: model if name == "RLMultimodalRec" else {})
    (root / "overall.yaml").write_text("")
    (root / "dataset" / "tiny.yaml").write_text(yaml.safe_dump(keys("dataset")))
    folder_yaml = data / "tiny" / "tiny.yaml"
    folder_yaml.write_text(folder_yaml.read_text() + yaml.safe_dump(keys("folder")))
    (tmp_path / "user.yaml").write_text(yaml.safe_dump(keys("user")))
    monkeypatch.setattr(config_module, "properties_dir", lambda: root)
    return tmp_path


def test_each_layer_overrides_the_one_below(layered: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["run", "--probe_argv=argv"])
    config = create_config(
        "RLMultimodalRec",
        "tiny",
        config_file_list=[str(layered / "user.yaml")],
        config_dict={"data_path": str(data), "probe_dict": "dict", "probe_argv": "dict"},
    )
    for layer in LAYERS:
        assert config[f"probe_{layer}"] == layer, layer


def test_dataset_folder_yaml_is_read_without_being_named(data: Path) -> None:
    """``prepare`` writes <data_path>/<name>/<name>.yaml; a run of <name> reads it by itself."""
    config = create_config("RLMultimodalRec", "tiny", config_dict={"data_path": str(data)})
    assert config["modalities"] == {"image": "tiny.image.npy", "text": "tiny.text.npy"}
    assert config["benchmark_filename"] == ["train", "valid", "test"]


def test_our_defaults_override_recbole_defaults(data: Path) -> None:
    config = create_config("BPR", "tiny", config_dict={"data_path": str(data)})
    assert config["stopping_step"] == 20  # RecBole's default is 10
    assert config["valid_metric"] == "Recall@20"


def test_recbole_model_yaml_keeps_its_keys_over_our_overall(data: Path) -> None:
    """Context-aware models train without negatives, on AUC (RecBole's quick-start yaml);
    our overall.yaml must not change that."""
    config = create_config("FM", "tiny", config_dict={"data_path": str(data)})
    assert config["train_neg_sample_args"]["distribution"] == "none"
    assert config["valid_metric"] == "AUC"
    assert create_config("BPR", "tiny", config_dict={"data_path": str(data)})[
        "train_neg_sample_args"
    ]["distribution"] == "uniform"


def test_dataset_defaults_files_are_found() -> None:
    path = dataset_defaults_file("amazon")
    assert path is not None and path.name == "amazon.yaml" and path.parent.name == "dataset"
    assert dataset_defaults_file("unknown") is None


def test_model_and_dataset_named_in_a_config_file(data: Path, tmp_path: Path) -> None:
    """RecBole's usual way: ``model:`` and ``dataset:`` in the yaml."""
    (tmp_path / "mine.yaml").write_text(f"model: BPR\ndataset: tiny\ndata_path: {data}\n")
    config = create_config(config_file_list=[str(tmp_path / "mine.yaml")])
    assert config["model"] == "BPR" and config["dataset"] == "tiny"


def test_resolution_follows_recbole(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Arguments win; then the command line over config_dict over files; defaults last."""
    monkeypatch.setattr(sys, "argv", ["run", "--model=BPR"])
    cfg = {"data_path": str(data), "dataset": "tiny", "model": "LightGCN"}
    assert create_config(config_dict=cfg)["model"] == "BPR"
    assert create_config("Pop", config_dict=cfg)["model"] == "Pop"
    monkeypatch.setattr(sys, "argv", ["run"])
    assert create_config(config_dict=cfg)["model"] == "LightGCN"
    config = create_config(config_dict={"data_path": str(data), "dataset": "tiny"})
    assert config["model"] == "RLMultimodalRec"  # named nowhere: our default


def test_model_class_is_accepted(data: Path) -> None:
    from recbole_rlmm.model.rlmultimodalrec import RLMultimodalRec

    config = create_config(RLMultimodalRec, "tiny", config_dict={"data_path": str(data)})
    assert config["model"] == "RLMultimodalRec" and config["fusion"] == "gate"


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="neither a recbole-rlmm model"):
        create_config("NoSuchModel", "tiny")


def test_missing_dataset_lists_the_folders_that_exist(data: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"'tinny'.*folders under .* are: tiny"):
        create_config("BPR", "tinny", config_dict={"data_path": str(data)})


def test_user_folder_named_like_a_bundled_dataset_wins(tmp_path: Path) -> None:
    """RecBole 1.2.1 used its bundled ml-100k whatever data_path said."""
    root = tmp_path / "data"
    make_dataset(root, name="ml-100k")
    config = create_config("BPR", "ml-100k", config_dict={"data_path": str(root)})
    assert Path(config["data_path"]) == root / "ml-100k"
