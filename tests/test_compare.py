"""``recbole-rlmm compare``: outputs, resumability, fairness checks and the early-stop flag."""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from conftest import FakeRunner, echo_call, write_yaml

from recbole_rlmm.cli import main
from recbole_rlmm.errors import UserError
from recbole_rlmm.experiment import compare as compare_mod
from recbole_rlmm.experiment.common import parse_overrides

MODELS = ["BPR", "LightGCN"]
SEEDS = [1, 2]
EXPECTED_COLUMNS = [
    "model",
    "seeds",
    "parameters",
    "seconds_per_train_epoch",
    "seconds_per_eval",
    "best_epochs",
    "best_epoch_mean",
    "early_stopped_runs",
    "valid_recall@20_mean",
    "valid_recall@20_std",
    *[f"test_{m}@{k}_{s}" for m in ("recall", "ndcg") for k in (10, 20) for s in ("mean", "std")],
]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    runner = FakeRunner()
    monkeypatch.setattr(compare_mod, "run_recbole_rlmm", runner)
    return runner


@pytest.fixture
def run_compare(base_yaml: Path, tmp_path: Path) -> Callable[..., tuple[pd.DataFrame, list[str]]]:
    """``compare`` on ``tiny`` with MODELS x SEEDS into tmp_path/results; returns the table
    and the printed lines. Keyword arguments replace the defaults."""

    return echo_call(
        compare_mod.compare,
        dataset="tiny",
        models=MODELS,
        seeds=SEEDS,
        config_files=[str(base_yaml)],
        out=tmp_path / "results",
    )


def test_compare_writes_all_outputs_with_mean_and_std(run_compare, tmp_path: Path) -> None:
    table, _ = run_compare()
    out = tmp_path / "results"
    for name in compare_mod.OUTPUT_FILES:
        assert (out / name).is_file(), name
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    csv = pd.read_csv(out / "results.csv")
    assert list(csv.columns) == EXPECTED_COLUMNS
    assert list(csv["model"]) == MODELS and list(table["model"]) == MODELS
    for _, row in csv.iterrows():
        runs = [json.loads((out / "runs" / f"{row['model']}-{s}.json").read_text()) for s in SEEDS]
        for metric in ("recall@20", "ndcg@10"):
            values = [r["result"]["test_result"][metric] for r in runs]
            assert row[f"test_{metric}_mean"] == pytest.approx(statistics.mean(values))
            assert row[f"test_{metric}_std"] == pytest.approx(statistics.stdev(values))
        assert row["parameters"] == runs[0]["result"]["n_params"] > 0
        assert row["seeds"] == len(SEEDS)

    summary = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in summary["summary"]] == MODELS
    assert len(summary["runs"]) == len(MODELS) * len(SEEDS)
    assert summary["schedule"]["seeds"] == SEEDS

    md = (out / "results.md").read_text()
    assert "| Model | Parameters |" in md and "Test NDCG@20" in md
    assert all(f"| {m} |" in md for m in MODELS) and "±" in md


def test_second_call_reuses_finished_runs(run_compare, fake: FakeRunner, tmp_path: Path) -> None:
    run_compare()
    records = sorted((tmp_path / "results" / "runs").glob("*.json"))
    mtimes = [p.stat().st_mtime_ns for p in records]
    assert len(fake.calls) == len(records) == len(MODELS) * len(SEEDS)

    table, lines = run_compare()
    assert len(fake.calls) == len(MODELS) * len(SEEDS)
    assert [p.stat().st_mtime_ns for p in records] == mtimes
    assert sum("reusing" in line for line in lines) == len(records)
    assert list(table["model"]) == MODELS


def _bpr_model_config(tmp_path: Path, _: Path) -> dict[str, Any]:
    return {
        "model_configs": {"BPR": str(write_yaml(tmp_path / "lr.yaml", {"learning_rate": 0.01}))}
    }


def _override_for_all(_: Path, __: Path) -> dict[str, Any]:
    return {"overrides": {"learning_rate": 0.01}}


def _edit_shared_file(_: Path, base_yaml: Path) -> dict[str, Any]:
    write_yaml(base_yaml, {**yaml.safe_load(base_yaml.read_text()), "embedding_size": 16})
    return {}


def _delete_one_record(tmp_path: Path, _: Path) -> dict[str, Any]:
    (tmp_path / "results" / "runs" / "LightGCN-2.json").unlink()
    return {}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_bpr_model_config, {("BPR", 1), ("BPR", 2)}),
        (_override_for_all, {(m, s) for m in MODELS for s in SEEDS}),
        (_edit_shared_file, {(m, s) for m in MODELS for s in SEEDS}),
        (_delete_one_record, {("LightGCN", 2)}),
    ],
    ids=["model-config", "override", "shared-file-edited", "record-deleted"],
)
def test_changed_settings_train_again(
    run_compare, fake: FakeRunner, tmp_path: Path, base_yaml: Path, change, expected
) -> None:
    run_compare()
    fake.calls.clear()
    _, lines = run_compare(**change(tmp_path, base_yaml))
    assert fake.trained() == expected
    assert len(fake.calls) == len(expected)
    assert sum("reusing" in line for line in lines) == len(MODELS) * len(SEEDS) - len(expected)


@pytest.mark.parametrize(
    ("model", "best_epoch", "flagged"),
    [
        ("BPR", 0, True),
        ("BPR", 1, True),
        ("BPR", 2, False),
        ("BPR", 9, False),
        ("ItemKNN", 0, False),
    ],
)
def test_early_stop_flag(
    run_compare, fake: FakeRunner, tmp_path: Path, model: str, best_epoch: int, flagged: bool
) -> None:
    """epochs=10: a best epoch below 2 (20% of the budget) is flagged; ItemKNN trains once."""
    fake.best_epoch = best_epoch
    table, lines = run_compare(models=[model], overrides={"epochs": 10})
    row = table.iloc[0]
    assert row["early_stopped_runs"] == (len(SEEDS) if flagged else 0)
    assert row["best_epochs"] == ", ".join([f"{best_epoch}{'*' if flagged else ''}"] * len(SEEDS))
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == (len(SEEDS) if flagged else 0)
    assert all("10-epoch budget" in w for w in warnings)
    assert (
        "may have stopped too early" in (tmp_path / "results" / "results.md").read_text()
    ) is flagged


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"models": ["BPR", "NoSuchModel"]}, "NoSuchModel"),
        ({"model_configs": ["ItemKNN=base.yaml"]}, "not among the compared models"),
        ({"model_configs": ["LightGCN=unfair.yaml"]}, "stopping_step"),
        ({"model_configs": ["BPR"]}, "MODEL=file.yaml"),
        ({"config_files": ["missing.yaml"]}, "not found"),
        ({"overrides": {"seed": 3}}, "--seeds"),
        ({"overrides": ["metrics=['Recall']"]}, "NDCG"),
        ({"overrides": ["epochs"]}, "key=value"),
    ],
    ids=[
        "unknown-model",
        "config-for-absent-model",
        "unfair-patience",
        "bad-model-config",
        "missing-file",
        "seed-override",
        "metrics-missing",
        "bad-override",
    ],
)
def test_bad_request_fails_before_training(
    run_compare, fake: FakeRunner, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    write_yaml(tmp_path / "unfair.yaml", {"stopping_step": 5})
    with pytest.raises(UserError, match=message):  # ExperimentError, or ConfigError for a missing file
        run_compare(**kwargs)
    assert fake.calls == []
    assert not (tmp_path / "results").exists()


def test_cli_compare(
    fake: FakeRunner,
    base_yaml: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    threads: list[int] = []
    monkeypatch.setattr("torch.set_num_threads", threads.append)
    lr = write_yaml(tmp_path / "lr.yaml", {"learning_rate": 0.01})
    out = tmp_path / "cli-results"
    argv = ["compare", "-d", "tiny", "--models", "BPR", "LightGCN", "--seeds", "7", "8"]
    argv += ["--config_files", str(base_yaml), "--model-config", f"BPR={lr}", "--out", str(out)]
    argv += ["--set", "epochs=3", "eval_step=2", "--threads", "1"]

    assert main(argv) == 0
    assert fake.trained() == {(m, s) for m in MODELS for s in (7, 8)}
    for call in fake.calls:
        assert call["config_dict"]["epochs"] == 3 and call["config_dict"]["eval_step"] == 2
        assert call["files"] == [str(base_yaml)] + ([str(lr)] if call["model"] == "BPR" else [])
    assert threads == [1]
    printed = capsys.readouterr().out
    assert "[4/4]" in printed and "| LightGCN |" in printed

    assert main(["compare", "-d", "tiny", "--models", "Nope", "--out", str(out)]) == 2
    assert "Unknown model 'Nope'" in capsys.readouterr().err


def test_png_skipped_without_matplotlib(
    run_compare, fake: FakeRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail
    _, lines = run_compare()
    out = tmp_path / "results"
    assert not (out / "results.png").exists()
    assert (out / "results.md").is_file() and (out / "results.csv").is_file()
    assert any("results.png skipped" in line and "recbole-rlmm[plot]" in line for line in lines)
    assert len(fake.calls) == len(MODELS) * len(SEEDS)


@pytest.mark.parametrize(
    ("item", "value"),
    [
        ("epochs=5", 5),
        ("--learning_rate=1e-3", 0.001),
        ("fusion_stage=late", "late"),
        ("topk=[10, 20]", [10, 20]),
        ("reproducibility=true", True),
        ("eval_args={RS: [0.8, 0.1, 0.1]}", {"RS": [0.8, 0.1, 0.1]}),
    ],
)
def test_parse_overrides(item: str, value: Any) -> None:
    key = item.lstrip("-").split("=")[0]
    assert parse_overrides([item]) == {key: value}
