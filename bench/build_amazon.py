"""Build dataset/amazon (Amazon Baby 5-core, MMRec's split) from ../shared/data/amazon-baby.

    python bench/build_amazon.py [--src ../shared/data/amazon-baby] [--out dataset/amazon]

Writes RecBole atomic files amazon.{train,valid,test}.inter with user_id = reviewer id and
item_id = ASIN (MMRec's integer ids mapped back through its id-mapping files), keeping
MMRec's x_label split, plus amazon.item_index (the ASIN of MMRec item id r on line r+1), so
that MMRec's image_feat.npy / text_feat.npy rows line up once renamed to
amazon.image.npy / amazon.text.npy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

SPLITS = {0: "train", 1: "valid", 2: "test"}


def build(src: Path, out: Path) -> dict[str, int]:
    inter = pd.read_csv(src / "baby.inter", sep="\t", dtype={"userID": int, "itemID": int, "x_label": int})
    users = pd.read_csv(src / "u_id_mapping.csv", sep="\t", dtype=str)
    items = pd.read_csv(src / "i_id_mapping.csv", sep="\t", dtype=str)
    uid = dict(zip(users["userID"].astype(int), users["user_id"]))
    iid = dict(zip(items["itemID"].astype(int), items["asin"]))
    if set(inter["itemID"]) - set(iid) or set(inter["userID"]) - set(uid):
        raise ValueError("baby.inter has ids missing from the id-mapping files")
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for label, split in SPLITS.items():
        part = inter[inter["x_label"] == label]
        frame = pd.DataFrame(
            {"user_id:token": part["userID"].map(uid), "item_id:token": part["itemID"].map(iid)}
        )
        frame.to_csv(out / f"amazon.{split}.inter", sep="\t", index=False)
        counts[split] = len(frame)
    n_items = max(iid) + 1
    (out / "amazon.item_index").write_text("\n".join(iid[i] for i in range(n_items)) + "\n")
    counts["items"] = n_items
    counts["users"] = inter["userID"].nunique()
    return counts


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=here.parent / "shared" / "data" / "amazon-baby")
    parser.add_argument("--out", type=Path, default=here / "dataset" / "amazon")
    args = parser.parse_args()
    print(build(args.src, args.out))


if __name__ == "__main__":
    main()
