"""The wheel carries the properties and works from another directory, outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from datagen import make_dataset

pytestmark = pytest.mark.slow  # many trainings or processes: `-m "not slow"` skips them

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    return next(out.glob("recbole_rlmm-*.whl"))


def test_wheel_contains_package_and_properties(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "recbole_rlmm/model/rlmultimodalrec.py" in names
    assert "recbole_rlmm/properties/overall.yaml" in names
    assert "recbole_rlmm/properties/model/RLMultimodalRec.yaml" in names
    assert "recbole_rlmm/properties/dataset/amazon.yaml" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_installed_wheel_trains_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    work = tmp_path / "elsewhere"
    make_dataset(work / "dataset")
    code = (
        "import recbole_rlmm, sys; from recbole_rlmm.config import properties_dir;"
        "print(recbole_rlmm.__file__); print(properties_dir());"
        "from recbole_rlmm.cli import main;"
        "sys.exit(main(['run', '-d', 'tiny', '--epochs=1', '--embedding_size=8', '--state=ERROR', '--topk=[5,10,20]',"
        "\"--benchmark_filename=['train','valid','test']\","
        "\"--modalities={'image': 'tiny.image.npy', 'text': 'tiny.text.npy'}\"]))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith(str(target)) and lines[1].startswith(str(target))
    assert "RLMultimodalRec on tiny" in out.stdout
