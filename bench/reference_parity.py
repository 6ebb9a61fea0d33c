"""Reference parity: our baselines against their authors' code, same data, split, hyperparameters
and seeds, one thread each.

    OMP_NUM_THREADS=1 nice -n 19 python bench/reference_parity.py \\
        --mmrec /path/to/MMRec --smore /path/to/SMORE --mentor /path/to/MENTOR \\
        [--datasets movielens-mm scientific] [--models VBPR ... MENTOR] [--seeds 2020 2021 2022] \\
        [--epochs 300] [--work /tmp/rlmm-parity] [--out bench/parity] [--table-only] \\
        [--set cl_weight=0.001]      # a setting changed on both sides, stored and shown apart
        [--sides ours]               # train one side, read the other's stored runs (below)
        [--malloc jemalloc]          # the training processes' allocator (bench/malloc.py)

A reference path is a checkout or a bare git directory of the repository (``src/`` is copied out
of it; nothing is written into it). For each reference the script

1. copies ``src/`` into ``<work>/reference/<name>/`` and applies the fixes today's stack needs
   (:data:`FIXES`; only those that change a file are applied and listed), plus small stand-ins for
   torch_geometric and torch_scatter written with torch's own ops (:data:`SHIMS`);
2. exports each dataset in both formats from the same arrays: ours (RecBole atomic files, in
   ``<work>/data/``) and MMRec's (``<name>.inter`` with ``userID itemID x_label``,
   ``image_feat.npy``, ``text_feat.npy``, MENTOR's ``user_graph_dict.npy``, in
   ``<work>/ref-data/``). The split is the source dataset's. The references cannot read a
   missing modality (a zero feature row turns into NaN in their cosine similarities), so a row
   an item lacks is filled with the mean of the rows that exist, in both formats. A reference
   that cannot run with one modality (:data:`NEEDS_TWO_MODALITIES`) gets, on a text-only dataset,
   the text features as its image features too, and so do we (``parity-<name>-dup``);
3. trains, for every model and seed, the reference through ``bench/reference_driver.py`` (its
   own dataloaders, sampler, trainer and evaluator) and ours through ``recbole-rlmm compare``
   (RecBole's), with the hyperparameters of :data:`SETTINGS` and the same epochs, patience,
   batch size and learning rate on both sides. The reference's learning-rate decay is switched
   off (``learning_rate_scheduler: [1.0, 50]``; RecBole's trainer has none), and its test
   ranking masks validation items as RecBole's does (``--mmrec-test-mask`` keeps MMRec's);
4. prints and writes (``<out>/parity.md``, ``parity.json``) validation and test Recall@20 /
   NDCG@20 and seconds per training epoch side by side.

Every finished run is stored (``<out>/<side>/<dataset>/<model>-<seed>.json``); running the same
command again trains only what is missing or changed (a record matches while the settings, the
reference's commit and fixes, our model's file and ``--work`` are the same). The default ``--out``,
``bench/parity/``, is part of the repository: its records are committed, so ``--table-only``
tabulates them on any checkout and a later call trains only the seeds still missing.
``--sides reference`` and ``--sides ours`` in two calls with the same ``--work`` and ``--out``
train the two sides at the same time, one per core (a reference much slower than ours, such as
MENTOR's on movielens-mm, otherwise holds up our side); either call tabulates the seeds both
sides have stored.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from malloc import CHOICES as MALLOC_CHOICES  # noqa: E402
from malloc import malloc_env  # noqa: E402

from recbole_rlmm.data.io import atomic_write, save_npy_atomic, write_text_atomic  # noqa: E402
from recbole_rlmm.errors import UserError  # noqa: E402
from recbole_rlmm.experiment.common import parse_overrides  # noqa: E402

DRIVER = REPO / "bench" / "reference_driver.py"
MODELS = ["VBPR", "MMGCN", "LATTICE", "FREEDOM", "BM3", "MGCN", "LGMRec", "SMORE", "MENTOR"]
#: Which reference repository holds each model.
REFERENCE_OF = {m: "mmrec" for m in MODELS} | {"SMORE": "smore", "MENTOR": "mentor"}
#: Our module of each model (recbole_rlmm/model/<module>.py).
MODULE_OF = {m: m.lower() for m in MODELS}
#: References that fail with one modality (they use the image and the text branch unconditionally).
NEEDS_TWO_MODALITIES = {"MGCN", "SMORE", "LGMRec", "MENTOR"}
DEFAULT_SOURCES = {"movielens-mm": REPO / "dataset" / "movielens-mm", "scientific": Path("/tmp/rlmm-data/scientific")}


# ---------------------------------------------------------------------------- hyperparameters
@dataclass(frozen=True)
class Setting:
    """One model's hyperparameters: ours (our keys) and the reference's (its keys), the same values."""

    ours: dict[str, Any]
    reference: dict[str, Any]
    learning_rate: float = 0.001


#: The reference's published defaults (its yaml, the first value of a tuned grid, or the authors'
#: best values for Amazon Baby where they publish them), which are also our defaults except where
#: noted. The keys of our side are checked by our runner, the reference's by nothing: they are
#: the names its model reads.
SETTINGS: dict[str, Setting] = {
    "VBPR": Setting({"embedding_size": 64, "reg_weight": 0.01}, {"embedding_size": 64, "reg_weight": 0.01}),
    "MMGCN": Setting(
        # MMRec: 3 layers whatever n_layers says, 'False' (a true string) for concat, mean aggregation
        {"embedding_size": 64, "n_layers": 3, "dim_latent": 256, "concat": True, "aggr": "mean"},
        {"embedding_size": 64, "n_layers": 2, "reg_weight": 1e-5},
    ),
    "LATTICE": Setting(
        {"embedding_size": 64, "feat_embed_dim": 64, "knn_k": 10, "lambda_coeff": 0.9, "n_layers": 1, "n_ui_layers": 2, "reg_weight": 1e-5},
        {"embedding_size": 64, "feat_embed_dim": 64, "knn_k": 10, "lambda_coeff": 0.9, "n_layers": 1, "weight_size": [64, 64],
         "cf_model": "lightgcn", "mess_dropout": [0.1, 0.1], "reg_weight": 1e-5},
    ),
    "FREEDOM": Setting(
        {"embedding_size": 64, "knn_k": 10, "mm_image_weight": 0.1, "n_mm_layers": 1, "n_ui_layers": 2, "dropout": 0.8, "reg_weight": 1e-4},
        {"embedding_size": 64, "feat_embed_dim": 64, "knn_k": 10, "mm_image_weight": 0.1, "n_mm_layers": 1, "n_ui_layers": 2,
         "dropout": 0.8, "reg_weight": 1e-4, "lambda_coeff": 0.9, "weight_size": [64, 64]},
    ),
    "BM3": Setting(
        {"embedding_size": 64, "n_layers": 1, "dropout": 0.3, "reg_weight": 0.1, "cl_weight": 2.0},
        {"embedding_size": 64, "feat_embed_dim": 64, "n_layers": 1, "dropout": 0.3, "reg_weight": 0.1, "cl_weight": 2.0,
         "use_neg_sampling": False},
    ),
    "MGCN": Setting(
        {"embedding_size": 64, "knn_k": 10, "n_layers": 1, "n_ui_layers": 2, "reg_weight": 1e-4, "cl_weight": 0.001},
        {"embedding_size": 64, "knn_k": 10, "n_layers": 1, "n_ui_layers": 2, "reg_weight": 1e-4, "cl_loss": 0.001, "lambda_coeff": 0.9},
    ),
    "LGMRec": Setting(
        {"embedding_size": 64, "n_ui_layers": 2, "n_mm_layers": 2, "n_hyper_layer": 1, "hyper_num": 4, "keep_rate": 0.5,
         "alpha": 0.3, "cl_weight": 1e-4, "reg_weight": 1e-6},
        {"embedding_size": 64, "feat_embed_dim": 64, "cf_model": "lightgcn", "n_ui_layers": 2, "n_mm_layers": 2, "n_hyper_layer": 1,
         "hyper_num": 4, "keep_rate": 0.5, "alpha": 0.3, "cl_weight": 1e-4, "reg_weight": 1e-6},
    ),
    "SMORE": Setting(
        {"embedding_size": 64, "image_knn_k": 40, "text_knn_k": 15, "n_layers": 1, "n_ui_layers": 4, "reg_weight": 1e-4,
         "cl_weight": 0.01, "dropout": 0.1},
        {"embedding_size": 64, "image_knn_k": 40, "text_knn_k": 15, "n_layers": 1, "n_ui_layers": 4, "reg_weight": 1e-4,
         "cl_loss": 0.01, "dropout_rate": 0.1, "lambda_coeff": 0.9},
    ),
    "MENTOR": Setting(
        {"embedding_size": 64, "knn_k": 10, "mm_image_weight": 0.1, "n_mm_layers": 1, "n_ui_layers": 2, "reg_weight": 0.001,
         "align_weight": 0.1, "mask_weight_g": 0.0001, "temp": 0.2},
        {"embedding_size": 64, "feat_embed_dim": 64, "knn_k": 10, "mm_image_weight": 0.1, "n_mm_layers": 1, "n_layers": 2,
         "reg_weight": 0.001, "dropout": 0.5, "mask_weight_f": 1.5, "mask_weight_g": 0.0001, "align_weight": 0.1, "temp": 0.2},
        learning_rate=0.0001,
    ),
}


#: Our key -> the reference's name for the same hyperparameter, where the two differ.
REFERENCE_KEY: dict[str, dict[str, str]] = {
    "MGCN": {"cl_weight": "cl_loss"},
    "SMORE": {"cl_weight": "cl_loss", "dropout": "dropout_rate"},
    "MENTOR": {"n_ui_layers": "n_layers"},
}


def with_overrides(model: str, overrides: dict[str, Any]) -> Setting:
    """``model``'s setting with ``overrides`` (our key names) applied to both sides.

    A key must be one of the model's settings (or ``learning_rate``): a run that changes what
    one side does not read would compare two different models."""
    setting = SETTINGS[model]
    ours, reference, learning_rate = dict(setting.ours), dict(setting.reference), setting.learning_rate
    for key, value in overrides.items():
        if key == "learning_rate":
            learning_rate = float(value)
            continue
        theirs = REFERENCE_KEY.get(model, {}).get(key, key)
        if key not in ours or theirs not in reference:
            known = ", ".join(sorted([*ours, "learning_rate"]))
            raise SystemExit(f"--set {key}={value}: {model} has no setting {key!r} on both sides; use one of {known}")
        ours[key] = reference[theirs] = value
    return Setting(ours, reference, learning_rate)


def override_label(overrides: dict[str, Any]) -> str:
    """The suffix that names a run with overrides (``''`` for the published setting)."""
    return "".join(f"+{k}={v}" for k, v in sorted(overrides.items()))


# ---------------------------------------------------------------------------- reference fixes
@dataclass(frozen=True)
class Fix:
    """A textual fix of the reference for today's numpy / scipy / torch, or for a CPU."""

    reason: str
    pattern: str
    replacement: str
    files: str = "*.py"


FIXES: tuple[Fix, ...] = (
    Fix("numpy 1.24 removed the np.float alias", r"\bnp\.float\b(?!\d|_)", "float"),
    Fix("scipy 1.12 removed dok_matrix._update (the dict is now dok_matrix._dict)", r"\bA\._update\(data_dict\)", "A._dict.update(data_dict)"),
    Fix("CPU run: .cuda() on the frozen item graphs", r"(_adj|adj) = (\w+)\.cuda\(\)", r"\1 = \2.to(self.device)"),
    Fix("CPU run: .cuda() on MENTOR's perturbation noise", r"torch\.rand_like\(h\)\.cuda\(\)", "torch.rand_like(h).to(self.device)"),
    Fix(
        "CPU run: MENTOR's result_embed* are nn.Parameter(...).to(device), a plain tensor on a GPU but the Parameter "
        "itself on a CPU, where forward() cannot assign to them: made the plain tensor a GPU gives (same draws)",
        r"(self\.result_embed\w* = )nn\.Parameter\(\s*(nn\.init\.xavier_normal_\(torch\.tensor\(np\.random\.randn\(num_user \+ num_item, dim_x\)\)\))\)\.to\(self\.device\)",
        r"\1\2.to(self.device)",
    ),
    Fix(
        "unused imports of raw-feature helpers (torchvision, lmdb) in the dataset module",
        r"\nfrom (utils|utils_package)\.data_utils import \([^)]*\)\nimport lmdb\n",
        "\n",
        "dataset.py",
    ),
)

#: Stand-ins for the parts of torch_scatter and torch_geometric the references import, in torch.
SHIMS: dict[str, str] = {
    "torch_scatter.py": '''"""scatter_add in torch (stand-in for torch_scatter, written by bench/reference_parity.py)."""
import torch


def scatter_add(src, index, dim=-1, out=None, dim_size=None):
    assert dim in (0, -1) and src.dim() == 1
    size = int(index.max()) + 1 if dim_size is None else dim_size
    return torch.zeros(size, dtype=src.dtype, device=src.device).index_add(0, index, src)
''',
    "torch_geometric/__init__.py": '''"""The parts of torch_geometric MMGCN and MENTOR use, in torch (written by bench/reference_parity.py)."""
from torch_geometric import nn, utils  # noqa: F401
''',
    "torch_geometric/nn/__init__.py": "from torch_geometric.nn import conv, inits  # noqa: F401\n",
    "torch_geometric/nn/inits.py": '''import math


def uniform(size, value):
    if value is not None:
        bound = 1.0 / math.sqrt(size)
        value.data.uniform_(-bound, bound)
''',
    "torch_geometric/nn/conv.py": '''"""MessagePassing with source_to_target flow: x_j = x[edge_index[0]], summed (add) or averaged
(mean) at edge_index[1]; message() gets x_j / x_i, edge_index and size by name, as in PyG, which
also gathers with index_select (bench/shim_parity.py checks the two agree)."""
import inspect

import torch


class MessagePassing(torch.nn.Module):
    def __init__(self, aggr="add", flow="source_to_target", node_dim=-2, **kwargs):
        super().__init__()
        assert aggr in ("add", "mean") and flow == "source_to_target"
        self.aggr = aggr

    def propagate(self, edge_index, size=None, **kwargs):
        x = kwargs["x"]
        n_out = size[1] if size is not None else x.size(0)
        args = {}
        for name in inspect.signature(self.message).parameters:
            if name.endswith("_j"):
                args[name] = kwargs[name[:-2]].index_select(0, edge_index[0])
            elif name.endswith("_i"):
                args[name] = kwargs[name[:-2]].index_select(0, edge_index[1])
            elif name == "edge_index":
                args[name] = edge_index
            elif name == "size":
                args[name] = size if size is not None else (x.size(0), x.size(0))
            else:
                args[name] = kwargs[name]
        msg = self.message(**args)
        out = msg.new_zeros((n_out, *msg.shape[1:])).index_add(0, edge_index[1], msg)
        if self.aggr == "mean":
            count = torch.zeros(n_out, dtype=msg.dtype, device=msg.device).index_add(
                0, edge_index[1], torch.ones(edge_index.shape[1], dtype=msg.dtype, device=msg.device))
            out = out / count.clamp(min=1).view(-1, *([1] * (msg.dim() - 1)))
        return self.update(out)

    def message(self, x_j):
        return x_j

    def update(self, aggr_out):
        return aggr_out
''',
    "torch_geometric/utils.py": '''import torch


def remove_self_loops(edge_index, edge_attr=None):
    keep = edge_index[0] != edge_index[1]
    return edge_index[:, keep], None if edge_attr is None else edge_attr[keep]


def add_self_loops(edge_index, edge_attr=None, num_nodes=None, **kwargs):
    n = int(edge_index.max()) + 1 if num_nodes is None else num_nodes
    loop = torch.arange(n, device=edge_index.device).repeat(2, 1)
    return torch.cat([edge_index, loop], dim=1), edge_attr


def degree(index, num_nodes=None, dtype=None):
    n = int(index.max()) + 1 if num_nodes is None else num_nodes
    return torch.zeros(n, dtype=dtype, device=index.device).index_add(
        0, index, torch.ones(index.numel(), dtype=dtype, device=index.device))
''',
}


#: Why each stand-in: bench/shim_parity.py checks them against torch_geometric itself.
STAND_IN_REASON = {
    "torch_scatter": "torch_scatter is a C++ extension, on PyPI as source only: a stand-in in torch (torch_scatter.py)",
    "torch_geometric": "torch_geometric is not a dependency of ours: a stand-in in torch (torch_geometric/), "
                       "bit-identical to torch_geometric 2.8.1 on these layers (bench/shim_parity.py)",
}


@dataclass
class Reference:
    name: str
    src: Path  # the fixed copy of src/
    commit: str
    applied: list[str]  # the fixes that changed a file, with the files


def git_commit(path: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git repository)"


def copy_source(path: Path, dest: Path) -> None:
    """``path/src`` (a checkout) or ``src`` of HEAD (a bare git directory) into ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    if (path / "src").is_dir():
        shutil.copytree(path / "src", dest)
        return
    archive = subprocess.run(["git", "-C", str(path), "archive", "HEAD", "src"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(dest.parent / "_archive", filter="data")
    shutil.move(str(dest.parent / "_archive" / "src"), dest)
    shutil.rmtree(dest.parent / "_archive")


def prepare_reference(name: str, path: Path, work: Path) -> Reference:
    """A fixed copy of the reference's ``src/`` (see :data:`FIXES`, :data:`SHIMS`)."""
    src = work / "reference" / name / "src"
    copy_source(path, src)
    applied = []
    for fix in FIXES:
        changed = []
        for file in sorted(src.rglob(fix.files)):
            text = file.read_text(encoding="utf-8")
            new = re.sub(fix.pattern, fix.replacement, text)
            if new != text:
                file.write_text(new, encoding="utf-8")
                changed.append(str(file.relative_to(src)))
        if changed:
            applied.append(f"{fix.reason}: {', '.join(changed)}")
    imports = "\n".join(f.read_text(encoding="utf-8") for f in src.rglob("*.py"))
    for module, needed in (("torch_scatter", "torch_scatter"), ("torch_geometric", "torch_geometric")):
        if needed in imports:
            for rel, text in SHIMS.items():
                if rel.split("/")[0].removesuffix(".py") == module:
                    (src / rel).parent.mkdir(parents=True, exist_ok=True)
                    (src / rel).write_text(text, encoding="utf-8")
            applied.append(STAND_IN_REASON[module])
    return Reference(name, src, git_commit(path), applied)


# ---------------------------------------------------------------------------- datasets
@dataclass
class Export:
    name: str  # the parity dataset's name, the same in both formats
    source: str
    filled: dict[str, int]  # modality -> rows filled with the mean row
    duplicated: bool  # image := text
    users: int
    items: int


def _read_inter(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", dtype=str)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame[["user_id", "item_id"]]


def export(source: Path, name: str, work: Path, duplicate: bool) -> Export:
    """Write ``<work>/data/<name>/`` (ours) and ``<work>/ref-data/<name>/`` (MMRec's) from
    ``source`` (one of our dataset folders), each file atomically: a run that starts while
    another call exports (``--sides``) reads whole files."""
    base = source.name
    config = yaml.safe_load((source / f"{base}.yaml").read_text())
    splits = {s: _read_inter(source / f"{base}.{s}.inter") for s in ("train", "valid", "test")}
    index = [line.strip() for line in (source / f"{base}.item_index").read_text().splitlines() if line.strip()]
    features = {m: np.load(source / f, allow_pickle=False).astype(np.float32) for m, f in config["modalities"].items()}
    used = set().union(*(set(df["item_id"]) for df in splits.values()))
    keep = [k for k, token in enumerate(index) if token in used]  # items without interactions are left out
    items = [index[k] for k in keep]
    filled = {}
    for m, x in features.items():
        x = x[keep]
        missing = ~np.abs(x).sum(axis=1).astype(bool)
        x[missing] = x[~missing].mean(axis=0)
        features[m], filled[m] = x, int(missing.sum())
    if duplicate:
        features = {"image": features["text"], "text": features["text"]}

    ours = work / "data" / name
    ours.mkdir(parents=True, exist_ok=True)
    for split, df in splits.items():
        write_text_atomic(ours / f"{name}.{split}.inter", df.to_csv(sep="\t", index=False, header=["user_id:token", "item_id:token"]))
    write_text_atomic(ours / f"{name}.item_index", "\n".join(items) + "\n")
    for m, x in features.items():
        save_npy_atomic(ours / f"{name}.{m}.npy", x)
    write_text_atomic(ours / f"{name}.yaml", yaml.safe_dump({
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "load_col": {"inter": ["user_id", "item_id"]},
        "benchmark_filename": ["train", "valid", "test"], "modalities": {m: f"{name}.{m}.npy" for m in features},
    }, sort_keys=False))

    ref = work / "ref-data" / name
    ref.mkdir(parents=True, exist_ok=True)
    users = sorted(set().union(*(set(df["user_id"]) for df in splits.values())))
    uid = {u: k for k, u in enumerate(users)}
    iid = {t: k for k, t in enumerate(items)}
    rows = [
        pd.DataFrame({"userID": df["user_id"].map(uid), "itemID": df["item_id"].map(iid), "x_label": label})
        for label, df in enumerate(splits.values())
    ]
    write_text_atomic(ref / f"{name}.inter", pd.concat(rows).to_csv(sep="\t", index=False))
    for m, file in (("image", "image_feat.npy"), ("text", "text_feat.npy")):
        if m in features:
            save_npy_atomic(ref / file, features[m])
        elif (ref / file).exists():
            (ref / file).unlink()
    graph = user_graph_dict(rows[0], len(users))  # a dict: MENTOR reads it with allow_pickle
    atomic_write(ref / "user_graph_dict.npy", lambda f: np.save(f, graph, allow_pickle=True))
    return Export(name, base, filled, duplicate, len(users), len(items))


def user_graph_dict(train: pd.DataFrame, n_users: int, most: int = 200) -> dict[int, list[list[float]]]:
    """MENTOR's ``user_graph_dict.npy`` as its preprocessing (dualgnn-gen-u-u-matrix.py) writes it:
    each user's ``most`` users with the most training items in common, and those counts. MENTOR
    loads it and samples from it every epoch, but its scores never use it."""
    r = np.zeros((n_users, int(train["itemID"].max()) + 1), dtype=np.float32)
    r[train["userID"].to_numpy(), train["itemID"].to_numpy()] = 1.0
    common = r @ r.T
    np.fill_diagonal(common, 0.0)
    out = {}
    for u in range(n_users):
        nonzero = int((common[u] > 0).sum())
        order = np.argsort(-common[u], kind="stable")[: min(nonzero, most)]
        out[u] = [order.tolist(), common[u][order].tolist()]
    return out


# ---------------------------------------------------------------------------- runs
def training(setting: Setting, epochs: int, stopping_step: int) -> dict[str, Any]:
    return {
        "epochs": epochs, "stopping_step": stopping_step, "train_batch_size": 2048, "learning_rate": setting.learning_rate,
        "eval_batch_size": 4096, "valid_metric": "Recall@20", "metrics": ["Recall", "NDCG"], "topk": [10, 20],
    }


def reference_config(model: str, export_: Export, work: Path, seed: int, epochs: int, stopping_step: int,
                     overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    setting = with_overrides(model, overrides or {})
    return {
        **setting.reference, **training(setting, epochs, stopping_step),
        "seed": seed, "hyper_parameters": ["seed"], "learning_rate_scheduler": [1.0, 50],
        "use_gpu": False, "gpu_id": 0, "save_recommended_topk": False, "state": "WARNING",
        "data_path": str(work / "ref-data") + "/", "inter_file_name": f"{export_.name}.inter",
        "USER_ID_FIELD": "userID", "ITEM_ID_FIELD": "itemID", "inter_splitting_label": "x_label", "field_separator": "\t",
        "filter_out_cod_start_users": True, "vision_feature_file": "image_feat.npy", "text_feature_file": "text_feat.npy",
        "user_graph_dict_file": "user_graph_dict.npy",
    }


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def our_config(model: str, work: Path, seed: int, epochs: int, stopping_step: int,
               overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    setting = with_overrides(model, overrides or {})
    return {
        **setting.ours, **training(setting, epochs, stopping_step), "seed": seed, "data_path": str(work / "data"),
        "log_dir": None, "tensorboard_dir": None, "state": "WARNING", "show_progress": False,
    }


def run(side: str, model: str, export_: Export, seed: int, args: argparse.Namespace, ref: Reference | None = None) -> dict[str, Any]:
    """One training run of ``side`` (``reference`` or ``ours``), stored under ``<out>/<side>/``
    and reused while its settings and code are unchanged; a side not in ``args.sides`` (none with
    ``--table-only``) is read as stored, FileNotFoundError if it is not."""
    record = args.out / side / export_.name / f"{model}{override_label(args.overrides)}-{seed}.json"
    if side not in args.sides:
        if not record.is_file():
            raise FileNotFoundError(record)
        return json.loads(record.read_text())
    if side == "reference":
        config = reference_config(model, export_, args.work, seed, args.epochs, args.stopping_step, args.overrides)
        key = fingerprint(config, ref.commit, ref.applied, args.mmrec_test_mask, DRIVER.read_text())
        cwd, extra, commit = ref.src, ["--mmrec-test-mask"] if args.mmrec_test_mask else [], ref.commit
        for cache in (args.work / "ref-data" / export_.name).glob("*.pt"):
            cache.unlink()  # the references cache their item graphs there; always build them afresh
    else:
        config = our_config(model, args.work, seed, args.epochs, args.stopping_step, args.overrides)
        code = (REPO / "recbole_rlmm" / "model" / f"{MODULE_OF[model]}.py").read_text()
        key = fingerprint(config, code, DRIVER.read_text())
        cwd, extra, commit = REPO, ["--ours"], git_commit(REPO)
    if record.is_file():
        stored = json.loads(record.read_text())
        if stored.get("fingerprint") == key:
            return stored
    run_dir = args.work / "runs" / side / f"{export_.name}-{model}{override_label(args.overrides)}-{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    cmd = [sys.executable, str(DRIVER), "--model", model, "--dataset", export_.name,
           "--config", str(run_dir / "config.json"), "--out", str(run_dir / "result.json"), *extra]
    print(f"  {side} {model} seed {seed} ...", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", **args.malloc_env}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    (run_dir / "log.txt").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{side} {model} seed {seed} failed; its output is in {run_dir / 'log.txt'}:\n{done.stderr[-3000:]}")
    result = json.loads((run_dir / "result.json").read_text())
    stored = {"fingerprint": key, "model": model, "seed": seed, "dataset": export_.name, "commit": commit,
              "malloc": args.malloc, **result}
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(stored, indent=1))
    return stored


# ---------------------------------------------------------------------------- table
def _stats(values: list[float]) -> tuple[float, float, float]:
    """mean, sample std (0 for one value), range."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, max(values) - min(values)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| dataset | model | seeds | valid R@20 ref / ours | test R@20 ref / ours | test N@20 ref / ours | "
        "test R@20 gap | seed spread | CPU s/epoch ref / ours | best epoch of epochs run, ref / ours |",
        "|---|---|---:|---|---|---|---:|---:|---|---|",
    ]
    for r in rows:
        ref, ours = r["reference"], r["ours"]

        def pair(split: str, metric: str, ref: list = ref, ours: list = ours) -> str:
            a, sa, _ = _stats([x[split][metric] for x in ref])
            b, sb, _ = _stats([x[split][metric] for x in ours])
            return f"{a:.4f} ± {sa:.4f} / {b:.4f} ± {sb:.4f}" if len(ref) > 1 else f"{a:.4f} / {b:.4f}"

        ref_test = [x["test"]["recall@20"] for x in ref]
        our_test = [x["test"]["recall@20"] for x in ours]
        gap = statistics.fmean(our_test) / statistics.fmean(ref_test) - 1.0
        spread = max(_stats(ref_test)[2], _stats(our_test)[2]) / statistics.fmean(ref_test)
        within = "n/a" if len(ref) < 2 else ("within" if abs(gap) <= spread else "**outside**")
        cpu = "train_cpu_seconds_per_epoch"
        seconds = f"{statistics.fmean(x[cpu] for x in ref):.2f} / {statistics.fmean(x[cpu] for x in ours):.2f}"
        allocators = [sorted({x.get("malloc", "default") for x in side}) for side in (ref, ours)]
        if allocators != [["default"], ["default"]]:  # CPU time depends on the allocator (bench/malloc.py)
            seconds += f" (malloc {', '.join(allocators[0])} / {', '.join(allocators[1])})"
        epochs = (f"{'/'.join(str(x['best_epoch']) for x in ref)} of {'/'.join(str(x['epochs_run']) for x in ref)} / "
                  f"{'/'.join(str(x['best_epoch']) for x in ours)} of {'/'.join(str(x['epochs_run']) for x in ours)}")
        lines.append(
            f"| {r['dataset']} | {r['model']} | {len(ref)} | {pair('valid', 'recall@20')} | {pair('test', 'recall@20')} | "
            f"{pair('test', 'ndcg@20')} | {gap:+.1%} | {spread:.1%} ({within}) | {seconds} | {epochs} |"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--mmrec", type=Path, help="MMRec (enoche/MMRec): VBPR, MMGCN, LATTICE, FREEDOM, BM3, MGCN, LGMRec (and SMORE without --smore)")
    parser.add_argument("--smore", type=Path, help="SMORE (kennethorq/SMORE)")
    parser.add_argument("--mentor", type=Path, help="MENTOR (Jinfeng-Xu/MENTOR)")
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_SOURCES))
    parser.add_argument("--source", nargs="*", default=[], metavar="NAME=FOLDER", help="where a dataset's atomic files are")
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--stopping-step", type=int, default=20)
    parser.add_argument("--work", type=Path, default=Path("/tmp/rlmm-parity"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "parity")
    parser.add_argument("--mmrec-test-mask", action="store_true", help="the reference's test ranking masks training items only (MMRec's protocol)")
    parser.add_argument("--table-only", action="store_true", help="tabulate the stored runs; train nothing")
    parser.add_argument("--malloc", choices=MALLOC_CHOICES, default="default",
                        help="the training processes' allocator (bench/malloc.py): changes CPU seconds, not metrics, so a "
                             "stored run is reused whatever its allocator; the table names the allocators of each side")
    parser.add_argument("--sides", nargs="+", choices=("reference", "ours"), default=["reference", "ours"],
                        help="train these sides only and read the other's stored runs: two calls with the same "
                             "--work and --out, one per side, train the two sides at the same time")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="change a hyperparameter of the models' settings on both sides (our key names; the "
                             "reference's name is mapped), e.g. --set cl_weight=0.001; stored and shown apart")
    args = parser.parse_args(argv)
    try:
        args.overrides = parse_overrides(args.overrides)
    except UserError as exc:
        parser.error(f"--set: {exc}")
    for model in args.models:
        with_overrides(model, args.overrides)  # a key a model lacks is an error before any run
    args.malloc_env = malloc_env(args.malloc, "bench/reference_parity.py")  # once; a missing jemalloc is an error before any run
    args.work, args.out = args.work.resolve(), args.out.resolve()
    if args.table_only:
        args.sides = []  # train neither side
    sources = DEFAULT_SOURCES | {k: Path(v) for k, v in (s.split("=", 1) for s in args.source)}
    paths = {"mmrec": args.mmrec, "smore": args.smore or args.mmrec, "mentor": args.mentor}

    references: dict[str, Reference] = {}
    for name in sorted({REFERENCE_OF[m] for m in args.models} if "reference" in args.sides else ()):
        if paths[name] is None:
            parser.error(f"--{name} is needed for {', '.join(m for m in args.models if REFERENCE_OF[m] == name)}")
        references[name] = prepare_reference(name, paths[name], args.work)
        print(f"reference {name}: {paths[name]} at {references[name].commit}; fixes applied to the copy in {references[name].src}:")
        for line in references[name].applied:
            print(f"  - {line}")

    rows, exports = [], {}
    for dataset in args.datasets:
        source = sources[dataset]
        mono = len(yaml.safe_load((source / f"{source.name}.yaml").read_text())["modalities"]) == 1
        for model in args.models:
            duplicate = mono and model in NEEDS_TWO_MODALITIES
            name = f"parity-{dataset}" + ("-dup" if duplicate else "")
            if name not in exports:
                exports[name] = export(source, name, args.work, duplicate)
                e = exports[name]
                print(f"dataset {name}: {e.users} users, {e.items} items; rows filled with the mean row: {e.filled}"
                      + ("; image features = text features" if duplicate else ""))
            if not args.table_only:
                print(f"{dataset} / {model}", flush=True)
            ref_runs, our_runs = [], []
            for seed in args.seeds:  # the two sides one after the other, seed by seed
                pair = []
                for side in ("reference", "ours"):
                    # a side read as stored (--table-only, --sides) that is not stored: no pair
                    with contextlib.suppress(FileNotFoundError):
                        pair.append(run(side, model, exports[name], seed, args, references.get(REFERENCE_OF[model])))
                if len(pair) == 2:  # the table compares seeds that both sides ran
                    ref_runs.append(pair[0])
                    our_runs.append(pair[1])
            if not ref_runs:
                continue
            label = model + (f" ({', '.join(f'{k}={v}' for k, v in sorted(args.overrides.items()))})" if args.overrides else "")
            rows.append({"dataset": name, "model": label, "reference": ref_runs, "ours": our_runs})
            args.out.mkdir(parents=True, exist_ok=True)
            text = table(rows)
            (args.out / "parity.md").write_text(text)
            (args.out / "parity.json").write_text(json.dumps(rows, indent=1))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
