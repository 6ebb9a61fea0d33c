"""One training run for ``bench/reference_parity.py``: of a reference implementation (MMRec and
its forks; run with the reference's ``src`` folder as working directory), or of ours.

    python bench/reference_driver.py --model FREEDOM --dataset parity-movielens-mm \
        --config run.json --out result.json [--mmrec-test-mask]
    python bench/reference_driver.py --ours --model FREEDOM --dataset parity-movielens-mm \
        --config run.json --out result.json

Both write the best validation result, the test result at that epoch, the epochs run, the best
epoch and the seconds of each training epoch, wall-clock and CPU (``time.process_time``: the
machine is shared, and one thread's CPU seconds are what an idle core's wall-clock would be).

``--ours`` trains through our runner (``run_recbole_rlmm``: RecBole's dataloaders, sampler,
trainer and full-ranking evaluator). The reference run does what its ``utils/quick_start.py``
does for one hyperparameter setting
(dataset, split, dataloaders, ``init_seed``, model, the reference's own ``Trainer.fit``), with two
differences, both about measuring, not training:

* the test dataloader masks each user's training **and validation** items, as RecBole's full
  ranking does (MMRec's masks training items only; ``--mmrec-test-mask`` keeps MMRec's);
* it times every training epoch as MMRec's own "training [time: ...]" line does
  (``pre_epoch_processing`` plus the batches).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any


class EpochClock:
    """Wall-clock and CPU seconds of each training epoch."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def start(self) -> None:
        self.wall.append(-time.perf_counter())
        self.cpu.append(-time.process_time())

    def stop(self) -> None:
        self.wall[-1] += time.perf_counter()
        self.cpu[-1] += time.process_time()

    def summary(self) -> dict[str, float]:
        n = max(1, len(self.wall))
        return {"train_seconds_per_epoch": sum(self.wall) / n, "train_cpu_seconds_per_epoch": sum(self.cpu) / n}


def run_ours(args: argparse.Namespace) -> None:
    """Our model through our runner, each training epoch timed."""
    import torch

    from recbole_rlmm.runner import run_recbole_rlmm
    from recbole_rlmm.runner.trainer import RunnerTrainer

    torch.set_num_threads(1)
    clock = EpochClock()
    train_epoch = RunnerTrainer._train_epoch

    def timed(self: Any, *a: Any, **k: Any) -> Any:
        clock.start()
        try:
            return train_epoch(self, *a, **k)
        finally:
            clock.stop()

    RunnerTrainer._train_epoch = timed
    config_dict = json.loads(args.config.read_text())
    result = run_recbole_rlmm(args.model, args.dataset, config_dict=config_dict, saved=False)
    out = {
        "valid": {k: float(v) for k, v in result["best_valid_result"].items()},
        "test": {k: float(v) for k, v in result["test_result"].items()},
        "epochs_run": result["epochs_run"],
        "best_epoch": result["best_epoch"],
        **clock.summary(),
        "n_params": int(result["n_params"]),
    }
    args.out.write_text(json.dumps(out, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--config", type=Path, required=True, help="JSON mapping of config keys")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mmrec-test-mask", action="store_true")
    parser.add_argument("--ours", action="store_true", help="train our model (from this checkout) instead")
    args = parser.parse_args()
    if args.ours:
        run_ours(args)
        return

    import pandas as pd
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(Path.cwd()))
    pkg = "utils_package" if Path("utils_package").is_dir() else "utils"  # MENTOR renames utils
    configurator = importlib.import_module(f"{pkg}.configurator")
    dataset_mod = importlib.import_module(f"{pkg}.dataset")
    loaders = importlib.import_module(f"{pkg}.dataloader")
    utils = importlib.import_module(f"{pkg}.utils")
    trainer_mod = importlib.import_module("common.trainer")
    logging.basicConfig(level=logging.WARNING)

    config_dict: dict[str, Any] = json.loads(args.config.read_text())
    config = configurator.Config(args.model, args.dataset, config_dict)
    dataset = dataset_mod.RecDataset(config)
    train, valid, test = dataset.split()
    for part in (train, valid, test):
        str(part)  # sets inter_num, as quick_start's logging does
    history = train if args.mmrec_test_mask else train.copy(pd.concat([train.df, valid.df], ignore_index=True))
    str(history)
    train_data = loaders.TrainDataLoader(config, train, batch_size=config["train_batch_size"], shuffle=True)
    valid_data = loaders.EvalDataLoader(config, valid, additional_dataset=train, batch_size=config["eval_batch_size"])
    test_data = loaders.EvalDataLoader(config, test, additional_dataset=history, batch_size=config["eval_batch_size"])

    utils.init_seed(config["seed"])
    train_data.pretrain_setup()
    model = utils.get_model(config["model"])(config, train_data).to(config["device"])
    trainer = utils.get_trainer()(config, model)

    clock = EpochClock()
    pre_epoch, train_epoch = model.pre_epoch_processing, trainer._train_epoch

    def timed_pre_epoch() -> Any:
        clock.start()
        return pre_epoch()

    def timed_train_epoch(*a: Any, **k: Any) -> Any:
        out = train_epoch(*a, **k)
        clock.stop()
        return out

    updates: list[bool] = []
    early_stopping = trainer_mod.early_stopping

    def recorded_early_stopping(*a: Any, **k: Any) -> Any:
        result = early_stopping(*a, **k)
        updates.append(bool(result[3]))
        return result

    model.pre_epoch_processing = timed_pre_epoch
    trainer._train_epoch = timed_train_epoch
    trainer_mod.early_stopping = recorded_early_stopping
    _, best_valid, test_at_best = trainer.fit(train_data, valid_data=valid_data, test_data=test_data, saved=False)
    best_epoch = max((i for i, u in enumerate(updates) if u), default=-1)
    result = {
        "valid": {k: float(v) for k, v in best_valid.items()},
        "test": {k: float(v) for k, v in test_at_best.items()},
        "epochs_run": len(clock.wall),
        "best_epoch": best_epoch,
        **clock.summary(),
        "n_params": int(sum(p.numel() for p in model.parameters())),
    }
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
