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


#: Cold shares of the family (per cent of validation and test interactions on cold items).
SHARES = (0, 2, 5, 10, 25, 50, 100)
#: Share of the Scientific items held out of training as cold items (half valid, half test).
SCIENTIFIC_COLD_ITEMS = 0.3


def family_name(base: str, share: int) -> str:
    """``movielens-cold-005``: the family member with ``share`` per cent cold interactions."""
    return f"{base}-cold-{share:03d}"


def _write_split(folder: Path, name: str, split: str, frame: pd.DataFrame) -> None:
    part = frame.sort_values(["user", "item"], kind="stable")
    lines = ["user_id:token\titem_id:token", *(f"{u}\t{i}" for u, i in zip(part["user"], part["item"]))]
    write_text_atomic(folder / inter_file(name, split), "\n".join(lines) + "\n")


def _mix(warm: pd.DataFrame, cold: pd.DataFrame, size: int, share: int) -> pd.DataFrame:
    """``size`` interactions, ``share`` per cent of them cold. ``warm`` and ``cold`` come in a
    fixed seeded order and each member takes a prefix, so the members are nested: the warm
    interactions of a higher share are a subset of those of a lower one, and vice versa."""
    n_cold = round(size * share / 100)
    return pd.concat([warm.iloc[: size - n_cold], cold.iloc[:n_cold]], ignore_index=True)


def _write_member(
    out: Path, base: str, share: int, train: pd.DataFrame, pools: dict[str, tuple[pd.DataFrame, pd.DataFrame]],
    sizes: dict[str, int], features: dict[str, Path], index: Path, schedule: str, how: str,
) -> dict[str, int]:
    name = family_name(base, share)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    _write_split(folder, name, "train", train)
    counts = {"train": len(train)}
    for split, (warm, cold) in pools.items():
        part = _mix(warm, cold, sizes[split], share)
        _write_split(folder, name, split, part)
        counts[split] = len(part)
    for modality, path in features.items():
        shutil.copyfile(path, folder / feature_file(name, modality))
    shutil.copyfile(index, folder / item_index_file(name))
    listed = "\n".join(f"  {m}: {feature_file(name, m)}" for m in features)
    yaml = f"""# built by {how}: {share}% of validation and test interactions on cold items
USER_ID_FIELD: user_id
ITEM_ID_FIELD: item_id
load_col: {{inter: [user_id, item_id]}}
benchmark_filename: [train, valid, test]
data_path: {out}
modalities:
{listed}
{schedule}
# RecBole's eval_batch_size counts scores: its default 4096 scores one or two users per batch
# here; this many scores per batch gives the same metrics much faster
eval_batch_size: 1048576
# the feature files cover every item of the source, most members hold fewer
max_unknown_feature_rows: 1.0
# cold-item metrics are small: six decimals, so that early stopping sees their changes
metric_decimal_place: 6
"""
    write_text_atomic(folder / config_file(name), yaml)
    return counts


def _shuffled(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def build_movielens_family(out: Path, users: int, seed: int, shares: tuple[int, ...], source: Path = SOURCE) -> list[Path]:
    """MovieLens-1M-MM: the users of :func:`build`; their warm (``train``) rows split at random
    80/10/10 into training and the warm validation and test pools; the cold pools are their
    ``cold_valid`` and ``cold_test`` rows. Every member has the same training interactions
    and as many validation (test) interactions as the warm validation (test) pool."""
    inter = pd.read_csv(source / "interactions.csv", dtype={"user": str, "item": str, "split": str})
    with_train = np.sort(inter.loc[inter["split"] == "train", "user"].unique())
    chosen = set(np.random.default_rng(seed).choice(with_train, size=min(users, len(with_train)), replace=False))
    inter = inter[inter["user"].isin(chosen)].sort_values(["user", "item"], kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed + 1)
    warm = inter[inter["split"] == "train"].reset_index(drop=True)
    draw = rng.random(len(warm))
    train = warm[draw >= 0.2]
    trained = warm["item"].isin(set(train["item"]))  # a warm pool holds only items trained on
    pools = {
        "valid": (_shuffled(warm[(draw < 0.1) & trained], rng), _shuffled(inter[inter["split"] == "cold_valid"], rng)),
        "test": (_shuffled(warm[(draw >= 0.1) & (draw < 0.2) & trained], rng), _shuffled(inter[inter["split"] == "cold_test"], rng)),
    }
    return _write_family(
        out, "movielens", shares, train, pools,
        {m: FEATURES / feature_file("movielens-mm", m) for m in ("image", "text")},
        FEATURES / item_index_file("movielens-mm"),
        "# the movielens-mm schedule (properties/dataset/movielens-mm.yaml)\nlearning_rate: 0.01\ntrain_batch_size: 4096",
        f"bench/build_cold.py --family --users {users} --seed {seed}",
    )


def build_scientific_family(out: Path, seed: int, shares: tuple[int, ...], scientific: Path) -> list[Path]:
    """Amazon Scientific (``bench/build_scientific.py``'s leave-one-out split): a seeded
    :data:`SCIENTIFIC_COLD_ITEMS` of the items is held out of training; all interactions on
    half of them form the cold validation pool, on the other half the cold test pool; the
    warm pools are the validation and test interactions on the other items."""
    name = scientific.name
    splits = {
        split: pd.read_csv(scientific / inter_file(name, split), sep="\t", dtype=str).set_axis(["user", "item"], axis=1)
        for split in ("train", "valid", "test")
    }
    items = np.sort(pd.concat(splits.values())["item"].unique())
    rng = np.random.default_rng(seed)
    cold = rng.choice(items, size=round(SCIENTIFIC_COLD_ITEMS * len(items)), replace=False)
    cold_valid, cold_test = set(cold[: len(cold) // 2]), set(cold[len(cold) // 2 :])
    every = pd.concat(splits.values(), ignore_index=True).sort_values(["user", "item"], kind="stable")
    is_cold = set(cold)
    train = splits["train"][~splits["train"]["item"].isin(is_cold)]
    trained = set(train["item"])  # a warm pool holds only items trained on
    pools = {
        "valid": (
            _shuffled(splits["valid"][splits["valid"]["item"].isin(trained)].reset_index(drop=True), rng),
            _shuffled(every[every["item"].isin(cold_valid)].reset_index(drop=True), rng),
        ),
        "test": (
            _shuffled(splits["test"][splits["test"]["item"].isin(trained)].reset_index(drop=True), rng),
            _shuffled(every[every["item"].isin(cold_test)].reset_index(drop=True), rng),
        ),
    }
    return _write_family(
        out, "scientific", shares, train, pools,
        {"text": scientific / feature_file(name, "text")},
        scientific / item_index_file(name),
        "# the scientific schedule (bench/configs/scientific.yaml)\nlearning_rate: 0.01\ntrain_batch_size: 4096",
        f"bench/build_cold.py --family --seed {seed}",
    )


def _write_family(
    out: Path, base: str, shares: tuple[int, ...], train: pd.DataFrame,
    pools: dict[str, tuple[pd.DataFrame, pd.DataFrame]], features: dict[str, Path], index: Path, schedule: str, how: str,
) -> list[Path]:
    # every member holds as many held-out interactions as the smaller pool allows at 0% and 100%
    sizes = {split: min(len(warm), len(cold)) for split, (warm, cold) in pools.items()}
    folders = []
    for share in shares:
        counts = _write_member(out, base, share, train, pools, sizes, features, index, schedule, how)
        print(f"{out / family_name(base, share)}: {share}% cold; interactions {counts}")
        folders.append(out / family_name(base, share))
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=Path("/tmp/rlmm-data"))
    parser.add_argument("--family", action="store_true", help="the family of cold shares (below) instead of movielens-cold")
    parser.add_argument("--shares", type=int, nargs="+", default=list(SHARES), help="per cent of held-out interactions on cold items")
    parser.add_argument("--datasets", nargs="+", choices=("movielens", "scientific"), default=["movielens", "scientific"])
    parser.add_argument("--scientific", type=Path, default=None, help="bench/build_scientific.py's folder (default OUT/scientific)")
    args = parser.parse_args()
    if not args.family:
        build(args.out, args.users, args.seed)
        return
    if bad := [s for s in args.shares if not 0 <= s <= 100]:
        parser.error(f"--shares takes per cent values from 0 to 100, got {bad}")
    shares = tuple(args.shares)
    if "movielens" in args.datasets:
        build_movielens_family(args.out, args.users, args.seed, shares)
    if "scientific" in args.datasets:
        source = args.scientific or args.out / "scientific"
        if not (source / inter_file(source.name, "train")).is_file():
            parser.error(f"{source} holds no Scientific dataset: run python bench/build_scientific.py --out {args.out} first")
        build_scientific_family(args.out, args.seed, shares, source)


if __name__ == "__main__":
    main()
