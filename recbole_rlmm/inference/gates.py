"""RLMultimodalRec's gate, shown: each item's share per modality.

``write_gates(recommender, out)`` writes into the folder ``out``:

* ``gates.csv``: one row per item: ``item`` (raw token), ``train_interactions`` (the item's
  degree in the training split), ``share_<modality>`` for every modality the model uses (the
  share of the item's fused content given to it, averaged over dimensions; they sum to 1 over
  the modalities the item has, 0 for one it lacks) and ``modalities`` (those the item has,
  joined by ``+``, or ``none``);
* ``gates_by_popularity.csv``: per training-degree bucket (0, 1-2, 3-5, 6-10, 11-25, 26+):
  ``items``, ``items_with_all`` (items having every modality) and ``mean_share_<modality>``
  over the items with every modality (only there does the gate choose); empty where none;
* ``gates.png`` (needs the ``plot`` extra, matplotlib): a histogram of the image share (the
  first modality's without an image modality; with three or more modalities one panel per
  modality) over the items having every modality.

With ``fusion: sum`` or a single modality the shares are the fixed ones the fusion implies.
Models other than RLMultimodalRec, and ``fusion: concat``/``none``, have no shares.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from recbole_rlmm.data.io import atomic_write, write_text_atomic
from recbole_rlmm.inference.errors import InferenceError
from recbole_rlmm.inference.outputs import check_out_dir
from recbole_rlmm.model.rlmultimodalrec import RLMultimodalRec

#: Training-degree buckets: (lowest, highest); None = no upper bound.
BUCKETS: tuple[tuple[int, int | None], ...] = (
    (0, 0),
    (1, 2),
    (3, 5),
    (6, 10),
    (11, 25),
    (26, None),
)
PLOT_EXTRA = 'pip install "recbole-rlmm[plot]"'


class NoGateError(InferenceError):
    """The model has no per-item modality shares."""


def bucket_name(lo: int, hi: int | None) -> str:
    return f"{lo}+" if hi is None else str(lo) if lo == hi else f"{lo}-{hi}"


def item_shares(recommender: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(shares, has)``: each modality's share and whether the item has it, by internal id."""
    model = recommender.model
    name = recommender.model_name
    if not isinstance(model, RLMultimodalRec):
        raise NoGateError(
            f"{name} has no modality gate; gates shows RLMultimodalRec's per-item modality shares."
        )
    shares = {m: v.numpy().astype(np.float64) for m, v in model.gate_values().items()}
    if not shares:
        raise NoGateError(
            f"RLMultimodalRec with fusion={model.fusion} has no per-modality shares; gates needs "
            "fusion gate (or sum, image, text: fixed shares)."
        )
    has = {m: model.encoders[m].mask.cpu().numpy().astype(bool) for m in shares}
    return shares, has


def gate_table(recommender: Any) -> Any:
    """The rows of ``gates.csv`` (pandas DataFrame, padding item excluded)."""
    import pandas as pd

    shares, has = item_shares(recommender)
    modalities = list(shares)
    present = np.stack([has[m] for m in modalities])[:, 1:]
    labels = [
        "+".join(m for m, h in zip(modalities, column) if h) or "none" for column in present.T
    ]
    table = {
        "item": recommender.item_tokens,
        "train_interactions": recommender.item_degree()[1:],
        **{f"share_{m}": shares[m][1:] for m in modalities},
        "modalities": labels,
    }
    return pd.DataFrame(table)


def modalities_of(table: Any) -> list[str]:
    return [c[len("share_") :] for c in table.columns if c.startswith("share_")]


def with_all(table: Any) -> Any:
    """The rows of items having every modality."""
    return table[table["modalities"] == "+".join(modalities_of(table))]


def popularity_table(table: Any) -> Any:
    """Mean share per modality by training-degree bucket (``gates_by_popularity.csv``)."""
    import pandas as pd

    modalities = modalities_of(table)
    complete = table["modalities"] == "+".join(modalities)
    rows = []
    for lo, hi in BUCKETS:
        degree = table["train_interactions"]
        inside = (degree >= lo) & (degree <= hi if hi is not None else True)
        chosen = table[inside & complete]
        row: dict[str, Any] = {
            "train_interactions": bucket_name(lo, hi),
            "items": int(inside.sum()),
            "items_with_all": len(chosen),
        }
        for m in modalities:
            row[f"mean_share_{m}"] = float(chosen[f"share_{m}"].mean()) if len(chosen) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def plot_shares(table: Any, title: str) -> bytes:
    """``gates.png``: histogram(s) of the shares of items having every modality."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modalities = modalities_of(table)
    complete = with_all(table)
    shown = (
        modalities if len(modalities) > 2 else ["image" if "image" in modalities else modalities[0]]
    )
    fig, axes = plt.subplots(1, len(shown), figsize=(5.5 * len(shown), 4.0), squeeze=False)
    for ax, m in zip(axes[0], shown):
        values = complete[f"share_{m}"]
        ax.hist(values, bins=20, range=(0.0, 1.0), color="#4c72b0", edgecolor="white")
        if len(values):
            ax.axvline(
                float(values.mean()),
                color="#c44e52",
                linestyle="--",
                label=f"mean {values.mean():.2f}",
            )
            ax.legend(frameon=False)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"share of {m} in the item's fused content")
        ax.set_ylabel("items")
    fig.suptitle(f"{title}\n{len(complete)} items with {' and '.join(modalities)}", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def write_gates(recommender: Any, out: str | Path, overwrite: bool = False) -> dict[str, Any]:
    """Write ``gates.csv``, ``gates_by_popularity.csv`` and ``gates.png`` into ``out`` (see the
    module docstring). Returns ``{"table", "popularity", "files", "skipped"}``; ``skipped``
    says why the PNG was not written (matplotlib missing), else None."""
    out = check_out_dir(out, overwrite)
    table = gate_table(recommender)
    popularity = popularity_table(table)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "gates.csv", table.to_csv(index=False))
    write_text_atomic(out / "gates_by_popularity.csv", popularity.to_csv(index=False))
    files = [out / "gates.csv", out / "gates_by_popularity.csv"]
    skipped = None
    try:
        has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        has_matplotlib = False
    if not has_matplotlib:
        skipped = f"gates.png skipped: matplotlib is not installed ({PLOT_EXTRA})"
    else:
        title = f"{recommender.model_name} on {recommender.config['dataset']}: gate shares"
        png = plot_shares(table, title)
        atomic_write(out / "gates.png", lambda f: f.write(png))
        files.append(out / "gates.png")
    return {"table": table, "popularity": popularity, "files": files, "skipped": skipped}
