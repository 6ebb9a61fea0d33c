"""RecBole's own general-model test suite through our runner (issue 19).

RecBole v1.2.1's ``tests/model/test_model_auto.py::TestGeneralRecommender`` (43 configurations)
with its test data as RecBole ships it (``tests/fixtures/recbole_v1.2.1``, README there): each
configuration runs through :func:`run_recbole_rlmm` with RecBole's ``test_model.yaml``
(``epochs: 1``) and ``saved=False``, as RecBole's ``quick_test`` runs it.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from recbole_rlmm.data.checks import clear_cache
from recbole_rlmm.runner import run_recbole_rlmm

pytestmark = pytest.mark.slow  # many trainings or processes: `-m "not slow"` skips them

SUITE = Path(__file__).resolve().parent / "fixtures" / "recbole_v1.2.1"


def general_recommender_configs() -> list[tuple[str, dict[str, Any]]]:
    """``(test name, config_dict)`` of every test of RecBole's ``TestGeneralRecommender``."""
    tree = ast.parse((SUITE / "recbole_test_model_auto.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TestGeneralRecommender")
    configs = []
    for method in cls.body:
        if not isinstance(method, ast.FunctionDef):
            continue
        assign = next(
            s for s in method.body
            if isinstance(s, ast.Assign) and any(getattr(t, "id", None) == "config_dict" for t in s.targets)
        )
        configs.append((method.name, ast.literal_eval(assign.value)))
    return configs


CONFIGS = general_recommender_configs()


def test_the_vendored_suite_is_recboles_and_its_extra_field_is_a_warning() -> None:
    """RecBole reads test.inter's line 6018 (5 fields under 4 columns: pandas drops the fifth);
    our check says so and goes on."""
    from recbole_rlmm.config import create_config
    from recbole_rlmm.data.checks import check_dataset_files

    assert len(CONFIGS) == 43
    inter = (SUITE / "test" / "test.inter").read_text().split("\n")
    assert len(inter[0].split("\t")) == 4 and len(inter[6017].split("\t")) == 5  # line 6018
    clear_cache()
    config = create_config("BPR", config_dict={"data_path": str(SUITE)}, config_file_list=[str(SUITE / "test_model.yaml")])
    warnings = check_dataset_files(config)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{SUITE / 'test' / 'test.inter'}: line 6018 has more fields than the header's 4")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "config_dict"), CONFIGS, ids=[name for name, _ in CONFIGS])
def test_recboles_general_recommender_suite_runs_through_our_runner(name: str, config_dict: dict[str, Any]) -> None:
    config = {**config_dict, "data_path": str(SUITE), "log_dir": None, "tensorboard_dir": None}
    result = run_recbole_rlmm(config_dict=config, config_file_list=[str(SUITE / "test_model.yaml")], saved=False)
    assert result["test_result"], name
