"""The plugin contract for code written against RecBole: the README's snippet, run verbatim,
RecBole's own ``Config`` with our model classes, and the drop-in quick-start functions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from datagen import make_dataset

REPO = Path(__file__).resolve().parent.parent


def _readme_snippet() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Use from your RecBole code") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_snippet_trains_with_recboles_own_config_and_trainer(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    make_dataset(tmp_path / "dataset", name="mydata")  # the test runs in tmp_path (conftest)
    namespace: dict = {}
    exec(compile(_readme_snippet(), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert type(namespace["config"]).__module__ == "recbole.config.configurator"  # RecBole's Config
    result = namespace["test_result"]
    assert result and all(0.0 <= float(v) <= 1.0 for v in result.values())
    assert "recall@10" in capsys.readouterr().out


@pytest.mark.parametrize("model", ["RLMultimodalRec", "VBPR", "MMGCN", "LATTICE", "FREEDOM"])
def test_every_model_carries_its_defaults(tiny: Path, model: str) -> None:
    """RecBole's Config knows nothing of our property files; the class fills its defaults."""
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation

    import recbole_rlmm

    cls = getattr(recbole_rlmm, model)
    config = Config(
        model=cls,
        dataset="tiny",
        config_file_list=[str(tiny / "tiny" / "tiny.yaml")],
        config_dict={"data_path": str(tiny), "embedding_size": 8},
    )
    train, *_ = data_preparation(config, create_dataset(config))
    net = cls(config, train._dataset)
    for key, value in cls.defaults().items():
        expected = 8 if key == "embedding_size" else value  # the user's value wins
        assert config[key] == expected, key
    assert net.embedding_size == 8


def test_package_exports_and_quick_start_signatures() -> None:
    import inspect

    import recbole_rlmm
    from recbole_rlmm import runner

    for name in ("RLMultimodalRec", "VBPR", "MMGCN", "LATTICE", "FREEDOM"):
        assert getattr(recbole_rlmm, name).__name__ == name
    params = list(inspect.signature(recbole_rlmm.run_recbole).parameters)
    assert params == [
        "model", "dataset", "config_file_list", "config_dict", "saved", "queue",
        "nproc", "world_size", "ip", "port", "group_offset",
    ]
    assert list(inspect.signature(recbole_rlmm.run).parameters)[:5] == [
        "model", "dataset", "config_file_list", "config_dict", "saved",
    ]
    assert recbole_rlmm.run_recboles is runner.run_recboles
    assert "model_file" in inspect.signature(recbole_rlmm.load_data_and_model).parameters


def test_run_recbole_single_process_returns_recboles_dict(tiny: Path) -> None:
    from datagen import base_config

    from recbole_rlmm import run_recbole

    result = run_recbole("BPR", config_dict=base_config(tiny))
    assert set(result) == {"best_valid_score", "valid_score_bigger", "best_valid_result", "test_result"}
