"""``bench/perf.py`` on tiny generated data: it writes its CSV, Markdown (and PNG), resumes, and
reports a model it refuses or stops as a row instead of crashing. No timing is checked."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PERF = REPO / "bench" / "perf.py"
sys.path.insert(0, str(REPO / "bench"))

import perf  # noqa: E402
import perf_data  # noqa: E402

pytestmark = pytest.mark.slow  # many trainings or processes: `-m "not slow"` skips them


def _perf(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PERF), "--sizes", "tiny", "--epochs", "1", "--out", str(out), *args],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
    )


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "perf.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_perf_runs_resumes_and_refuses_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "perf"
    first = _perf(out, "--models", "LightGCN", "RLMultimodalRec")
    assert first.returncode == 0, first.stdout + first.stderr
    rows = _rows(out)
    assert [(r["model"], r["status"]) for r in rows] == [("LightGCN", "ok"), ("RLMultimodalRec", "ok")]
    lightgcn, ours = rows
    assert float(lightgcn["train_x"]) == 1.0 and float(ours["train_s_epoch"]) > 0 and float(ours["eval_s"]) > 0
    assert float(ours["peak_mb"]) > 50 and float(ours["startup_s"]) > 0 and ours["knn_s"] != ""
    assert ours["feature_dims"] == "image:48 text:16"
    assert 0 <= float(ours["kernel_share"]) < 1 and int(ours["minor_faults"]) > 0  # the child's own resource usage
    # the child reports batches as it trains (the first at once, then every ~30 s)
    events = [json.loads(x) for x in (out / "runs" / "tiny-RLMultimodalRec-default-t1-cpu.progress").read_text().splitlines()]
    batch = [e for e in events if e["phase"] == "batch"][0]
    assert batch["done"] == 1 and batch["of"] >= 1 and batch["seconds"] >= 0
    md = (out / "perf.md").read_text()
    assert "| RLMultimodalRec | default | 1 | cpu |" in md and "cores" in md and "torch" in md
    try:
        import matplotlib  # noqa: F401

        assert (out / "perf.png").stat().st_size > 0
    except ImportError:
        assert "matplotlib is not installed" in first.stdout

    # resumed: finished rows are skipped; a model whose estimate is above the budget is refused
    again = _perf(out, "--models", "LightGCN", "RLMultimodalRec", "VBPR", "--mem-budget-gb", "0.05")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("skipped") == 2
    rows = _rows(out)
    assert [r["model"] for r in rows] == ["LightGCN", "RLMultimodalRec", "VBPR"]
    assert rows[2]["status"].startswith("refused: estimated") and "budget" in rows[2]["status"]
    assert rows[0]["train_s_epoch"] == lightgcn["train_s_epoch"]  # kept, not re-run

    # a run past its time limit is stopped and says so; a variant is its own row
    stopped = _perf(out, "--models", "MMGCN", "--timeout", "0.5", "--set", "embedding_size=8")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    row = [r for r in _rows(out) if r["model"] == "MMGCN"][0]
    assert row["variant"] == "embedding_size=8" and row["status"].startswith("stopped: timeout")
    assert "refused" in (out / "perf.md").read_text()

    # a feature_dim variant: the reduction runs once, in a process of its own, and is reported
    reduced = _perf(out, "--models", "VBPR", "--set", "feature_dim=8")
    assert reduced.returncode == 0, reduced.stdout + reduced.stderr
    row = [r for r in _rows(out) if r["variant"] == "feature_dim=8"][0]
    assert row["status"] == "ok" and row["feature_dims"] == "image:8 text:8"
    assert "Feature reductions" in (out / "perf.md").read_text()
    assert list((out / "data" / "synth-tiny" / "_cache" / "features").glob("synth-tiny.image.pca8.*.npy"))


def test_synthetic_generator_is_seeded_power_law_and_cached(tmp_path: Path) -> None:
    spec = perf_data.SyntheticSpec(300, 120, 4000, dims={"image": 8, "text": 4}, seed=3)
    users, items = perf_data.synthetic_interactions(spec)
    assert len(users) == 4000 and len(np.unique(users * 120 + items)) == 4000  # distinct pairs
    deg = np.bincount(users, minlength=300)
    assert deg.min() >= 5 and deg.max() > 3 * np.median(deg)  # a long tail of heavy users
    pop = np.bincount(items, minlength=120)
    assert pop.min() >= 1 and pop.max() > 5 * np.median(pop)  # popular items
    again = perf_data.synthetic_interactions(spec)
    assert np.array_equal(again[0], users) and np.array_equal(again[1], items)

    data_path, name, info = perf_data.synthetic(tmp_path, spec, name="s")
    folder = data_path / name
    assert info["n_inter"] == 4000 and (folder / "s.yaml").is_file()
    assert np.load(folder / "s.image.npy").shape == (120, 8)
    n_lines = sum(len((folder / f"s.{p}.inter").read_text().splitlines()) - 1 for p in ("train", "valid", "test"))
    assert n_lines == 4000
    stamp = (folder / "s.image.npy").stat().st_mtime_ns
    perf_data.synthetic(tmp_path, spec, name="s")  # reused, not rewritten
    assert (folder / "s.image.npy").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("kind", ["image", "text"])
def test_random_features_are_written_in_blocks(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "f.npy"
    perf_data.write_random_features(path, 50, 6, kind, seed=0, block=7)
    x = np.load(path)
    assert x.shape == (50, 6) and x.dtype == np.float32 and (x != 0).any(axis=1).all()
    if kind == "image":
        assert (x >= 0).all()
    else:
        assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("phase", "partial", "expected"),
    [
        ("model", {}, "stopped: timeout after 1,200 s in phase model (0 epochs done)"),
        ("eval", {}, "stopped: timeout after 1,200 s in phase eval (0 epochs done)"),
        (
            "train",
            {"done": 412, "of": 1650, "seconds": 1187.6},
            "stopped: timeout after 1,200 s in phase train (0 epochs done; epoch 1: 412 of 1,650 batches in 1,188 s)",
        ),
    ],
)
def test_a_timeout_says_how_far_the_epoch_got(phase: str, partial: dict, expected: str) -> None:
    assert perf.timeout_status(1200, phase, 0, partial) == expected


def test_eval_collector_bench_finds_the_same_metrics(tmp_path: Path) -> None:
    """``bench/eval_collector.py`` on tiny data: both collectors, both batch sizes, equal metrics."""
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "eval_collector.py"), "--sizes", "tiny", "--data-cache", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "metrics identical across collectors and batch sizes" in out.stdout
    assert out.stdout.count("| tiny |") == 2  # RecBole's default batch and 2**24
