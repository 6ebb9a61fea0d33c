"""One step of plain RecBole 1.2.1, run in a fresh process, with or without ``import recbole_rlmm``.

    python tests/guest_probe.py MODE SCENARIO [ARG]     (run in the folder that holds dataset/)

MODE is ``plain`` (RecBole alone: this script never imports recbole_rlmm then) or ``guest``
(``import recbole_rlmm`` first, as a user's script would). The last line printed is a JSON
object: the scenario's outcome, or ``{"error": "<type>: <message>"}`` where RecBole fails.
``tests/test_guest.py`` compares the two modes; ``noxfile.py`` runs that on today's stack and
on an older one, and runs the ``load`` scenario once more after ``pip uninstall recbole-rlmm``.

Scenarios (RecBole's own code throughout; ``recbole.quick_start`` is imported with a stand-in
for ray where ray 2.6.3 cannot be imported, which touches none of the functions used here):

* ``train MODEL``: ``recbole.quick_start.run_recbole`` on the generated ``guest`` dataset (item
  fields ``genre:token_seq`` and ``price:float`` loaded), saving the best model; the result,
  the checkpoint's path and what the checkpoint file holds.
* ``load CHECKPOINT``: RecBole's ``load_data_and_model`` and ``full_sort_topk`` for 30 users.
* ``evaluate MODEL CHECKPOINT``: a user's script building RecBole's pipeline, then
  ``trainer.evaluate(test_data, model_file=CHECKPOINT)``.
* ``rlmm_run_recbole MODEL``: ``recbole_rlmm.run_recbole`` (guest mode only).
* ``ml100k``: RecBole's ``Config`` and ``create_dataset`` for ``ml-100k``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import types
import zipfile
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

#: RecBole's settings for the generated dataset (dataset/guest in the working folder).
CONFIG: dict[str, Any] = {
    "data_path": "dataset",
    "checkpoint_dir": "saved",
    "load_col": {"inter": ["user_id", "item_id"], "item": ["item_id", "genre", "price"]},
    "epochs": 3,
    "train_batch_size": 512,
    "eval_batch_size": 4096,
    "metrics": ["Recall", "NDCG"],
    "topk": [5, 10],
    "valid_metric": "Recall@10",
    "metric_decimal_place": 12,
    "seed": 2020,
    "reproducibility": True,
    "show_progress": False,
    "state": "ERROR",
    "log_wandb": False,
}


def write_dataset(root: str, users: int = 200, items: int = 100, seed: int = 0) -> None:
    """``<root>/guest/guest.inter`` and ``guest.item``: 200 users, 100 items, genres as a
    ``token_seq`` (some items without any), prices as a ``float`` (some missing)."""
    import random

    rng = random.Random(seed)
    folder = os.path.join(root, "guest")
    os.makedirs(folder, exist_ok=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for u in range(users):
        for i in rng.sample(range(items), rng.randint(8, 20)):
            lines.append(f"u{u}\ti{i}\t{rng.randint(1, 10**6)}")
    with open(os.path.join(folder, "guest.inter"), "w") as f:
        f.write("\n".join(lines) + "\n")
    genres = ["action", "comedy", "drama", "horror", "kids", "noir"]
    lines = ["item_id:token\tgenre:token_seq\tprice:float"]
    for i in range(items):
        genre = " ".join(rng.sample(genres, rng.randint(0, 3)))
        price = "" if i % 17 == 0 else f"{rng.uniform(1, 50):.2f}"
        lines.append(f"i{i}\t{genre}\t{price}")
    with open(os.path.join(folder, "guest.item"), "w") as f:
        f.write("\n".join(lines) + "\n")


def write_ml100k(root: str, rows: int = 1000) -> None:
    """A user's own ``<root>/ml-100k`` folder of 1,000 interactions."""
    folder = os.path.join(root, "ml-100k")
    os.makedirs(folder, exist_ok=True)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{r % 90 + 1}\t{r % 70 + 1}\t{r % 5 + 1}\t{880000000 + r}" for r in range(rows)]
    with open(os.path.join(folder, "ml-100k.inter"), "w") as f:
        f.write("\n".join(lines) + "\n")


def recbole_quick_start() -> types.ModuleType:
    """RecBole's own ``recbole.quick_start``; where ray 2.6.3 cannot be imported (numpy 2), with a
    stand-in for ``ray.tune`` (used only by ``objective_function``, which no scenario calls)."""
    try:
        import recbole.quick_start as quick_start

        return quick_start
    except Exception:  # noqa: BLE001 - ray fails on a current stack
        for name in [n for n in sys.modules if n == "ray" or n.startswith(("ray.", "recbole.quick_start"))]:
            del sys.modules[name]
        ray = types.ModuleType("ray")
        ray.tune = types.ModuleType("ray.tune")  # type: ignore[attr-defined]
        sys.modules["ray"], sys.modules["ray.tune"] = ray, ray.tune  # type: ignore[attr-defined]
        import recbole.quick_start as quick_start

        return quick_start


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def checkpoint_contents(path: str) -> dict[str, Any]:
    """What a checkpoint file holds without loading it: its pickled globals (module names)."""
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    import pickletools

    modules = set()
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("GLOBAL", "STACK_GLOBAL") and isinstance(arg, str):
            modules.add(arg.split(" ")[0])
        elif opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE") and isinstance(arg, str) and "." in arg:
            modules.add(arg)
    return {
        "recbole_config": any(m.startswith("recbole.config") for m in modules),
        "mentions_recbole_rlmm": b"recbole_rlmm" in data or b"recbole-rlmm" in data,
    }


def train(model: str) -> dict[str, Any]:
    quick_start = recbole_quick_start()
    before = set(os.listdir("saved")) if os.path.isdir("saved") else set()
    result = quick_start.run_recbole(model=model, dataset="guest", config_dict=dict(CONFIG), saved=True)
    new = sorted(set(os.listdir("saved")) - before)
    checkpoint = os.path.abspath(os.path.join("saved", new[-1]))
    return {"result": _plain(result), "checkpoint": checkpoint, "contents": checkpoint_contents(checkpoint)}


def load(checkpoint: str) -> dict[str, Any]:
    import torch
    from recbole.utils.case_study import full_sort_topk

    quick_start = recbole_quick_start()
    config, model, dataset, _, _, test_data = quick_start.load_data_and_model(model_file=checkpoint)
    users = [f"u{u}" for u in range(30)]
    uid = dataset.token2id(dataset.uid_field, users)
    scores, items = full_sort_topk(uid, model, test_data, k=10, device=config["device"])
    tokens = dataset.id2token(dataset.iid_field, items.cpu())
    return {
        "config_class": f"{type(config).__module__}.{type(config).__name__}",
        "topk": [list(map(str, row)) for row in tokens],
        "scores": [[round(float(s), 5) for s in row] for row in scores.cpu()],
        "n_inter": int(dataset.inter_num),
        "torch": torch.__version__,
    }


def evaluate(model: str, checkpoint: str) -> dict[str, Any]:
    """A user's script that builds RecBole's pipeline and evaluates a saved model."""
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    config = Config(model=model, dataset="guest", config_dict=dict(CONFIG))
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, _, test_data = data_preparation(config, dataset)
    net = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
    return {"test_result": _plain(trainer.evaluate(test_data, load_best_model=True, model_file=checkpoint))}


def rlmm_run_recbole(model: str) -> dict[str, Any]:
    import recbole_rlmm

    result = recbole_rlmm.run_recbole(model=model, dataset="guest", config_dict=dict(CONFIG), saved=True)
    return {"result": _plain(result)}


def ml100k() -> dict[str, Any]:
    from recbole.config import Config
    from recbole.data import create_dataset

    config = Config(model="BPR", dataset="ml-100k", config_dict={"state": "ERROR", "data_path": "dataset"})
    dataset = create_dataset(config)
    return {"data_path": os.path.normpath(config["data_path"]), "n_inter": int(dataset.inter_num)}


SCENARIOS = {"train": train, "load": load, "evaluate": evaluate, "rlmm_run_recbole": rlmm_run_recbole, "ml100k": ml100k}


def main(argv: list[str]) -> int:
    mode, scenario, *args = argv
    if mode == "guest":
        import recbole_rlmm  # noqa: F401  (the import under test)
    elif mode != "plain":
        raise SystemExit(f"mode must be plain or guest, not {mode!r}")
    import warnings

    warnings.filterwarnings("ignore")
    try:
        out = SCENARIOS[scenario](*args)
    except Exception as exc:  # noqa: BLE001 - the outcome is reported, not raised
        last = traceback.extract_tb(exc.__traceback__)[-1]
        out = {"error": f"{type(exc).__name__}: {str(exc)[:300]}", "where": f"{last.filename}:{last.lineno}"}
    out["imported_recbole_rlmm"] = "recbole_rlmm" in sys.modules
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
