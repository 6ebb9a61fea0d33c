"""Checkpoints (recbole_rlmm/checkpoint.py): no pickle, atomic writes, resume, data fingerprints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from datagen import base_config

from recbole_rlmm.checkpoint import (
    CheckpointError,
    read_checkpoint,
    trusted_checkpoints,
    write_checkpoint,
)
from recbole_rlmm.data.io import WriteError
from recbole_rlmm.runner import RunInterrupted, load_for_inference, run_recbole_rlmm

REPO = Path(__file__).resolve().parent.parent


class _Exploit:
    """A pickle payload: unpickling it creates ``marker`` (stands in for any code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


@pytest.fixture
def crafted(tmp_path: Path) -> tuple[Path, Path]:
    """A .pth shaped like a RecBole checkpoint whose unpickling runs code."""
    marker = tmp_path / "pwned"
    path = tmp_path / "crafted.pth"
    torch.save({"config": _Exploit(marker), "state_dict": {}, "epoch": 0}, path)
    return path, marker


@pytest.fixture
def trained(tiny: Path) -> dict[str, Any]:
    return run_recbole_rlmm("RLMultimodalRec", config_dict=base_config(tiny, epochs=2))


def test_checkpoint_holds_no_pickled_objects(trained: dict[str, Any]) -> None:
    path = trained["checkpoint"]
    state = torch.load(path, weights_only=True)  # torch's safe loader, nothing else
    assert state["format"] == "recbole-rlmm-checkpoint" and state["kind"] == "best"
    assert state["config"]["final"]["model"] == "RLMultimodalRec"
    assert state["other_parameter"] == {"restore_user_e": None, "restore_item_e": None}  # no stale caches
    assert {"tiny.train.inter", "tiny.image.npy", "tiny.item_index"} <= set(state["data"])


def test_every_loading_path_of_ours_refuses_a_crafted_pickle(
    crafted: tuple[Path, Path], tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Our loaders and our runner's trainer refuse a pickled file unless trusted; each refusal
    names the way to trust it that exists where it is raised."""
    from conftest import build_model

    from recbole_rlmm.cli import main
    from recbole_rlmm.runner.trainer import runner_trainer_class

    path, marker = crafted
    with pytest.raises(CheckpointError, match=r"pickled checkpoint.*trusted_checkpoints\(\)"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="pass trust_checkpoint=True to load_for_inference"):
        load_for_inference(path)
    net, config, _, _, test = build_model("BPR", tiny)
    trainer = runner_trainer_class(config["MODEL_TYPE"], "BPR")(config, net)
    with pytest.raises(CheckpointError, match="pickled checkpoint"):
        trainer.evaluate(test, model_file=str(path))  # our runner's evaluate(model_file=...)
    with pytest.raises(CheckpointError, match="pickled checkpoint"):
        trainer.resume_checkpoint(path)
    args = ["run", "-d", "tiny", f"--data_path={tiny}", "--resume", str(path), "--epochs=1", "--topk=[5,10,20]"]
    assert main(args) == 2
    assert "pass --trust-checkpoint" in capsys.readouterr().err
    bench = subprocess.run(
        [sys.executable, str(REPO / "bench" / "degree_buckets.py"), str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert bench.returncode != 0 and "pickled checkpoint" in bench.stderr
    assert not marker.exists()  # the payload never ran


def test_trusted_legacy_checkpoint_loads(crafted: tuple[Path, Path]) -> None:
    path, marker = crafted
    with trusted_checkpoints():
        read_checkpoint(path)
    assert marker.exists()  # the documented risk of --trust-checkpoint


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "best.pth"
    write_checkpoint(path, {"format": "recbole-rlmm-checkpoint", "version": 1, "weights": torch.ones(3)})

    def broken_save(_obj: Any, f: Any, *_args: Any, **_kwargs: Any) -> None:
        f.write(b"PK\x03\x04 half a zip")  # part of a file, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(WriteError, match=f"cannot write {path} .the previous file is intact.: no space left"):
        write_checkpoint(path, {"format": "recbole-rlmm-checkpoint", "version": 1, "weights": torch.zeros(3)})
    monkeypatch.undo()
    assert torch.equal(read_checkpoint(path)["weights"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pth"]  # no temporary file left


def test_a_file_size_limit_during_a_save_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    """``ulimit -f`` (a stand-in for a full disk) in a real process writing a large checkpoint."""
    path = tmp_path / "best.pth"
    write_checkpoint(path, {"format": "recbole-rlmm-checkpoint", "version": 1, "weights": torch.ones(3)})
    code = f"""
import resource, signal, torch
from recbole_rlmm.checkpoint import write_checkpoint
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
write_checkpoint({str(path)!r}, {{"format": "recbole-rlmm-checkpoint", "version": 1, "weights": torch.zeros(1_000_000)}})
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "WriteError" in out.stderr and "file-size limit (200,000 bytes" in out.stderr
    assert torch.equal(read_checkpoint(path)["weights"], torch.ones(3))


@pytest.mark.parametrize("damage", ["truncate", "empty", "text"])
def test_damaged_checkpoints_are_named(trained: dict[str, Any], damage: str) -> None:
    path = Path(trained["checkpoint"])
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "empty": b"", "text": b"hello"}[damage])
    with pytest.raises(CheckpointError, match=str(path)):
        read_checkpoint(path)


def test_load_refuses_changed_data_unless_asked(trained: dict[str, Any], tiny: Path) -> None:
    path = trained["checkpoint"]
    loaded = load_for_inference(path)
    assert not loaded.model.training and loaded.config["model"] == "RLMultimodalRec"
    image = tiny / "tiny" / "tiny.image.npy"
    np.save(image, np.load(image) * 2.0)
    with pytest.raises(CheckpointError, match=r"tiny\.image\.npy changed since"):
        load_for_inference(path)
    again = load_for_inference(path, changed_data="recompute")
    assert again.model.restore_user_e is None  # scores come from today's features


def _interrupt_at(epoch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from recbole.trainer.trainer import Trainer

    original = Trainer._train_epoch

    def train_epoch(self: Any, train_data: Any, epoch_idx: int, *args: Any, **kwargs: Any) -> Any:
        if epoch_idx == epoch:
            raise KeyboardInterrupt
        return original(self, train_data, epoch_idx, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_train_epoch", train_epoch)


@pytest.mark.parametrize("model", ["RLMultimodalRec", "FREEDOM", "LightGCN"])
def test_resume_gives_the_uninterrupted_metrics(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    cfg = base_config(tiny, epochs=6, stopping_step=50, metric_decimal_place=12)
    full = run_recbole_rlmm(model, config_dict=cfg)
    assert not Path(full["checkpoint"]).with_suffix(".resume.pth").exists()  # finished: removed

    _interrupt_at(3, monkeypatch)
    with pytest.raises(RunInterrupted, match=r"interrupted in epoch 3: .*--resume (\S+\.resume\.pth)") as err:
        run_recbole_rlmm(model, config_dict=cfg)
    resume_file = str(err.value).split("--resume ")[1].rstrip(".")
    monkeypatch.undo()
    resumed = run_recbole_rlmm(model, config_dict=cfg, resume=resume_file)
    assert resumed["best_valid_result"] == full["best_valid_result"]
    assert resumed["test_result"] == full["test_result"]
    assert resumed["best_epoch"] == full["best_epoch"] or full["best_epoch"] < 3


def test_resume_refuses_other_settings(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = base_config(tiny, epochs=4)
    _interrupt_at(2, monkeypatch)
    with pytest.raises(RunInterrupted) as err:
        run_recbole_rlmm("RLMultimodalRec", config_dict=cfg)
    monkeypatch.undo()
    resume_file = str(err.value).split("--resume ")[1].rstrip(".")
    with pytest.raises(CheckpointError, match="learning_rate=0.001 .now 0.05."):
        run_recbole_rlmm("RLMultimodalRec", config_dict={**cfg, "learning_rate": 0.05}, resume=resume_file)
    image = Path(cfg["data_path"]) / "tiny" / "tiny.image.npy"
    original = image.read_bytes()
    np.save(image, np.load(image) * 2.0)
    with pytest.raises(CheckpointError, match=r"tiny\.image\.npy changed since.*without --resume"):
        run_recbole_rlmm("RLMultimodalRec", config_dict=cfg, resume=resume_file)
    image.write_bytes(original)
    longer = run_recbole_rlmm("RLMultimodalRec", config_dict={**cfg, "epochs": 5}, resume=resume_file)
    assert longer["epochs_run"] == 5


def test_ctrl_c_in_the_command_line_is_one_line(tiny: Path, tmp_path: Path) -> None:
    """A real SIGINT while training: one line naming the best checkpoint and how to resume."""
    import signal
    import time

    args = [sys.executable, str(REPO / "run_recbole_rlmm.py"), "-d", "tiny", f"--data_path={tiny}",
            "--epochs=100000", "--stopping_step=100000", "--embedding_size=8", "--topk=[5,10,20]"]
    # as in a terminal: SIGINT handled, even when the tests run in a background job (which
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler)
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "saved").glob("*.resume.pth")):
        time.sleep(0.2)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    last = err.strip().splitlines()[-1]
    assert last.startswith("recbole-rlmm: interrupted in epoch") and "--resume" in last
    assert "Traceback" not in err


@pytest.mark.parametrize("cache", ["{dataset}-Dataset.pth", "{dataset}-for-{model}-dataloader.pth"])
def test_recboles_pickled_data_caches_are_not_loaded(
    tiny: Path, cache: str, caplog: pytest.LogCaptureFixture
) -> None:
    """RecBole's create_dataset/data_preparation unpickle cache files found in checkpoint_dir."""
    cfg = base_config(tiny, epochs=1, state="WARNING")
    path = Path(cfg["checkpoint_dir"]) / cache.format(dataset="tiny", model="BPR")
    path.parent.mkdir(parents=True, exist_ok=True)
    marker = path.parent / "pwned"
    torch.save(_Exploit(marker), path)
    with caplog.at_level("WARNING"):
        result = run_recbole_rlmm("BPR", config_dict=cfg)
    assert result["epochs_run"] == 1 and not marker.exists()
    assert "ignoring the pickled cache" in caplog.text and str(path) in caplog.text
