"""Build the Amazon Industrial & Scientific benchmark dataset with `recbole-rlmm prepare table`.

    python bench/build_scientific.py [--src ../shared/data/amazon-scientific] [--out /tmp/rlmm-data]

The source (UniSRec's release) is sequential: each user's last item is in test, the one
before in valid, and train holds every prefix. We turn it into a general (user, item) table
with that leave-one-out split (train = every item of the user's history before the valid
item), an item table with the real item text (title, categories, brand), and run
``prepare table`` with text as the only modality (all-MiniLM-L6-v2, 384-d). Users and items
keep their raw ids (reviewer id, ASIN).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from recbole_rlmm.prepare.table import prepare_table


def _index(path: Path) -> dict[str, str]:
    frame = pd.read_csv(path, sep="\t", header=None, names=["raw", "index"], dtype=str)
    return dict(zip(frame["index"], frame["raw"]))


def interactions(src: Path) -> pd.DataFrame:
    """One row per (user, item, split) from the sequential train/valid/test files."""
    users, items = _index(src / "Scientific.user2index"), _index(src / "Scientific.item2index")
    rows = []
    train = pd.read_csv(src / "Scientific.train.inter", sep="\t", dtype=str)
    for user, history, target in train.itertuples(index=False):
        for item in [*str(history).split(), target]:
            rows.append((users[user], items[item], "train"))
    for split in ("valid", "test"):
        frame = pd.read_csv(src / f"Scientific.{split}.inter", sep="\t", dtype=str)
        rows += [(users[u], items[i], split) for u, _, i in frame.itertuples(index=False)]
    table = pd.DataFrame(rows, columns=["user", "item", "split"]).drop_duplicates(["user", "item"])
    return table


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=here.parent / "shared" / "data" / "amazon-scientific")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "rlmm-data")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inter_csv = Path(tmp) / "interactions.csv"
        interactions(args.src).to_csv(inter_csv, index=False)
        text = pd.read_csv(args.src / "Scientific.text", sep="\t", dtype=str)
        text.columns = ["item", "text"]
        items_csv = Path(tmp) / "items.csv"
        text.to_csv(items_csv, index=False)
        prepare_table(
            inter_csv,
            items_csv,
            None,
            name="scientific",
            out=args.out,
            split_col="split",
            text_cols=["text"],
            image_encoder=None,
            overwrite=args.overwrite,
        )


if __name__ == "__main__":
    main()
