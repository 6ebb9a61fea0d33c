"""``recbole-rlmm tune``: grid / random search, selection on validation only, usable output."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from conftest import FakeRunner, echo_call

from recbole_rlmm.cli import main
from recbole_rlmm.errors import UserError
from recbole_rlmm.experiment import tune as tune_mod
from recbole_rlmm.experiment.common import build_config
from recbole_rlmm.experiment.compare import compare
from recbole_rlmm.keys.sources import read_yaml
from recbole_rlmm.runner import run_recbole_rlmm

REPO = Path(__file__).resolve().parent.parent
SPACE = {"learning_rate": [0.001, 0.002, 0.004], "reg_weight": [0.0, 0.1]}


def valid_score(call: dict[str, Any]) -> float:
    """Distinct for every combination of SPACE (keys outside SPACE score as their first value)."""
    cfg = call["config_dict"]
    return 0.1 + 10 * cfg.get("learning_rate", 0.001) + 0.5 * cfg.get("reg_weight", 0.0)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    """A runner whose test score ranks every trial in the opposite order to its valid score."""
    runner = FakeRunner(valid=valid_score, test=lambda c: 1.0 - valid_score(c))
    monkeypatch.setattr(tune_mod, "run_recbole_rlmm", runner)
    return runner


@pytest.fixture
def run_tune(base_yaml: Path, tmp_path: Path) -> Callable[..., tuple[dict[str, Any], list[str]]]:
    """``tune`` of LightGCN on ``tiny`` over SPACE into tmp_path/tuned; returns the result and
    the printed lines. Keyword arguments replace the defaults."""

    return echo_call(
        tune_mod.tune,
        model="LightGCN",
        dataset="tiny",
        space=SPACE,
        config_files=[str(base_yaml)],
        out=tmp_path / "tuned",
    )


@pytest.mark.parametrize("bigger", [True, False], ids=["higher-better", "lower-better"])
@pytest.mark.parametrize("trials", [None, 3], ids=["grid", "random"])
def test_selection_uses_validation_only(
    run_tune, fake: FakeRunner, trials: int | None, bigger: bool
) -> None:
    fake.bigger = bigger
    result, _ = run_tune(trials=trials, seed=11)

    tried = [{k: c["config_dict"][k] for k in SPACE} for c in fake.calls]
    assert len(tried) == (trials or 6) and len({tuple(t.values()) for t in tried}) == len(tried)
    assert result["mode"] == ("random" if trials else "grid")
    by_valid = {tuple(t.values()): valid_score({"config_dict": t}) for t in tried}
    pick = max if bigger else min
    expected = pick(by_valid, key=by_valid.get)
    best_by_test = pick(by_valid, key=lambda k: 1.0 - by_valid[k])
    assert tuple(result["best_params"].values()) == expected != best_by_test
    assert result["best_valid_score"] == pytest.approx(by_valid[expected])

    written = read_yaml(result["yaml"])
    assert written == result["best_params"]
    csv = pd.read_csv(result["trials_csv"])
    assert len(csv) == len(tried) and csv["selected"].sum() == 1
    chosen = csv[csv["selected"]].iloc[0]
    assert (chosen["learning_rate"], chosen["reg_weight"]) == expected
    assert "test_recall@20" in csv.columns  # recorded, for information only


@pytest.mark.parametrize("trials", [None, 6, 10, 3, 1])
def test_combinations_grid_or_seeded_sample(trials: int | None) -> None:
    grid = [dict(zip(SPACE, combo)) for combo in itertools.product(*SPACE.values())]
    picked, mode = tune_mod.combinations(SPACE, trials, seed=3)
    if trials is None or trials >= len(grid):
        assert (picked, mode) == (grid, "grid")
    else:
        assert mode == "random" and len(picked) == trials
        assert all(p in grid for p in picked)
        assert len({tuple(p.values()) for p in picked}) == trials
        assert tune_mod.combinations(SPACE, trials, seed=3)[0] == picked


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"space": {"learning_rate": 0.001}}, "non-empty list"),
        ({"space": {"learning_rate": []}}, "non-empty list"),
        ({"space": {"stopping_step": [5, 10]}}, "cannot be tuned"),
        ({"space": {"seed": [1, 2]}}, "--seed"),
        ({"space": "missing.yaml"}, "search space missing.yaml does not exist"),
        ({"overrides": {"learning_rate": 0.1}}, "both searched and fixed"),
        ({"model": "NoSuchModel"}, "NoSuchModel"),
        ({"trials": 0}, "at least 1"),
    ],
    ids=[
        "scalar",
        "empty",
        "schedule-key",
        "seed",
        "missing-file",
        "searched-and-fixed",
        "unknown-model",
        "zero-trials",
    ],
)
def test_bad_request_fails_before_training(
    run_tune, fake: FakeRunner, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError, match=message):  # ExperimentError, or ConfigError for a missing file
        run_tune(**kwargs)
    assert fake.calls == []
    assert not (tmp_path / "tuned").exists()


def test_misspelt_key_is_reported(run_tune, fake: FakeRunner) -> None:
    _, lines = run_tune(space={"lerning_rate": [0.1, 0.2]})
    assert any(line.startswith("warning: 'lerning_rate'") for line in lines)
    assert len(fake.calls) == 2


@pytest.mark.parametrize(
    ("model", "space"),
    [
        ("LightGCN", {"learning_rate": [0.001, 0.05]}),
        ("RLMultimodalRec", {"fusion_stage": ["early", "late"], "reg_weight": [1.0e-4]}),
    ],
)
def test_tuned_yaml_is_accepted_by_run_and_compare(
    base_yaml: Path, tmp_path: Path, model: str, space: dict[str, list[Any]]
) -> None:
    out = tmp_path / "tuned"
    result = tune_mod.tune(
        model, "tiny", space, config_files=[str(base_yaml)], out=out, echo=lambda _: None
    )
    assert len(result["trials"]) == 2
    assert not list(tmp_path.rglob("*.pth")), "trial checkpoints must be deleted"
    assert not (out / ".checkpoints").exists()
    header = Path(result["yaml"]).read_text()
    assert "command: recbole-rlmm tune --model" in header and "test metrics were not used" in header

    run = run_recbole_rlmm(model, "tiny", config_file_list=[str(base_yaml), result["yaml"]])
    for key, value in result["best_params"].items():
        assert run["config"][key] == value

    compare(
        "tiny",
        [model],
        seeds=[1],
        config_files=[str(base_yaml)],
        model_configs=[f"{model}={result['yaml']}"],
        out=tmp_path / "results",
        echo=lambda _: None,
    )
    record = yaml.safe_load((tmp_path / "results" / "runs" / f"{model}-1.json").read_text())
    for key, value in result["best_params"].items():
        assert record["fingerprint"][key] == value


def test_cli_tune(
    fake: FakeRunner, base_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: [1e-3, 2e-3, 4e-3]\nreg_weight: [0.0, 0.1]\n")
    out = tmp_path / "cli-tuned"
    argv = ["tune", "--model", "LightGCN", "--dataset", "tiny", "--space", str(space)]
    argv += ["--trials", "2", "--seed", "5", "--config_files", str(base_yaml), "--out", str(out)]
    argv += ["--set", "epochs=1"]

    assert main(argv) == 0
    assert len(fake.calls) == 2
    for call in fake.calls:
        assert call["config_dict"]["seed"] == 5 and call["config_dict"]["epochs"] == 1
        assert call["config_dict"]["learning_rate"] in SPACE["learning_rate"]
        assert call["files"] == [str(base_yaml)] and call["saved"] is True
    assert (out / "LightGCN-tiny.yaml").is_file() and (out / "LightGCN-tiny-trials.csv").is_file()
    assert "[2/2]" in capsys.readouterr().out

    assert main(["tune", "-m", "LightGCN", "-d", "tiny", "--space", "nope.yaml"]) == 2
    assert "search space nope.yaml does not exist; check the path given to --space" in capsys.readouterr().err


BENCH_MODELS = ["BPR", "LightGCN", "VBPR", "LATTICE", "FREEDOM", "RLMultimodalRec", "MMGCN"]


@pytest.mark.parametrize("model", BENCH_MODELS)
def test_bench_spaces_give_every_model_the_same_budget(model: str, tiny: Path) -> None:
    """docs/RESULTS.md: every compared model gets a 4-trial grid over real config keys,
    learning rate included."""
    space = tune_mod.load_space(REPO / "bench" / "spaces" / f"{model}.yaml")
    assert tune_mod.grid_size(space) == 4
    assert space["learning_rate"] == [5.0e-3, 1.0e-2]
    config = build_config(model, "tiny", None, {"data_path": str(tiny)})
    assert set(space) <= set(config.final_config_dict)


def test_results_script_compares_and_tunes_exactly_the_bench_models() -> None:
    script = (REPO / "bench" / "results.sh").read_text()
    line = next(x for x in script.splitlines() if x.startswith("MODELS=("))
    assert line[len("MODELS=(") : line.index(")")].split() == BENCH_MODELS
    assert 'TUNED=("${MODELS[@]}")' in script
