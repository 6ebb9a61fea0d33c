"""``recbole-rlmm tune``: Optuna studies (seeded, pruned, resumable, shared), selection on
validation only, usable output."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import yaml
from conftest import FakeRunner, echo_call

from recbole_rlmm.cli import main
from recbole_rlmm.errors import UserError
from recbole_rlmm.experiment import tune as tune_mod
from recbole_rlmm.experiment.common import build_config
from recbole_rlmm.experiment.compare import compare
from recbole_rlmm.experiment.space import SPACES_DIR, check_space, load_space
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
@pytest.mark.parametrize("sampler", ["grid", "tpe"])
def test_selection_uses_validation_only(
    run_tune, fake: FakeRunner, sampler: str, bigger: bool
) -> None:
    fake.bigger = bigger  # the study's direction comes from the config, as the trainer's does
    fixed = {} if bigger else {"metrics": ["Recall", "NDCG", "GiniIndex"], "valid_metric": "GiniIndex@20"}
    result, _ = run_tune(trials=None if sampler == "grid" else 4, seed=11, sampler=sampler, overrides=fixed)

    tried = [{k: c["config_dict"][k] for k in SPACE} for c in fake.calls]
    assert len(tried) == (6 if sampler == "grid" else 4)
    if sampler == "grid":  # every combination once
        assert sorted(tuple(t.values()) for t in tried) == sorted(itertools.product(*SPACE.values()))
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
    assert Path(result["history_png"]).stat().st_size > 0


def _tried(fake: FakeRunner) -> list[tuple[Any, ...]]:
    return [tuple(c["config_dict"][k] for k in RANGES) for c in fake.calls]


RANGES = {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "n_layers": {"low": 1, "high": 4}}


def test_same_seed_same_trials_and_a_second_call_trains_nothing(
    run_tune, fake: FakeRunner, tmp_path: Path
) -> None:
    first, lines = run_tune(space=RANGES, trials=4, seed=3, out=tmp_path / "a")
    assert first["ran"] == 4 and any("best so far" in line for line in lines)
    again, lines = run_tune(space=RANGES, trials=4, seed=3, out=tmp_path / "a")
    assert again["ran"] == 0 and len(fake.calls) == 4  # --trials is the study's total
    assert (again["best_trial"], again["best_params"]) == (first["best_trial"], first["best_params"])
    assert "4 finished earlier" in lines[0]

    other, _ = run_tune(space=RANGES, trials=4, seed=3, out=tmp_path / "b")
    assert _tried(fake)[4:] == _tried(fake)[:4]  # same seed: same trials
    assert other["best_params"] == first["best_params"]
    run_tune(space=RANGES, trials=2, seed=4, out=tmp_path / "c")
    assert _tried(fake)[8:] != _tried(fake)[:2]

    more, _ = run_tune(space=RANGES, trials=6, seed=3, out=tmp_path / "a")  # extends the study
    assert more["ran"] == 2 and more["finished"] == 6


def test_a_trial_stopped_with_ctrl_c_is_tried_again(
    run_tune, fake: FakeRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recbole_rlmm.runner import RunInterrupted

    reference, _ = run_tune(space=RANGES, trials=3, seed=3, out=tmp_path / "reference")
    expected = _tried(fake)
    fake.calls.clear()

    def stopped_once(**kwargs: Any) -> dict[str, Any]:
        if len(fake.calls) == 1 and not getattr(stopped_once, "done", False):
            stopped_once.done = True  # type: ignore[attr-defined]
            raise RunInterrupted("interrupted (Ctrl-C)")
        return fake(**kwargs)

    monkeypatch.setattr(tune_mod, "run_recbole_rlmm", stopped_once)
    with pytest.raises(RunInterrupted):
        run_tune(space=RANGES, trials=3, seed=3)
    result, lines = run_tune(space=RANGES, trials=3, seed=3)
    assert "trial(s) 1 stopped before finishing: their values are tried again" in lines
    assert _tried(fake) == expected  # the stopped trial's values, then the same next one
    assert (result["best_params"], result["best_valid_score"]) == (
        reference["best_params"],
        reference["best_valid_score"],
    )


def test_a_changed_space_is_not_mixed_into_a_study(run_tune, fake: FakeRunner) -> None:
    run_tune(space=RANGES, trials=1, seed=3)
    with pytest.raises(UserError, match="was made with other settings .*space"):
        run_tune(space={"learning_rate": [0.1]}, trials=1, seed=3)
    assert len(fake.calls) == 1


def _three_queued_trials(fake: FakeRunner, tmp_path: Path, epochs: int) -> None:
    """The study of ``run_tune`` with three queued trials whose validation rises linearly over
    ``epochs`` epochs; the last one is the worst at every epoch."""
    from recbole_rlmm.experiment.study import default_storage

    fake.curve = lambda c: [valid_score(c) * (e + 1) / epochs for e in range(epochs)]
    out = tmp_path / "tuned"
    out.mkdir()
    study = optuna.create_study(
        storage=default_storage(out, "LightGCN-tiny"), study_name="LightGCN-tiny", direction="maximize"
    )
    for lr in (0.004, 0.002, 0.001):
        study.enqueue_trial({"learning_rate": lr, "reg_weight": 0.1})


def test_pruning_stops_a_bad_trial(run_tune, fake: FakeRunner, tmp_path: Path) -> None:
    """The validation of every epoch goes to the trial; a trial below the median of earlier
    trials at the same epoch stops there and is marked pruned."""
    _three_queued_trials(fake, tmp_path, epochs=5)
    result, lines = run_tune(trials=3, seed=1, prune_startup_trials=2, prune_warmup_epochs=0)
    states = pd.read_csv(result["trials_csv"]).set_index("trial")["state"].to_dict()
    assert states == {0: "complete", 1: "complete", 2: "pruned"}
    assert result["pruned"] == 1 and any("pruned at epoch 0" in line for line in lines)
    assert result["best_params"] == {"learning_rate": 0.004, "reg_weight": 0.1}


def test_pruning_stops_a_real_training(base_yaml: Path, tmp_path: Path) -> None:
    """Through RecBole's trainer: a learning rate too small to learn is pruned at its second
    validation, after two good trials."""
    from recbole_rlmm.experiment.study import default_storage

    out = tmp_path / "tuned"
    out.mkdir()
    study = optuna.create_study(
        storage=default_storage(out, "LightGCN-tiny"), study_name="LightGCN-tiny", direction="maximize"
    )
    for lr in (0.01, 0.01, 1e-7):
        study.enqueue_trial({"learning_rate": lr})
    result = tune_mod.tune(
        "LightGCN", "tiny", {"learning_rate": {"low": 1e-7, "high": 0.1, "log": True}}, trials=3,
        config_files=[str(base_yaml)], out=out, overrides={"epochs": 4}, prune_startup_trials=2,
        prune_warmup_epochs=1, echo=lambda _: None,
    )
    table = pd.read_csv(result["trials_csv"])
    assert list(table["state"]) == ["complete", "complete", "pruned"]
    assert list(table["epochs_run"]) == [4, 4, 2]
    assert result["best_params"] == {"learning_rate": 0.01}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"space": {"learning_rate": 0.001}}, "learning_rate: 0.001 is neither a list of values nor a range"),
        ({"space": {"learning_rate": []}}, "empty list"),
        ({"space": {"stopping_step": [5, 10]}}, "cannot be tuned"),
        ({"space": {"seed": [1, 2]}}, "--seed"),
        ({"space": "missing.yaml"}, "search space missing.yaml does not exist"),
        ({"space": {"lerning_rate": [0.1, 0.2]}}, "lerning_rate: .0.1, 0.2. is not a configuration key of LightGCN; check the spelling"),
        ({"space": {"learning_rate": {"low": 0.1, "high": 0.01}}}, "low >= high; set low below high"),
        ({"space": {"learning_rate": {"low": 0, "high": 0.1, "log": True}}}, "set low above 0"),
        ({"space": {"learning_rate": {"low": -1.0, "high": 0.1}}}, "learning_rate: -1.0 is not allowed.*> 0"),
        ({"space": {"learning_rate": {"low": 0.1, "hi": 1}}}, "unknown field"),
        ({"overrides": {"learning_rate": 0.1}}, "both searched .* and fixed"),
        ({"model": "NoSuchModel"}, "NoSuchModel"),
        ({"trials": 0}, "at least 1"),
        ({"sampler": "grid", "space": RANGES}, "--sampler grid needs lists"),
    ],
    ids=[
        "scalar", "empty", "schedule-key", "seed", "missing-file", "unknown-key", "low-above-high",
        "log-from-zero", "value-refused", "unknown-field", "searched-and-fixed", "unknown-model",
        "zero-trials", "grid-of-ranges",
    ],
)
def test_bad_request_fails_before_training(
    run_tune, fake: FakeRunner, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError, match=message) as info:  # ExperimentError, or ConfigError for a missing file
        run_tune(**kwargs)
    assert "\n" not in str(info.value)  # one line
    assert fake.calls == []
    assert not list((tmp_path / "tuned").glob("*.db"))


def test_a_space_file_error_names_the_file(run_tune, fake: FakeRunner, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\nn_layers: {low: 3, high: 1}\n")
    with pytest.raises(UserError, match=f"search space {space}: n_layers: .* has low >= high"):
        run_tune(space=str(space))
    assert fake.calls == []


def test_missing_optuna_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from recbole_rlmm.experiment.study import optuna_module

    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(UserError, match=r"^recbole-rlmm tune needs optuna.*pip install 'recbole-rlmm\[tune\]'$"):
        optuna_module()


@pytest.mark.parametrize("model", sorted(p.stem for p in SPACES_DIR.glob("*.yaml")))
def test_shipped_spaces_are_valid(model: str, tiny: Path) -> None:
    params, where = load_space(None, model)
    config = build_config(model, "tiny", None, {"data_path": str(tiny)})
    check_space(params, model, where, config.final_config_dict)
    assert "learning_rate" in params


def test_compare_tunes_every_model_with_the_same_budget(
    fake: FakeRunner, base_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recbole_rlmm.experiment import compare as compare_mod

    monkeypatch.setattr(compare_mod, "run_recbole_rlmm", fake)
    space = tmp_path / "lgcn.yaml"
    space.write_text("learning_rate: [0.001, 0.002, 0.004]\n")
    compare(
        "tiny",
        ["LightGCN", "VBPR"],
        seeds=[1, 2],
        config_files=[str(base_yaml)],
        out=tmp_path / "results",
        tune_trials=3,
        spaces=[f"LightGCN={space}"],
        echo=lambda _: None,
    )
    tuning = [c for c in fake.calls if "learning_rate" in c["config_dict"]]
    assert [c["model"] for c in tuning] == ["LightGCN"] * 3 + ["VBPR"] * 3
    assert {c["config_dict"]["learning_rate"] for c in tuning[:3]} <= {0.001, 0.002, 0.004}
    seeded = [c for c in fake.calls if c not in tuning]
    assert [(c["model"], c["seed"]) for c in seeded] == [("LightGCN", 1), ("LightGCN", 2), ("VBPR", 1), ("VBPR", 2)]
    for call in seeded:  # the tuned yaml is the model's last config file
        assert call["files"][-1] == str(tmp_path / "results" / "tuned" / f"{call['model']}-tiny.yaml")


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
        model, "tiny", space, config_files=[str(base_yaml)], out=out, sampler="grid", echo=lambda _: None
    )
    assert len(result["trials"]) == 2
    assert not list(tmp_path.rglob("*.pth")), "trial checkpoints must be deleted"
    assert not (out / ".checkpoints").exists()
    header = Path(result["yaml"]).read_text()
    assert "command: recbole-rlmm tune --model" in header and "test metrics were not used" in header
    study = optuna.load_study(study_name=f"{model}-tiny", storage=result["storage"])
    for trial in study.trials:  # every validation of RecBole's eval_step went to the trial
        assert len(trial.intermediate_values) == trial.user_attrs["epochs_run"] == 2

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
    argv += ["--trials", "2", "--seed", "5", "--sampler", "random"]
    argv += ["--config_files", str(base_yaml), "--out", str(out)]
    argv += ["--set", "epochs=1"]

    assert main(argv) == 0
    assert len(fake.calls) == 2
    for call in fake.calls:
        assert call["config_dict"]["seed"] == 5 and call["config_dict"]["epochs"] == 1
        assert call["config_dict"]["learning_rate"] in SPACE["learning_rate"]
        assert call["files"] == [str(base_yaml)] and call["saved"] is True
    for name in ("LightGCN-tiny.yaml", "LightGCN-tiny-trials.csv", "LightGCN-tiny-history.png", "LightGCN-tiny.db"):
        assert (out / name).is_file(), name
    assert "[2/2]" in capsys.readouterr().out

    assert main(["tune", "-m", "LightGCN", "-d", "tiny", "--space", "nope.yaml"]) == 2
    assert "search space nope.yaml does not exist; check the path given to --space" in capsys.readouterr().err




BENCH_MODELS = ["BPR", "LightGCN", "VBPR", "LATTICE", "FREEDOM", "RLMultimodalRec", "MMGCN"]


@pytest.mark.parametrize("model", BENCH_MODELS)
def test_bench_spaces_give_every_model_the_same_budget(model: str, tiny: Path) -> None:
    """docs/RESULTS.md: every compared model gets a 4-trial grid over real config keys,
    learning rate included."""
    space, where = load_space(REPO / "bench" / "spaces" / f"{model}.yaml", model)
    assert [len(p.choices) for p in space.values()] == [2, 2]
    assert space["learning_rate"].choices == (5.0e-3, 1.0e-2)
    config = build_config(model, "tiny", None, {"data_path": str(tiny)})
    check_space(space, model, where, config.final_config_dict)


def test_results_script_compares_and_tunes_exactly_the_bench_models() -> None:
    script = (REPO / "bench" / "results.sh").read_text()
    line = next(x for x in script.splitlines() if x.startswith("MODELS=("))
    assert line[len("MODELS=(") : line.index(")")].split() == BENCH_MODELS
    assert 'TUNED=("${MODELS[@]}")' in script


# --------------------------------------------------------------------------- real studies, processes


def _tune_argv(base_yaml: Path, out: Path, *extra: str) -> list[str]:
    """``recbole-rlmm tune`` of LightGCN on ``tiny``: 3 trials, seed 7, 3 epochs each."""
    argv = [sys.executable, "-m", "recbole_rlmm.cli", "tune", "-m", "LightGCN", "-d", "tiny"]
    argv += ["--space", str(REPO / "recbole_rlmm" / "experiment" / "spaces" / "LightGCN.yaml")]
    argv += ["--trials", "3", "--seed", "7", "--config_files", str(base_yaml), "--set", "epochs=3"]
    return [*argv, "--out", str(out), *extra]


def _study(out: Path, storage: str | None = None) -> optuna.Study:
    url = storage or f"sqlite:///{out / 'LightGCN-tiny.db'}"
    return optuna.load_study(study_name="LightGCN-tiny", storage=url)


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


@pytest.mark.slow
def test_a_killed_study_resumes_to_the_same_best_trial(base_yaml: Path, tmp_path: Path) -> None:
    """Kill ``tune`` while a trial after the first trains; the next call fails that trial,
    tries its values again and ends with the trials and the best trial of an uninterrupted
    study."""
    whole = subprocess.run(_tune_argv(base_yaml, tmp_path / "whole"), env=_env(), capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr[-2000:]

    out = tmp_path / "killed"
    proc = subprocess.Popen(_tune_argv(base_yaml, out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                trials = _study(out).trials
            except Exception:  # the database does not exist yet, or is being created
                continue
            running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING and "pid" in t.user_attrs]
            if running and any(t.state == optuna.trial.TrialState.COMPLETE for t in trials):
                proc.kill()  # SIGKILL while a later trial trains: no clean-up at all
                break
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    states = [t.state.name for t in _study(out).trials]
    assert states[-1] == "RUNNING" and set(states[:-1]) == {"COMPLETE"}, states
    killed = len(states) - 1

    resumed = subprocess.run(_tune_argv(base_yaml, out), env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"trial(s) {killed} stopped before finishing: their values are tried again" in resumed.stdout

    reference, again = _study(tmp_path / "whole"), _study(out)
    assert [t.params for t in _finished(again)] == [t.params for t in _finished(reference)]
    assert [t.value for t in _finished(again)] == [t.value for t in _finished(reference)]
    assert again.best_trial.params == reference.best_trial.params
    assert again.best_value == reference.best_value
    assert [t.state.name for t in again.trials] == ["COMPLETE"] * killed + ["FAIL"] + ["COMPLETE"] * (3 - killed)
    assert read_yaml(out / "LightGCN-tiny.yaml") == read_yaml(tmp_path / "whole" / "LightGCN-tiny.yaml")
    assert not (out / ".checkpoints").exists()


@pytest.mark.slow
def test_two_processes_sharing_a_study_split_its_trials(base_yaml: Path, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    argvs = [
        [*_tune_argv(base_yaml, tmp_path / f"p{i}", "--storage", storage)] for i in (1, 2)
    ]
    for argv in argvs:
        argv[argv.index("--trials") + 1] = "4"
    procs = [subprocess.Popen(a, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a in argvs]
    outputs = [p.communicate(timeout=400) for p in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-2000:]

    study = _study(tmp_path, storage)
    done = _finished(study)
    assert len(done) == 4 and len({t.number for t in done}) == 4
    pids = {t.user_attrs["pid"] for t in done}
    assert pids == {p.pid for p in procs}, "each process trained some of the trials"
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]


def test_tune_without_optuna_says_how_to_install_it(
    base_yaml: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main(["tune", "-m", "LightGCN", "-d", "tiny", "--config_files", str(base_yaml)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'recbole-rlmm[tune]'" in err


@pytest.mark.parametrize("kind", ["tpe", "random"])
def test_a_trial_killed_while_drawing_its_values_is_retried_with_the_uninterrupted_values(kind: str) -> None:
    """A trial killed after drawing some of its values (its pid recorded, ``params`` not yet)
    is retried with all of them drawn again from its index's seed, not with the partial ones
    fixed: the resumed study has the trials of an uninterrupted one."""
    from recbole_rlmm.experiment import study as study_mod
    from recbole_rlmm.experiment.space import Param

    params = {"learning_rate": Param("learning_rate", "float", 1e-4, 1e-2, log=True),
              "reg_weight": Param("reg_weight", "float", 1e-6, 1e-3, log=True),
              "n_layers": Param("n_layers", "categorical", choices=(1, 2, 3, 4))}
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def new() -> Any:
        return optuna.create_study(direction="maximize", sampler=study_mod.make_sampler(kind, 7, params, 10))

    def draw(trial: Any, names: list[str]) -> dict[str, Any]:
        return {n: study_mod.suggest(trial, params[n]) for n in names}

    def full(study: Any) -> dict[str, Any]:
        trial = study.ask()
        values = draw(trial, list(params))
        trial.set_user_attr("params", values)
        study.tell(trial, values["learning_rate"])
        return values

    whole = new()
    expected = [full(whole) for _ in range(3)]

    killed = new()
    assert full(killed) == expected[0]
    trial = killed.ask()
    trial.set_user_attr("host", study_mod.HOST)
    trial.set_user_attr("pid", 2**22 + 12345)  # no such process: it died
    draw(trial, ["learning_rate", "reg_weight"])  # killed before n_layers
    assert study_mod.recover(killed) == [trial.number]
    assert [full(killed) for _ in range(2)] == expected[1:]


def test_the_first_trial_is_the_untuned_configuration(
    run_tune, fake: FakeRunner, base_yaml: Path, tmp_path: Path
) -> None:
    """A new study trains the configuration an untuned run would (defaults + config files +
    overrides) first, so the selected one never scores worse on validation; ``drawn`` draws
    trial 0 as well; a resumed study queues nothing again."""
    base = build_config("LightGCN", "tiny", [str(base_yaml)], {"reg_weight": 0.01})
    start = (base["learning_rate"], base["n_layers"])
    result, lines = run_tune(space=RANGES, trials=3, seed=3, overrides={"reg_weight": 0.01}, out=tmp_path / "a")
    assert _tried(fake)[0] == start
    assert f"trial 0 is the untuned configuration (learning_rate={start[0]:.4g}, n_layers={start[1]})" in " ".join(lines)
    csv = pd.read_csv(result["trials_csv"])
    assert csv["starting_config"].tolist() == [True, False, False]
    assert result["best_valid_score"] >= valid_score({"config_dict": {"learning_rate": start[0]}})
    again, _ = run_tune(space=RANGES, trials=4, seed=3, overrides={"reg_weight": 0.01}, out=tmp_path / "a")
    assert again["ran"] == 1 and _tried(fake)[3] != start  # the fourth trial is drawn

    fake.calls.clear()
    _, lines = run_tune(space=RANGES, trials=3, seed=3, overrides={"reg_weight": 0.01}, first_trial="drawn", out=tmp_path / "b")
    drawn = _tried(fake)
    assert drawn[0] != start and not any("untuned configuration" in line for line in lines)
    # drawn or not, trials 1 and 2 come from the same per-index seeds
    fake.calls.clear()
    run_tune(space=RANGES, trials=3, seed=3, overrides={"reg_weight": 0.01}, out=tmp_path / "c")
    assert _tried(fake)[1:] == drawn[1:]


def test_a_starting_value_outside_the_space_leaves_trial_0_drawn(run_tune, fake: FakeRunner) -> None:
    space = {**RANGES, "n_layers": {"low": 3, "high": 4}}  # LightGCN's n_layers starts at 2
    result, lines = run_tune(space=space, trials=2, seed=3)
    assert any(
        "trial 0 is drawn: the starting value of n_layers (2) lies outside the search space" in line
        for line in lines
    )
    assert all(c["config_dict"]["n_layers"] in (3, 4) for c in fake.calls)
    assert not pd.read_csv(result["trials_csv"])["starting_config"].any()


def test_a_killed_starting_trial_is_retried_with_the_starting_values() -> None:
    from recbole_rlmm.experiment import study as study_mod
    from recbole_rlmm.experiment.space import Param

    params = {"learning_rate": Param("learning_rate", "float", 1e-4, 1e-2, log=True),
              "n_layers": Param("n_layers", "categorical", choices=(1, 2, 3))}
    study = optuna.create_study(direction="maximize", sampler=study_mod.make_sampler("tpe", 7, params, 10))
    values, outside = study_mod.queue_starting_config(study, params, {"learning_rate": 0.001, "n_layers": 2})
    assert (values, outside) == ({"learning_rate": 0.001, "n_layers": 2}, [])
    trial = study.ask()
    trial.set_user_attr("host", study_mod.HOST)
    trial.set_user_attr("pid", 2**22 + 12345)  # no such process: it died before recording params
    assert study_mod.suggest(trial, params["learning_rate"]) == 0.001
    assert study_mod.recover(study) == [trial.number]
    retry = study.ask()
    assert {n: study_mod.suggest(retry, p) for n, p in params.items()} == {"learning_rate": 0.001, "n_layers": 2}
    assert retry.user_attrs == {"retry_of": trial.number, "starting_config": True}


@pytest.mark.parametrize(
    ("entry", "inside", "outside"),
    [
        ({"low": 1e-4, "high": 1e-2, "log": True}, [1e-4, 0.001, 1e-2], [0.0, 0.02, "0.001", True, None]),
        ({"low": 1, "high": 4}, [1, 4, 2.0], [0, 5, 2.5]),
        ({"low": 0.0, "high": 0.9, "step": 0.1}, [0.0, 0.3, 0.9], [0.25, 1.0]),
        ([0.0, 0.1, "mean", [64, 64]], [0.1, "mean", [64, 64]], [0.2, "sum", [64]]),
    ],
)
def test_the_space_knows_the_values_it_can_draw(entry: Any, inside: list[Any], outside: list[Any]) -> None:
    from recbole_rlmm.experiment.space import parse_entry

    param = parse_entry("k", entry, "<test>")
    assert all(param.holds(v) for v in inside) and not any(param.holds(v) for v in outside)


@pytest.mark.usefixtures("fake")
def test_tuning_summary_reports_the_untuned_trial_and_the_gain(
    run_tune, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """bench/tuning_summary.py (docs/RESULTS.md's tuned table): per model, trial 0's (untuned)
    validation score, the selected one and the gain, from the study's trials.csv."""
    sys.path.insert(0, str(REPO / "bench"))
    import tuning_summary

    result, _ = run_tune(space=RANGES, trials=4, seed=3)
    csv = pd.read_csv(result["trials_csv"])
    untuned = float(csv.loc[csv["starting_config"], "valid_score"].iloc[0])
    out = tmp_path / "tuning.md"
    assert tuning_summary.main([str(tmp_path / "tuned"), "--out", str(out)]) == 0
    row = out.read_text().splitlines()[2].split(" | ")
    assert row[0] == "| LightGCN" and row[1] == "4 (0)" and row[2] == f"{untuned:.4f}"
    assert row[4] == f"{result['best_valid_score']:.4f}"
    assert row[5] == f"{100 * (result['best_valid_score'] / untuned - 1):+.1f}%"
    assert f"n_layers={result['best_params']['n_layers']}" in row[7]
    # the chosen values are the space's keys, nothing of the table's other columns
    chosen = [kv.split("=")[0] for kv in row[7].removesuffix(" |").split(", ")]
    assert chosen == sorted(result["best_params"], key=list(csv.columns).index)
    assert capsys.readouterr().out == out.read_text()


def test_a_small_budget_is_searched_by_tpe_after_a_third_of_it() -> None:
    """TPE's random start-up is a third of a budget under 30 trials (at least 3): a 10-trial
    study draws trials 0-2 at random and models the history from trial 3 on, where a 30-trial
    study is still drawing at random."""
    from recbole_rlmm.experiment import study as study_mod
    from recbole_rlmm.experiment.space import Param

    assert [study_mod.tpe_startup_trials(n) for n in (1, 4, 10, 20, 30, 100)] == [3, 3, 3, 6, 10, 10]
    params = {"x": Param("x", "float", 1e-4, 1e-2, log=True)}
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def draws(total: int) -> list[float]:
        study = optuna.create_study(direction="maximize", sampler=study_mod.make_sampler("tpe", 5, params, total))
        study.optimize(lambda t: -abs(study_mod.suggest(t, params["x"]) - 3e-3), n_trials=8)
        return [t.params["x"] for t in study.trials]

    small, large = draws(10), draws(30)
    assert small[:3] == large[:3] and all(a != b for a, b in zip(small[3:], large[3:]))


@pytest.mark.parametrize(("fixed", "warmup"), [({}, 20), ({"stopping_step": 4, "eval_step": 2}, 8)])
def test_pruning_waits_for_the_patience_by_default(
    run_tune, fake: FakeRunner, tmp_path: Path, fixed: dict[str, int], warmup: int
) -> None:
    """Without --prune-warmup-epochs a trial cannot be pruned before the config's patience
    (stopping_step x eval_step epochs) has passed: a slow start is judged when early stopping
    could judge it, and not earlier."""
    _three_queued_trials(fake, tmp_path, epochs=30)
    result, lines = run_tune(trials=3, seed=1, prune_startup_trials=2, overrides=fixed)
    assert f"a trial can be pruned from epoch {warmup} on, once 2 trials have finished" in lines[0]
    assert result["pruned"] == 1 and any(f"pruned at epoch {warmup}:" in line for line in lines)
