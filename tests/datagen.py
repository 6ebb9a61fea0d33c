"""Small generated multimodal datasets in RecBole's atomic format (no ../shared needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml


def make_dataset(
    root: Path,
    name: str = "tiny",
    n_users: int = 60,
    n_items: int = 40,
    per_user: int = 8,
    dims: dict[str, int] | None = None,
    missing: dict[str, list[int]] | None = None,
    seed: int = 0,
    index: bool = True,
) -> Path:
    """Write ``root/name/`` with train/valid/test atomic files, features, index and yaml.

    Item tokens are ``i<k>`` (or ``k`` when ``index`` is False, MMRec's convention); items
    listed in ``missing[m]`` get an all-zero row for modality ``m``. Users prefer items
    whose features resemble a user-specific direction, so content carries signal.
    Returns the dataset folder.
    """
    dims = {"image": 12, "text": 8} if dims is None else dims
    missing = missing or {}
    rng = np.random.default_rng(seed)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    tokens = [f"i{k}" if index else str(k) for k in range(n_items)]
    latent = rng.normal(size=(n_items, 4))
    feats = {}
    for m, d in dims.items():
        x = latent @ rng.normal(size=(4, d)) + 0.1 * rng.normal(size=(n_items, d))
        x[missing.get(m, [])] = 0.0
        feats[m] = x.astype(np.float32)
        np.save(folder / f"{name}.{m}.npy", feats[m])
    if index:
        (folder / f"{name}.item_index").write_text("\n".join(tokens) + "\n")
    splits: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for u in range(n_users):
        pref = latent @ rng.normal(size=4)
        p = np.exp(pref - pref.max())
        items = rng.choice(n_items, size=per_user, replace=False, p=p / p.sum())
        for j, i in enumerate(items):
            split = "test" if j == 0 else "valid" if j == 1 else "train"
            splits[split].append(f"u{u}\t{tokens[i]}")
    for split, rows in splits.items():
        (folder / f"{name}.{split}.inter").write_text(
            "user_id:token\titem_id:token\n" + "\n".join(rows) + "\n"
        )
    cfg = {
        "benchmark_filename": ["train", "valid", "test"],
        "modalities": {m: f"{name}.{m}.npy" for m in dims},
    }
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    return folder


def base_config(root: Path, name: str = "tiny", **extra: object) -> dict:
    """A fast config_dict for tests: generated data under ``root``, few epochs, no logs noise."""
    cfg = {
        "data_path": str(root),
        "dataset": name,
        "benchmark_filename": ["train", "valid", "test"],
        "modalities": {},
        "epochs": 2,
        "train_batch_size": 128,
        "eval_batch_size": 256,
        "embedding_size": 8,
        "checkpoint_dir": str(root / "saved"),
        "show_progress": False,
        "topk": [5, 10, 20],
        "metrics": ["Recall", "NDCG"],
        "valid_metric": "Recall@20",
        "state": "ERROR",
        "seed": 2020,
        "reproducibility": True,
    }
    folder = root / name
    cfg_file = folder / f"{name}.yaml"
    if cfg_file.is_file():
        cfg.update(yaml.safe_load(cfg_file.read_text()))
    cfg.update(extra)
    return cfg


#: The fixed rows :func:`make_field_type_dataset` writes, so tests can check what RecBole loaded.
FIELD_TYPE_KNOWN = {
    "inter": {"user_id": "u0", "item_id": "i0", "tags": ["t1", "t3"], "context": [0.25, -0.75]},
    "item": {"item_id": "i1", "brand": "b1", "price": 12.5, "categories": ["c1"], "embedding": [0.5, -1.5, 2.0]},
    "user": {"user_id": "u0", "gender": "F", "age": 31.0, "interests": ["k0", "k2"], "profile": [1.0]},
    "empty_item": "i2",  # empty categories and embedding cells
}


def make_field_type_dataset(
    root: Path,
    name: str = "ftype",
    n_users: int = 40,
    n_items: int = 30,
    per_user: tuple[int, int] = (10, 13),
    seed: int = 0,
) -> Path:
    """Write ``root/name/`` with ``.inter``, ``.user`` and ``.item`` files holding every RecBole
    field type (``token``, ``token_seq``, ``float``, ``float_seq``) and ``<name>.yaml``.

    Every file has a column of each type; sequence columns hold empty cells and one-element
    sequences; the rows of :data:`FIELD_TYPE_KNOWN` are written as given. Each user has at
    least ``per_user[0]`` (>= 10) interactions with distinct items, so RecBole's default
    per-user random split (``RS`` 8:1:1) puts every user in train, valid and test. Returns the
    dataset folder.
    """
    rng = np.random.default_rng(seed)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    known = FIELD_TYPE_KNOWN

    def tokens(prefix: str, pool: int, most: int) -> str:  # 0..most distinct tokens
        picked = rng.choice(pool, size=int(rng.integers(0, most + 1)), replace=False)
        return " ".join(f"{prefix}{k}" for k in picked)

    def floats(most: int) -> str:  # 0..most values
        return " ".join(f"{x:.3f}" for x in rng.normal(size=int(rng.integers(0, most + 1))))

    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float\ttags:token_seq\tcontext:float_seq"]
    for u in range(n_users):
        items = rng.choice(n_items, size=int(rng.integers(per_user[0], per_user[1] + 1)), replace=False)
        if u == 0:
            items = np.array([0, *(i for i in items if i != 0)])
        for i in items:
            rating, stamp = int(rng.integers(1, 6)), 1_600_000_000 + int(rng.integers(0, 10**6))
            if (u, i) == (0, 0):
                tags = " ".join(known["inter"]["tags"])
                context = " ".join(str(x) for x in known["inter"]["context"])
            else:
                tags, context = tokens("t", 5, 3), floats(2)
            inter.append(f"u{u}\ti{i}\t{rating}\t{stamp}\t{tags}\t{context}")
    (folder / f"{name}.inter").write_text("\n".join(inter) + "\n")

    item = ["item_id:token\tbrand:token\tprice:float\tcategories:token_seq\tembedding:float_seq"]
    for i in range(n_items):
        row = [f"i{i}", f"b{i % 4}", f"{rng.uniform(1, 100):.2f}", tokens("c", 6, 3), floats(3)]
        if i == 1:
            k = known["item"]
            row = ["i1", k["brand"], str(k["price"]), " ".join(k["categories"]), " ".join(map(str, k["embedding"]))]
        elif i == 2:
            row[3:] = ["", ""]
        item.append("\t".join(row))
    (folder / f"{name}.item").write_text("\n".join(item) + "\n")

    user = ["user_id:token\tgender:token\tage:float\tinterests:token_seq\tprofile:float_seq"]
    for u in range(n_users):
        row = [f"u{u}", "MF"[u % 2], str(int(rng.integers(18, 70))), tokens("k", 4, 2), floats(2)]
        if u == 0:
            k = known["user"]
            row = ["u0", k["gender"], str(k["age"]), " ".join(k["interests"]), " ".join(map(str, k["profile"]))]
        user.append("\t".join(row))
    (folder / f"{name}.user").write_text("\n".join(user) + "\n")

    cfg = {
        "load_col": None,  # every column of every atomic file
        "RATING_FIELD": "rating",
        "TIME_FIELD": "timestamp",
        # full ranking over 30 items: RecBole's default cut-offs (10, 20, 50) do not fit
        "topk": [5, 10],
        "valid_metric": "Recall@10",
    }
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    return folder


def make_cold_dataset(root: Path, name: str = "cold", cold: tuple[int, ...] = (30, 31, 32, 33, 34), **kwargs: object) -> Path:
    """:func:`make_dataset` whose items ``i<c>`` for ``c`` in ``cold`` never occur in training:
    their training interactions move to the test split (a cold-start item split)."""
    folder = make_dataset(root, name=name, **kwargs)
    tokens = {f"i{c}" for c in cold}
    train = (folder / f"{name}.train.inter").read_text().splitlines()
    header, rows = train[0], train[1:]
    moved = [r for r in rows if r.split("\t")[1] in tokens]
    (folder / f"{name}.train.inter").write_text("\n".join([header, *(r for r in rows if r not in moved)]) + "\n")
    test = (folder / f"{name}.test.inter").read_text().rstrip("\n").splitlines()
    (folder / f"{name}.test.inter").write_text("\n".join([*test, *moved]) + "\n")
    return folder
