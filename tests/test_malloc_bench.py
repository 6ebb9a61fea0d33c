"""``bench/malloc.py``: the benchmarks' choice of memory allocator gives a child process jemalloc
or a glibc that keeps its freed memory, changes no result, and says how to install jemalloc when
it is missing; ``bench/perf.py`` and ``bench/reference_parity.py`` pass it on and say which
allocator each figure was measured under."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import malloc  # noqa: E402
import perf  # noqa: E402
import reference_parity as parity  # noqa: E402

# a training loop whose tensors (64 MiB each) are above glibc's largest mmap threshold
TRAIN = """
import hashlib, sys, torch
torch.manual_seed(0)
x = torch.randn(4096, 4096)
w = torch.nn.Parameter(torch.randn(4096, 8) / 64)
opt = torch.optim.SGD([w], lr=0.01)
for _ in range(5):
    opt.zero_grad()
    loss = ((x @ w).tanh() - 0.5).pow(2).mean() + (x * x.mean()).sum() * 0
    loss.backward()
    opt.step()
maps = open("/proc/self/maps").read() if sys.platform.startswith("linux") else ""
print(hashlib.sha256(w.detach().numpy().tobytes()).hexdigest(), "jemalloc" in maps)
"""


def _train(env: dict[str, str]) -> tuple[str, bool]:
    done = subprocess.run([sys.executable, "-c", TRAIN], env={**os.environ, "OMP_NUM_THREADS": "1", **env},
                          capture_output=True, text=True, timeout=300, check=True)
    digest, mapped = done.stdout.split()
    return digest, mapped == "True"


@pytest.mark.slow  # three processes that import torch
def test_each_allocator_gives_the_same_training() -> None:
    """Bit-identical parameters under glibc's defaults, ``glibc-kept`` and jemalloc (when the
    library is installed; CI installs it and sets RLMM_JEMALLOC_TEST=1, which makes a missing one
    a failure)."""
    base, mapped = _train(malloc.malloc_env("default"))
    assert not mapped
    assert _train(malloc.malloc_env("glibc-kept")) == (base, False)
    if malloc.find_jemalloc() is None:
        if os.environ.get("RLMM_JEMALLOC_TEST") == "1":
            pytest.fail("RLMM_JEMALLOC_TEST=1 but libjemalloc.so.2 is not installed (apt-get install libjemalloc2)")
        pytest.skip("libjemalloc.so.2 is not installed")
    assert _train(malloc.malloc_env("jemalloc")) == (base, True)  # loaded, and the same numbers


def test_a_missing_jemalloc_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(malloc, "JEMALLOC_PATHS", ())
    monkeypatch.setattr(malloc.ctypes.util, "find_library", lambda _name: None)
    with pytest.raises(SystemExit, match=r"bench/perf.py: --malloc jemalloc: libjemalloc.so.2 not found; install it "
                                         r"\(Debian/Ubuntu: apt-get install libjemalloc2"):
        malloc.malloc_env("jemalloc", "bench/perf.py")
    with pytest.raises(SystemExit, match="not one of default, jemalloc, glibc-kept"):
        malloc.malloc_env("tcmalloc")
    assert malloc.malloc_env("default") == {}


def test_shell_exports_round_trip() -> None:
    done = subprocess.run(["bash", "-c", f'eval "$({sys.executable} {REPO}/bench/malloc.py glibc-kept)"; '
                                         f'{sys.executable} -c "import sys; sys.path.insert(0, \'{REPO}/bench\'); '
                                         'import malloc; print(malloc.active())"'],
                          capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "glibc-kept"


def _row(model: str, variant: str, train: float) -> dict[str, object]:
    return {"size": "s", "model": model, "variant": variant, "threads": 1, "device": "cpu", "status": "ok",
            "train_s_epoch": train, "eval_s": train / 10, "peak_mb": 100.0}


def test_perf_compares_an_allocator_with_the_default_and_with_lightgcn_under_it() -> None:
    rows = [_row("LightGCN", "default", 2.0), _row("RLMultimodalRec", "default", 3.0),
            _row("LightGCN", "malloc=jemalloc", 1.0), _row("RLMultimodalRec", "malloc=jemalloc", 1.2)]
    perf.add_ratios(rows)
    assert [r["train_x"] for r in rows] == [1.0, 1.5, 1.0, 1.2]  # each against LightGCN of its allocator
    assert perf.variant_label({"feature_dim": 128}, "jemalloc") == "feature_dim=128,malloc=jemalloc"
    info = {"cpu": "cpu", "cores": 2, "ram_gb": 1.0, "python": "3"}
    text = perf.markdown(rows, {}, info, "python bench/perf.py --malloc jemalloc")
    assert "| s | RLMultimodalRec | default | 1 | jemalloc | 3.00 / 1.20 | 2.50x | 0.30 / 0.12 | 2.50x | 100 / 100 | - / - |" in text


def test_parity_passes_the_allocator_on_and_the_table_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, str]] = []

    def fake(cmd, env=None, **_):
        if cmd[0] == "git":
            return subprocess.CompletedProcess(cmd, 0, "abc\n", "")
        seen.append(env)
        metrics = {"recall@20": 0.2, "ndcg@20": 0.2}
        Path(cmd[cmd.index("--out") + 1]).write_text(json.dumps(
            {"valid": metrics, "test": metrics, "train_cpu_seconds_per_epoch": 1.0, "best_epoch": 1, "epochs_run": 2}))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    from datagen import make_dataset

    monkeypatch.setattr(parity.subprocess, "run", fake)
    source = make_dataset(tmp_path / "src", name="tiny")
    common = ["--models", "VBPR", "--datasets", "tiny", "--source", f"tiny={source}", "--epochs", "2", "--seeds", "1",
              "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    parity.main([*common, "--sides", "ours", "--malloc", "glibc-kept"])
    assert seen[0]["MALLOC_TRIM_THRESHOLD_"] == str(2**62)
    record = tmp_path / "out" / "ours" / "parity-tiny" / "VBPR-1.json"
    assert json.loads(record.read_text())["malloc"] == "glibc-kept"
    ref = dict(json.loads(record.read_text()), malloc="default")
    (tmp_path / "out" / "reference" / "parity-tiny").mkdir(parents=True)
    (tmp_path / "out" / "reference" / "parity-tiny" / "VBPR-1.json").write_text(json.dumps(ref))
    parity.main([*common, "--table-only"])
    assert "| 1.00 / 1.00 (malloc default / glibc-kept) |" in (tmp_path / "out" / "parity.md").read_text()
