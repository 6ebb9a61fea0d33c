"""Build ``movielens-noise``: the embedded movielens-mm interactions with pure-noise features.

    python bench/build_noise.py [--seed 0] [--out /tmp/rlmm-data]

Same users, items, splits and feature shapes as ``dataset/movielens-mm`` (1280-d "image",
384-d "text", the same items missing an image), but every feature value is standard normal
noise drawn with ``--seed``: content carries no signal at all. Used by the do-no-harm table of
docs/RESULTS.md (a content model must match LightGCN here, within seed noise).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from recbole_rlmm.data.format import (
    SPLITS,
    config_file,
    feature_file,
    inter_file,
    item_index_file,
    present_rows,
)
from recbole_rlmm.data.io import save_npy_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "dataset" / "movielens-mm"
NAME = "movielens-noise"


def build(out: Path, seed: int) -> Path:
    folder = out / NAME
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        shutil.copyfile(SOURCE / inter_file("movielens-mm", split), folder / inter_file(NAME, split))
    shutil.copyfile(SOURCE / item_index_file("movielens-mm"), folder / item_index_file(NAME))
    rng = np.random.default_rng(seed)
    for modality in ("image", "text"):
        real = np.load(SOURCE / feature_file("movielens-mm", modality), allow_pickle=False)
        noise = rng.standard_normal(real.shape).astype(np.float32)
        noise[~present_rows(real)] = 0.0  # the same items lack the modality
        save_npy_atomic(folder / feature_file(NAME, modality), noise)
    write_text_atomic(
        folder / config_file(NAME),
        f"""# built by bench/build_noise.py --seed {seed}: movielens-mm interactions, noise features
benchmark_filename: [train, valid, test]
data_path: {out}
modalities:
  image: {feature_file(NAME, "image")}
  text: {feature_file(NAME, "text")}
# the movielens-mm schedule (properties/dataset/movielens-mm.yaml)
learning_rate: 0.01
train_batch_size: 4096
""",
    )
    print(f"{folder}: movielens-mm interactions with N(0, 1) features (seed {seed})")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/rlmm-data"))
    args = parser.parse_args()
    build(args.out, args.seed)


if __name__ == "__main__":
    main()
