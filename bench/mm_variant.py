"""A copy of ``dataset/movielens-mm`` with replaced features (bench/build_noise.py,
bench/missing_modalities.py): the same interactions, splits and item index, new feature files,
and a dataset yaml with the movielens-mm schedule."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recbole_rlmm.data.format import SPLITS, config_file, feature_file, inter_file, item_index_file
from recbole_rlmm.data.io import save_npy_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "dataset" / "movielens-mm"
MODALITIES = ("image", "text")


def write_variant(
    out: Path, name: str, features: Callable[[str, np.ndarray], np.ndarray], comment: str
) -> Path:
    """Write ``out/name``; ``features(modality, real)`` returns the new feature matrix."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        shutil.copyfile(
            SOURCE / inter_file("movielens-mm", split), folder / inter_file(name, split)
        )
    shutil.copyfile(SOURCE / item_index_file("movielens-mm"), folder / item_index_file(name))
    for modality in MODALITIES:
        real = np.load(SOURCE / feature_file("movielens-mm", modality), allow_pickle=False)
        save_npy_atomic(folder / feature_file(name, modality), features(modality, real))
    write_text_atomic(
        folder / config_file(name),
        f"""# {comment}
benchmark_filename: [train, valid, test]
data_path: {out}
modalities:
  image: {feature_file(name, "image")}
  text: {feature_file(name, "text")}
# the movielens-mm schedule (properties/dataset/movielens-mm.yaml)
learning_rate: 0.01
train_batch_size: 4096
""",
    )
    return folder
