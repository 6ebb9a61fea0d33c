"""Full-ranking evaluation time with RecBole's evaluation collector as released and as patched
by ``recbole_rlmm.compat`` (``_linear_collector``), at RecBole's default ``eval_batch_size``
(4096 scores: one user per batch beyond 4,096 items) and at 2**24 scores per batch.

    python bench/eval_collector.py                # movielens-mm and amazon (~6 min on 2 cores)
    python bench/eval_collector.py --sizes elec   # Elec size: not run by us; at 4096 the released
                                                  # collector copies ~100x amazon's rows (hours)

For each size (the sizes of ``bench/perf.py``, same data) the script builds RecBole's LightGCN
once (untrained: evaluation costs the same whatever the weights) and evaluates the validation
split four times, dropping the model's cached vectors before each, so each time includes the
forward pass. It prints seconds, the ratio stock / patched, and checks that the four metric
dictionaries are identical (exit status 1 when not). One thread (``--threads``).
"""

from __future__ import annotations

# RecBole's collector as released, captured before recbole_rlmm patches it
from recbole.evaluator import collector as _collector  # isort: skip


def installed() -> dict:
    """The collector methods in place now."""
    return {
        "update_tensor": _collector.DataStruct.update_tensor,
        "__getitem__": _collector.DataStruct.__getitem__,
        "get_data_struct": _collector.Collector.get_data_struct,
    }


STOCK = installed()

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf  # noqa: E402  (sizes and their data)

from recbole_rlmm import compat  # noqa: E402

compat.apply()
PATCHED = installed()
assert PATCHED["update_tensor"] is not STOCK["update_tensor"], "recbole_rlmm's collector patch is not applied"


def use(methods: dict[str, Any]) -> None:
    _collector.DataStruct.update_tensor = methods["update_tensor"]
    _collector.DataStruct.__getitem__ = methods["__getitem__"]
    _collector.Collector.get_data_struct = methods["get_data_struct"]


def measure(size_name: str, cache: Path, model_name: str, saved: str) -> list[dict[str, Any]]:
    import torch
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_trainer, init_seed

    from recbole_rlmm.config import create_config
    from recbole_rlmm.registry import get_model
    from recbole_rlmm.runner import silence_recbole_warnings

    silence_recbole_warnings()
    size = perf.prepare_size(size_name, cache)
    base = {"data_path": size["data_path"], "state": "WARNING", "show_progress": False, "log_dir": None,
            "tensorboard_dir": None, "checkpoint_dir": saved, **size["config"]}  # the trainer wants one; nothing is saved
    config = create_config(model_name, size["dataset"], size["config_files"], base)
    rows = []
    model = trainer = None
    for batch in (4096, 2**24):
        config["eval_batch_size"] = batch  # read when the dataloaders are built (once per dataset)
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        item_num = int(dataset.item_num)
        train_data, valid_data, _ = data_preparation(config, dataset)
        if model is None:
            init_seed(config["seed"], config["reproducibility"])
            model = get_model(model_name)(config, train_data._dataset).to(config["device"])
            model.eval()
        # rounds alternate which collector goes first; short evaluations are repeated (up to 5
        # rounds, while under 3 s) and the median kept, as in bench/perf.py
        collectors = [("RecBole 1.2.1", STOCK), ("recbole_rlmm", PATCHED)]
        seconds: dict[str, list[float]] = {name: [] for name, _ in collectors}
        results: dict[str, Any] = {}
        while not seconds["recbole_rlmm"] or (len(seconds["recbole_rlmm"]) < 5 and sum(map(sum, seconds.values())) < 3.0):
            for name, methods in collectors:
                use(methods)
                trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
                for cached in ("restore_user_e", "restore_item_e"):
                    if getattr(model, cached, None) is not None:
                        setattr(model, cached, None)
                start = time.perf_counter()
                with torch.no_grad():
                    results[name] = trainer.evaluate(valid_data, load_best_model=False, show_progress=False)
                seconds[name].append(time.perf_counter() - start)
            collectors.reverse()
        for name, values in seconds.items():
            rows.append({
                "size": size_name, "collector": name, "eval_batch_size": batch,
                "users_per_batch": max(batch // item_num, 1),
                "seconds": sorted(values)[len(values) // 2], "runs": len(values), "metrics": dict(results[name]),
            })
            print(f"  {size_name:13s} {name:14s} eval_batch_size {batch:>10,} "
                  f"({rows[-1]['users_per_batch']:,} users/batch): {rows[-1]['seconds']:8.2f} s "
                  f"(median of {len(values)})", flush=True)
    use(PATCHED)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["movielens-mm", "amazon"])
    parser.add_argument("--model", default="LightGCN")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-cache", type=Path, default=perf.REPO / "results" / "perf" / "data")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    sys.argv = sys.argv[:1]  # RecBole's Config parses sys.argv
    print(f"machine: {perf.machine()}; {args.threads} thread(s); model {args.model} (untrained)")
    same = True
    lines = ["| size | eval_batch_size | users per batch | RecBole 1.2.1 collector s | recbole_rlmm s | stock / patched |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="eval_collector-") as saved:
            rows = measure(size, args.data_cache, args.model, saved)
        reference = rows[0]["metrics"]
        same &= all(r["metrics"] == reference for r in rows)
        for stock, patched in zip(rows[0::2], rows[1::2], strict=True):
            lines.append(
                f"| {size} | {stock['eval_batch_size']:,} | {stock['users_per_batch']:,} | {stock['seconds']:.2f} | "
                f"{patched['seconds']:.2f} | {stock['seconds'] / patched['seconds']:.2f} |"
            )
    print("\n".join(lines))
    print("metrics identical across collectors and batch sizes:" if same else "METRICS DIFFER:", reference)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
