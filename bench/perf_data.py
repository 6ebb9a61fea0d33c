"""Datasets of the performance benchmark (``bench/perf.py``), generated into a cache folder.

* :func:`amazon_standin`: ``dataset/amazon`` (Amazon Baby, MMRec's split) with *random*
  stand-in features of MMRec's real shapes (4096-d image, 384-d text). Random values are
  fine for timing and memory, never for quality.
* :func:`synthetic`: a generated dataset of any size with power-law user and item degrees
  (every user at least ``min_degree`` interactions, as in a 5-core), a per-user random 8:1:1
  split (MMRec's) and random features; :data:`SIZES` holds the Elec-sized one (192,403 users,
  63,001 items, 1,689,188 interactions, 4096-d image + 384-d text) and a tiny one for tests.

Everything is seeded and written atomically; a folder whose ``_generated.json`` matches the
request is reused, so a second call costs nothing. Feature files are written a block of rows
at a time (bounded memory, whatever their size). Nothing here is committed.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from recbole_rlmm.data.io import atomic_write

REPO = Path(__file__).resolve().parents[1]

#: Version of the generators; bump it when their output changes, so caches are rebuilt.
GENERATOR_VERSION = 3


@dataclass(frozen=True)
class SyntheticSpec:
    """Shape of a generated dataset."""

    n_users: int
    n_items: int
    n_inter: int
    dims: dict[str, int] = field(default_factory=lambda: {"image": 4096, "text": 384})
    min_degree: int = 5
    user_exponent: float = 2.5  # P(user degree = k) ~ k^-exponent, k >= min_degree
    item_exponent: float = 2.0  # P(item degree = k) ~ k^-exponent (a few very popular items)
    max_user_share: float = 1e-3  # largest user degree / interactions (Elec: ~1,700)
    max_item_share: float = 5e-3  # largest item degree / interactions (Elec: ~8,400)
    seed: int = 2020
    # > 0: users and items belong to this many latent groups; a user draws most items from its
    # group and every feature row is its item's group centre plus noise, so that content
    # predicts interactions (the content check keeps it) instead of being pure noise
    groups: int = 0
    # share of items held out of training (cold items): all their interactions go to valid/test
    cold_items: float = 0.0


#: Named sizes. ``elec``: Amazon Electronics as MMRec ships it (5-core).
SIZES: dict[str, SyntheticSpec] = {
    "elec": SyntheticSpec(192_403, 63_001, 1_689_188),
    "tiny": SyntheticSpec(120, 80, 1_400, dims={"image": 48, "text": 16}),
    # small features, more users than items, cold validation items (issue 18's held-out shape:
    # two non-text 128-d modalities, ~69k interactions, ~7% of valid/test interactions cold)
    "cold": SyntheticSpec(
        12_000, 5_000, 69_000, dims={"image": 128, "audio": 128}, groups=50, cold_items=0.03,
    ),
    "tiny-cold": SyntheticSpec(150, 90, 1_800, dims={"image": 16, "audio": 16}, groups=4, cold_items=0.1),
}

#: MMRec's feature shapes for Amazon Baby (image_feat.npy, text_feat.npy).
AMAZON_DIMS = {"image": 4096, "text": 384}


def _done(folder: Path, request: dict[str, Any]) -> bool:
    marker = folder / "_generated.json"
    if not marker.is_file():
        return False
    try:
        stored = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return stored.get("request") == request


def _mark(folder: Path, request: dict[str, Any], info: dict[str, Any]) -> None:
    from recbole_rlmm.data.io import write_json_atomic

    write_json_atomic(folder / "_generated.json", {"request": request, **info})


def write_random_features(
    path: Path, n_rows: int, dim: int, kind: str, seed: int, block: int = 8192, missing: float = 0.0
) -> None:
    """A float32 ``(n_rows, dim)`` ``.npy`` of random features, written ``block`` rows at a
    time. ``image``-like rows are non-negative and sparse (CNN activations after a ReLU),
    other rows are unit vectors (sentence embeddings). A share ``missing`` of rows is zero
    (the item lacks the modality)."""
    rng = np.random.default_rng(seed)

    def write(out: IO[bytes]) -> None:  # plain writes: a memory map would count the file in our RSS
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": (n_rows, dim)}
        np.lib.format.write_array_header_1_0(out, header)
        for start in range(0, n_rows, block):
            n = min(block, n_rows - start)
            x = rng.standard_normal((n, dim), dtype=np.float32)
            if kind == "image":
                np.maximum(x, 0.0, out=x)
                x *= 2.0
            else:
                x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
            if missing > 0:
                x[rng.random(n) < missing] = 0.0
            out.write(x.tobytes())

    atomic_write(path, write)


def amazon_standin(cache: Path, source: Path | None = None, dims: dict[str, int] | None = None, seed: int = 2020) -> Path:
    """``<cache>/amazon/``: the interactions and item index of ``dataset/amazon`` (copied) and
    random ``amazon.image.npy`` (4096-d) / ``amazon.text.npy`` (384-d) rows in the item
    index's order. Returns the data path (``cache``) to run ``--dataset amazon`` with."""
    source = source or REPO / "dataset" / "amazon"
    dims = dict(AMAZON_DIMS if dims is None else dims)
    folder = cache / "amazon"
    files = sorted(p.name for p in source.iterdir() if p.name.startswith("amazon.") and p.suffix in (".inter", ".item_index"))
    sizes = {name: (source / name).stat().st_size for name in files}
    request = {"version": GENERATOR_VERSION, "kind": "amazon-standin", "dims": dims, "seed": seed, "files": sizes}
    if _done(folder, request):
        return cache
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copyfile(source / name, folder / name)
    n_items = sum(1 for line in (source / "amazon.item_index").read_text().splitlines() if line.strip())
    for i, (m, d) in enumerate(dims.items()):
        write_random_features(folder / f"amazon.{m}.npy", n_items, d, m, seed + i)
    _mark(folder, request, {"seconds": round(time.perf_counter() - start, 2), "n_items": n_items})
    return cache


def _power_law_degrees(rng: np.random.Generator, n: int, total: int, low: int, exponent: float, cap: float) -> np.ndarray:
    """``n`` integer degrees >= ``low`` from a discrete power law (capped at ``cap``), rescaled
    to sum to ``total``."""
    u = rng.random(n)
    raw = low * (1.0 - u) ** (-1.0 / (exponent - 1.0))
    raw = np.minimum(raw, max(low + 1, cap))
    extra = total - low * n
    if extra < 0:
        raise ValueError(f"{total} interactions cannot give {n} nodes at least {low} each")
    weights = raw - low + 1e-9
    deg = low + np.floor(weights / weights.sum() * extra).astype(np.int64)
    short = total - int(deg.sum())
    if short > 0:
        deg[rng.choice(n, size=short, replace=False, p=weights / weights.sum())] += 1
    return deg


def synthetic_interactions(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray]:
    """(users, items) of ``spec.n_inter`` distinct interactions: user degrees from a power law
    (each >= ``min_degree``), items drawn with power-law popularity, no repeats per user."""
    rng = np.random.default_rng(spec.seed)
    max_deg = spec.n_items // 2
    cap = min(max_deg, max(spec.max_user_share * spec.n_inter, 20 * spec.min_degree))
    deg = _power_law_degrees(rng, spec.n_users, spec.n_inter, min(spec.min_degree, max_deg), spec.user_exponent, cap)
    # cap per-user degrees (a user cannot have more distinct items than exist); move the rest
    over = np.maximum(deg - max_deg, 0)
    deg -= over
    moved = int(over.sum())
    while moved:
        room = np.flatnonzero(deg < max_deg)
        pick = rng.choice(room, size=min(moved, len(room)), replace=False)
        deg[pick] += 1
        moved -= len(pick)
    popularity = _power_law_degrees(
        rng, spec.n_items, spec.n_inter, min(spec.min_degree, spec.n_users // 2), spec.item_exponent,
        min(spec.n_users // 2, max(spec.max_item_share * spec.n_inter, 20 * spec.min_degree)),
    ).astype(np.float64)
    popularity /= popularity.sum()
    users = np.repeat(np.arange(spec.n_users, dtype=np.int64), deg)
    items = rng.choice(spec.n_items, size=len(users), p=popularity)
    if spec.groups > 0:  # 80% of a user's items from its own group, with the same popularity
        item_group, user_group = group_of(spec)
        members = [np.flatnonzero(item_group == g) for g in range(spec.groups)]
        own = rng.random(len(users)) < 0.8
        for g, pool in enumerate(members):
            chosen = own & (user_group[users] == g)
            p = popularity[pool] / popularity[pool].sum()
            items[chosen] = pool[rng.choice(len(pool), size=int(chosen.sum()), p=p)]
    # replace repeated (user, item) pairs until every pair is distinct
    for _ in range(100):
        key = users * spec.n_items + items
        _, first = np.unique(key, return_index=True)
        dup = np.ones(len(key), dtype=bool)
        dup[first] = False
        if not dup.any():
            break
        items[dup] = rng.choice(spec.n_items, size=int(dup.sum()), p=popularity)
    else:  # pragma: no cover - only for absurd specs
        raise RuntimeError("could not draw distinct interactions")
    # every item appears at least once (a real 5-core has no item without interactions)
    unseen = np.setdiff1d(np.arange(spec.n_items), items)
    if len(unseen):
        key = users * spec.n_items + items
        counts = np.bincount(items, minlength=spec.n_items)
        # take interactions of the most popular items and give them to the unseen ones
        donors = np.flatnonzero(counts[items] > 2)
        donors = rng.choice(donors, size=len(unseen), replace=False)
        items[donors] = unseen
        key = users * spec.n_items + items
        if len(np.unique(key)) != len(key):  # pragma: no cover - vanishingly rare
            raise RuntimeError("re-assigning unseen items created a duplicate; change the seed")
    return users, items


def group_of(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray]:
    """Latent group of every item and every user (seeded; ``spec.groups > 0``)."""
    rng = np.random.default_rng(spec.seed + 7)
    return rng.integers(0, spec.groups, spec.n_items), rng.integers(0, spec.groups, spec.n_users)


def write_group_features(path: Path, spec: SyntheticSpec, dim: int, seed: int, noise: float = 1.0) -> None:
    """Feature rows = the item's group centre + ``noise`` x standard normal (float32)."""
    rng = np.random.default_rng(seed)
    item_group, _ = group_of(spec)
    centres = rng.standard_normal((spec.groups, dim)).astype(np.float32)
    x = centres[item_group] + noise * rng.standard_normal((spec.n_items, dim)).astype(np.float32)

    def write(out: IO[bytes]) -> None:
        np.save(out, x)

    atomic_write(path, write)


def cold_split(split: np.ndarray, items: np.ndarray, spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """``split`` with the interactions of a random ``spec.cold_items`` share of the items moved
    out of training (half to valid, half to test): those items are cold."""
    if spec.cold_items <= 0:
        return split
    cold = rng.choice(spec.n_items, size=max(1, round(spec.cold_items * spec.n_items)), replace=False)
    moved = np.isin(items, cold) & (split == 0)
    split = split.copy()
    split[moved] = np.where(rng.random(int(moved.sum())) < 0.5, 1, 2)
    return split


def split_per_user(users: np.ndarray, rng: np.random.Generator, ratios: tuple[float, ...] = (0.8, 0.1, 0.1)) -> np.ndarray:
    """0/1/2 (train/valid/test) per interaction: MMRec's per-user random 8:1:1 split (a user's
    last ``round(n*0.1)`` shuffled interactions go to test, the ones before to valid)."""
    order = np.lexsort((rng.random(len(users)), users))
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, counts)
    n = np.repeat(counts, counts)
    n_test = np.maximum(1, np.round(n * ratios[2])).astype(np.int64)
    n_valid = np.maximum(1, np.round(n * ratios[1])).astype(np.int64)
    split_sorted = np.where(rank >= n - n_test, 2, np.where(rank >= n - n_test - n_valid, 1, 0))
    split = np.empty(len(users), dtype=np.int8)
    split[order] = split_sorted
    return split


def _write_inter(path: Path, users: np.ndarray, items: np.ndarray) -> None:
    from recbole_rlmm.data.io import atomic_write

    def write(f: Any) -> None:
        f.write(b"user_id:token\titem_id:token\n")
        block = 200_000
        for start in range(0, len(users), block):
            u, i = users[start : start + block], items[start : start + block]
            lines = "".join(f"u{a}\ti{b}\n" for a, b in zip(u.tolist(), i.tolist(), strict=True))
            f.write(lines.encode())

    atomic_write(path, write)


def synthetic(cache: Path, size: str | SyntheticSpec, name: str | None = None) -> tuple[Path, str, dict[str, Any]]:
    """Generate (or reuse) ``<cache>/<name>/``: atomic train/valid/test files, an item index,
    one random feature file per modality and ``<name>.yaml``. Returns (data path, dataset
    name, generation info: seconds, bytes, counts)."""
    from recbole_rlmm.data.io import write_text_atomic

    spec = SIZES[size] if isinstance(size, str) else size
    name = name or (f"synth-{size}" if isinstance(size, str) else "synth")
    folder = cache / name
    request = {"version": GENERATOR_VERSION, "kind": "synthetic", "spec": asdict(spec)}
    marker = folder / "_generated.json"
    if _done(folder, request):
        return cache, name, json.loads(marker.read_text())
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    users, items = synthetic_interactions(spec)
    split = split_per_user(users, np.random.default_rng(spec.seed + 1))
    split = cold_split(split, items, spec, np.random.default_rng(spec.seed + 2))
    for code, part in enumerate(("train", "valid", "test")):
        keep = split == code
        _write_inter(folder / f"{name}.{part}.inter", users[keep], items[keep])
    write_text_atomic(folder / f"{name}.item_index", "".join(f"i{k}\n" for k in range(spec.n_items)))
    for j, (m, d) in enumerate(spec.dims.items()):
        if spec.groups > 0:
            write_group_features(folder / f"{name}.{m}.npy", spec, d, spec.seed + 10 + j)
        else:
            write_random_features(folder / f"{name}.{m}.npy", spec.n_items, d, m, spec.seed + 10 + j)
    yaml_text = (
        "# generated by bench/perf_data.py: random features, for timing only\n"
        "benchmark_filename: [train, valid, test]\n"
        "modalities:\n" + "".join(f"  {m}: {name}.{m}.npy\n" for m in spec.dims)
    )
    write_text_atomic(folder / f"{name}.yaml", yaml_text)
    info = {
        "seconds": round(time.perf_counter() - start, 2),
        "bytes": sum(p.stat().st_size for p in folder.iterdir() if p.is_file()),
        "n_users": spec.n_users,
        "n_items": spec.n_items,
        "n_inter": int(len(users)),
        "train": int((split == 0).sum()),
        "max_user_degree": int(np.bincount(users).max()),
        "max_item_degree": int(np.bincount(items).max()),
        "cold_items": int(spec.n_items - len(np.unique(items[split == 0]))),
        "cold_share_valid_test": round(float(np.mean(~np.isin(items[split > 0], items[split == 0]))), 4),
    }
    _mark(folder, request, info)
    return cache, name, {"request": request, **info}


def main() -> None:  # pragma: no cover - a smoke test of the generators
    import argparse

    parser = argparse.ArgumentParser(description="generate a benchmark dataset")
    parser.add_argument("size", choices=[*SIZES, "amazon"])
    parser.add_argument("--cache", type=Path, default=REPO / "results" / "perf" / "data")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.size == "amazon":
        print(amazon_standin(args.cache))
    else:
        print(json.dumps(synthetic(args.cache, args.size)[2], indent=2))
    print(f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":  # pragma: no cover
    main()
