"""Final user and item vectors on disk, for an approximate-nearest-neighbour server.

``export_embeddings(recommender, out)`` writes into the folder ``out``:

* ``users.npy``, ``items.npy``: float32 ``(n, d)`` arrays; row ``j`` is line ``j`` of
* ``users.txt``, ``items.txt``: the raw tokens, one per line (RecBole's padding row excluded);
* ``scoring.json``: how to score (``metric: dot``: score = users[u] . items[i], higher is
  better), dims, counts, model, dataset, checkpoint, and how ``recommend`` excludes items;
* ``items.faiss`` with ``index=True``: a faiss ``IndexFlatIP`` over the item vectors (exact
  inner-product search; needs the ``faiss`` extra).

Only models whose scores are dot products have such vectors
(:mod:`recbole_rlmm.inference.vectors`); the vectors are checked against the model's own
scores before anything is written.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from recbole_rlmm.data.io import atomic_write, save_npy_atomic, write_json_atomic, write_text_atomic
from recbole_rlmm.inference.outputs import check_out_dir
from recbole_rlmm.registry import MissingExtraError

FORMAT = "recbole-rlmm-embeddings"
VERSION = 1
FILES = ("users.npy", "items.npy", "users.txt", "items.txt", "scoring.json")
INDEX_FILE = "items.faiss"

EXCLUSION = (
    "recommend ranks every item by score (descending; equal scores by the order of items.txt) "
    "after dropping each user's training interactions (with --exclude-valid / exclude_valid=True "
    "also the validation interactions) of the checkpoint's dataset split; a server using these "
    "vectors should search k plus the number of items the user has seen and drop those items."
)


def check_faiss() -> None:
    """A one-line :class:`MissingExtraError` when faiss is not installed."""
    try:
        installed = importlib.util.find_spec("faiss") is not None
    except (ImportError, ValueError):
        installed = False
    if not installed:
        raise MissingExtraError('--index needs faiss (pip install "recbole-rlmm[faiss]")')


def faiss_index(items: np.ndarray) -> Any:
    """An exact inner-product index (``IndexFlatIP``) over the item vectors."""
    import faiss

    index = faiss.IndexFlatIP(int(items.shape[1]))
    index.add(np.ascontiguousarray(items, dtype=np.float32))
    return index


def export_embeddings(
    recommender: Any,
    out: str | Path,
    index: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the vectors of ``recommender``'s model into the folder ``out`` (see the module
    docstring); returns what ``scoring.json`` holds. ``out`` must be new or empty unless
    ``overwrite``."""
    out = check_out_dir(out, overwrite)
    if index:
        check_faiss()
    users, items = recommender.vectors()
    out.mkdir(parents=True, exist_ok=True)
    save_npy_atomic(out / "users.npy", users)
    save_npy_atomic(out / "items.npy", items)
    write_text_atomic(out / "users.txt", "".join(f"{t}\n" for t in recommender.user_tokens))
    write_text_atomic(out / "items.txt", "".join(f"{t}\n" for t in recommender.item_tokens))
    index_info = None
    if not index:
        (out / INDEX_FILE).unlink(missing_ok=True)  # an index of older vectors (--overwrite)
    else:
        import faiss

        data = faiss.serialize_index(faiss_index(items))
        atomic_write(out / INDEX_FILE, lambda f: f.write(np.asarray(data).tobytes()))
        index_info = {
            "file": INDEX_FILE,
            "type": "faiss.IndexFlatIP",
            "exact": True,
            "metric": "inner product (= the model's score)",
            "ids": "faiss id j is row j of items.npy / line j of items.txt",
        }
    config = recommender.config
    scoring = {
        "format": FORMAT,
        "version": VERSION,
        "metric": "dot",
        "score": "users[u] . items[i]; higher is better",
        "dims": int(users.shape[1]),
        "n_users": int(users.shape[0]),
        "n_items": int(items.shape[0]),
        "dtype": "float32",
        "model": str(config["model"]),
        "dataset": str(config["dataset"]),
        "checkpoint": str(Path(recommender.path).resolve()),
        "files": {
            "users": "users.npy",
            "items": "items.npy",
            "user_tokens": "users.txt",
            "item_tokens": "items.txt",
        },
        "rows": "row j of users.npy / items.npy is line j of users.txt / items.txt (padding excluded)",
        "exclusion": EXCLUSION,
        "index": index_info,
    }
    write_json_atomic(out / "scoring.json", scoring)
    return scoring
