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
