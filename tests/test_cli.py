"""The runner script and the `recbole-rlmm run` command, as a user calls them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from datagen import make_dataset

from recbole_rlmm.cli import main

REPO = Path(__file__).resolve().parent.parent
FAST = ["--epochs=2", "--embedding_size=8", "--train_batch_size=128", "--state=ERROR", "--topk=[5,10,20]"]


def test_runner_script_prints_test_table(tiny: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "run_recbole_rlmm.py"), "-m", "BPR", "-d", "tiny",
         f"--data_path={tiny}", "--benchmark_filename=['train','valid','test']", *FAST],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "BPR on tiny" in out.stdout
    assert "test" in out.stdout and "recall" in out.stdout and "@20" in out.stdout


def test_run_command_with_config_files(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    user = tmp_path / "user.yaml"
    user.write_text((tiny / "tiny" / "tiny.yaml").read_text() + f"data_path: {tiny}\n")
    sys.argv = ["recbole-rlmm", *FAST, "--gate_type=scalar"]
    code = main(["run", "-d", "tiny", "--config_files", str(user), *FAST, "--gate_type=scalar"])
    assert code == 0
    assert "RLMultimodalRec on tiny" in capsys.readouterr().out


@pytest.mark.slow
def test_missing_amazon_features_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    root = tmp_path / "data"
    folder = make_dataset(root, name="amazon")
    for f in folder.glob("*.npy"):
        f.unlink()
    args = [sys.executable, str(REPO / "run_recbole_rlmm.py"), "-d", "amazon", f"--data_path={root}", *FAST]
    out = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 2
    assert "amazon.image.npy (image)" in out.stderr and "amazon.text.npy (text)" in out.stderr
    assert "README" in out.stderr and "--fusion=none" in out.stderr
    assert "Traceback" not in out.stderr
    ok = subprocess.run([*args, "--fusion=none"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]


def test_overrides_must_be_key_value() -> None:
    with pytest.raises(SystemExit):
        main(["run", "--epochs", "2"])


def test_cli_module_imports_neither_torch_nor_recbole() -> None:
    """`recbole-rlmm --help` stays fast: building the parser (every command registered,
    recommend/export/gates included) imports no torch, RecBole or pandas."""
    code = (
        "import sys, recbole_rlmm.cli as cli; cli.build_parser(); "
        "print(sorted(m for m in ('torch', 'recbole', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_version_names_the_package_version(capsys: pytest.CaptureFixture) -> None:
    from recbole_rlmm import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip().endswith(f" {__version__}")
