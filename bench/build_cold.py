"""Build the cold-start item benchmark ``movielens-cold`` from MovieLens-1M-MM's cold item split.

    python bench/build_cold.py [--users 1000] [--seed 2024] [--out /tmp/rlmm-data]

Source: ``../shared/data/movielens-1m-mm/interactions.csv`` (``user,item,split``): ``train``
rows are on warm items; ``cold_valid`` and ``cold_test`` rows are on items whose
interactions are all held out (302 and 905 items that never occur in ``train``). We draw
``--users`` users (seeded) among those with training interactions and keep all their rows:
``train`` -> ``movielens-cold.train.inter``, ``cold_valid`` -> ``.valid.inter``,
``cold_test`` -> ``.test.inter``. Item features are the embedded dataset's
(``dataset/movielens-mm``: 384-d plot/title text for every movie, 1280-d poster features
for 2,859 of them), copied with their item index, so the rows line up by item token.

The result is an ordinary RecBole dataset folder with its own yaml; ``compare`` and
``run`` train on it like on any other (``--dataset movielens-cold --data_path OUT``). Cold
items are excluded from training negatives and from the training graphs by the runner
itself (docs/COLD_START.md).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from recbole_rlmm.data.format import config_file, feature_file, inter_file, item_index_file
from recbole_rlmm.data.io import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "movielens-1m-mm"
FEATURES = REPO / "dataset" / "movielens-mm"
NAME = "movielens-cold"
SPLITS = {"train": "train", "cold_valid": "valid", "cold_test": "test"}


def build(out: Path, users: int, seed: int, source: Path = SOURCE) -> Path:
    inter = pd.read_csv(source / "interactions.csv", dtype={"user": str, "item": str, "split": str})
    with_train = np.sort(inter.loc[inter["split"] == "train", "user"].unique())
    chosen = set(np.random.default_rng(seed).choice(with_train, size=min(users, len(with_train)), replace=False))
    inter = inter[inter["user"].isin(chosen)]
    folder = out / NAME
    folder.mkdir(parents=True, exist_ok=True)
    for split, name in SPLITS.items():
        part = inter[inter["split"] == split].sort_values(["user", "item"], kind="stable")
        lines = ["user_id:token\titem_id:token", *(f"{u}\t{i}" for u, i in zip(part["user"], part["item"]))]
        write_text_atomic(folder / inter_file(NAME, name), "\n".join(lines) + "\n")
    for modality in ("image", "text"):
        shutil.copyfile(FEATURES / feature_file("movielens-mm", modality), folder / feature_file(NAME, modality))
    shutil.copyfile(FEATURES / item_index_file("movielens-mm"), folder / item_index_file(NAME))
    yaml = f"""# built by bench/build_cold.py --users {users} --seed {seed}: MovieLens-1M-MM cold item split
USER_ID_FIELD: user_id
ITEM_ID_FIELD: item_id
load_col: {{inter: [user_id, item_id]}}
benchmark_filename: [train, valid, test]
data_path: {out}
modalities:
  image: {feature_file(NAME, "image")}
  text: {feature_file(NAME, "text")}
# the movielens-mm schedule (properties/dataset/movielens-mm.yaml)
learning_rate: 0.01
train_batch_size: 4096
# cold-item metrics are small: six decimals, so that early stopping sees their changes
metric_decimal_place: 6
"""
    write_text_atomic(folder / config_file(NAME), yaml)
    counts = {name: int((inter["split"] == split).sum()) for split, name in SPLITS.items()}
    items = {name: inter.loc[inter["split"] == split, "item"].nunique() for split, name in SPLITS.items()}
    print(f"{folder}: {len(chosen)} users; interactions {counts}; items {items}")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=Path("/tmp/rlmm-data"))
    args = parser.parse_args()
    build(args.out, args.users, args.seed)


if __name__ == "__main__":
    main()
