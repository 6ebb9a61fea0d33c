"""Performance benchmark: training, evaluation, start-up and memory of every model, at three
dataset sizes, against RecBole's LightGCN (docs/RESULTS.md, "Performance").

How to run. From a checkout with the venv active (``bash install.sh && . .venv/bin/activate``):

    python bench/perf.py                                   # every size and model, 1 thread, 3 epochs
    python bench/perf.py --sizes movielens-mm amazon       # the two small sizes (~15 min)
    python bench/perf.py --sizes elec                      # the Elec size alone (hours: below)
    python bench/perf.py --threads 1 2 --models LightGCN RLMultimodalRec
    python bench/perf.py --set feature_dim=128             # a variant: config keys for every model
    python bench/perf.py --set feature_dim=null --models RLMultimodalRec   # raw features
    python bench/perf.py --device cuda                     # GPU figures (absolute times)
    python bench/perf.py --sizes movielens-mm --malloc jemalloc   # another allocator (bench/malloc.py)

Run it on an otherwise idle machine: another job on the same cores changes every figure (with
the second of 2 cores busy, 2 threads made LightGCN 8x slower than 1 thread). Progress lines
name each run, its phase and, after the first epoch, when it will end. At the Elec size, with
``--epochs 1`` on one core of a 2-core AMD EPYC, a run takes from 8 min (BPR) and 20-30 min
(LightGCN, RLMultimodalRec, VBPR/FREEDOM with ``--set feature_dim=256``) to hours: MMGCN's epoch
(about 3.3 h) and the content baselines on raw 4096-d features (FREEDOM: 29 min to build its kNN
graphs before the first batch). The default ``--timeout`` of 3 h stops such a run; its row keeps
the epochs it finished or, inside an epoch, the batches done and their seconds.

Sizes: ``movielens-mm`` (the embedded dataset: 384-d text, 1280-d image), ``amazon``
(``dataset/amazon``, Amazon Baby, with random stand-in features of MMRec's shapes: 4096-d
image, 384-d text), ``cold`` (generated: 12,000 users, 5,000 items, 69,000 interactions, two
128-d non-text modalities that follow 50 latent item groups, so the content check keeps them;
3% of the items held out of training, 7.3% of validation and test interactions on them: the
shape on which cold-start training runs, timed next to LightGCN) and ``elec`` (generated: 192,403
users, 63,001 items, 1,689,188 interactions with power-law degrees, 4096-d + 384-d random
features; 1.15 GB, generated once into ``<out>/data`` in ~20 s). Generated features are for
timing and memory only, never for quality. ``tiny`` and ``tiny-cold`` are seconds-long sizes
for the tests.

Each (size, model, variant, threads, device) runs in its own process, one after the other, so
peak memory (``VmHWM``) is per model; it trains ``--epochs`` epochs with RecBole's trainer and
dataloaders, then evaluates the validation split with full ranking (the median of up to 5
evaluations when they take under 3 s, of 3 when under 60 s). Start-up is split
into dataset loading (RecBole's ``create_dataset`` + ``data_preparation``), feature loading
(with any ``feature_dim`` reduction), kNN item graphs and the rest of the model's
construction. Results go to ``<out>/perf.csv`` (a row per run, written as soon as the run
ends), ``perf.md`` (tables with ratios to LightGCN of the same size, and the machine) and
``perf.png`` (scaling; needs matplotlib, the ``plot`` extra). The benchmark is resumable: a
row already in the CSV is skipped unless ``--force``; an interrupted call is simply re-run.

Guards: a run whose estimated memory exceeds ``--mem-budget-gb`` (default 90% of the RAM) is
not started; a run whose resident memory crosses the budget, or that runs past ``--timeout``
seconds, is stopped; an out-of-memory error inside the run ends it. Each of these writes a row
whose status says what stopped it (the estimate and its largest term, the phase, the figure)
instead of crashing the benchmark.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import perf_data  # noqa: E402
from malloc import CHOICES as MALLOC_CHOICES  # noqa: E402
from malloc import malloc_env  # noqa: E402

ALL_MODELS = ("LightGCN", "BPR", "VBPR", "MMGCN", "LATTICE", "FREEDOM", "RLMultimodalRec")
ALL_SIZES = ("movielens-mm", "amazon", "cold", "elec")
REFERENCE = "LightGCN"
#: Goals of the issue for RLMultimodalRec, as ratios to LightGCN.
GOALS = {"train": 1.3, "eval": 1.1, "peak": 1.5}

COLUMNS = [
    "size", "model", "variant", "threads", "device", "status",
    "train_s_epoch", "train_s_first", "eval_s", "peak_mb",
    "train_x", "eval_x", "peak_x",
    "startup_s", "dataset_s", "features_s", "reduce_s", "knn_s", "model_other_s",
    "base_mb", "startup_peak_mb", "gpu_peak_mb", "est_mb",
    "n_users", "n_items", "n_train", "feature_dims", "n_params", "epochs", "wall_s", "date", "note",
    "kernel_share", "minor_faults",
]


# ---------------------------------------------------------------------------- machine
def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, versions: what the Markdown names."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = int(line.split()[1]) / 1024**2
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": ram_gb, "python": platform.python_version()}
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        pass
    return info


# ---------------------------------------------------------------------------- sizes
def prepare_size(size: str, cache: Path) -> dict[str, Any]:
    """Data path, dataset, config files and extra keys of a size (generating its data)."""
    start = time.perf_counter()
    if size == "movielens-mm":
        out = {"data_path": str(REPO / "dataset"), "dataset": "movielens-mm", "config_files": [], "config": {}}
    elif size == "amazon":
        data_path = perf_data.amazon_standin(cache)
        out = {
            "data_path": str(data_path), "dataset": "amazon",
            "config_files": [str(BENCH / "configs" / "amazon.yaml")], "config": {},
        }
    elif size in perf_data.SIZES:
        data_path, name, info = perf_data.synthetic(cache, size)
        out = {
            "data_path": str(data_path), "dataset": name, "config_files": [],
            # the schedule of the two real sizes (dataset yamls): batch 4096, learning rate 0.01;
            # RecBole's eval_batch_size counts scores (users x items), and its default 4096 is
            # one user per batch beyond 4,096 items: 2**24 scores 266 Elec users per batch
            "config": {"train_batch_size": 4096, "learning_rate": 0.01, "eval_batch_size": 2**24},
            "generated": info,
        }
    else:
        raise SystemExit(f"unknown size {size!r}; sizes: {', '.join([*ALL_SIZES, *perf_data.SIZES])}")
    out["prepare_s"] = round(time.perf_counter() - start, 2)
    out.update(data_shape(Path(out["data_path"]) / out["dataset"], out["dataset"]))
    return out


def data_shape(folder: Path, name: str) -> dict[str, Any]:
    """Users, items, training interactions and feature dims of a dataset folder (cheap)."""
    import numpy as np

    users: set[str] = set()
    items: set[str] = set()
    n_train = 0
    for part in ("train", "valid", "test"):
        path = folder / f"{name}.{part}.inter"
        if not path.is_file():
            continue
        with open(path, encoding="utf-8") as f:
            next(f)
            for line in f:
                u, i = line.rstrip("\n").split("\t")[:2]
                users.add(u)
                items.add(i)
                n_train += part == "train"
    dims = {}
    for path in sorted(folder.glob(f"{name}.*.npy")):
        modality = path.name[len(name) + 1 : -4]
        dims[modality] = int(np.load(path, mmap_mode="r").shape[1])
    size_mb = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6
    return {"n_users": len(users), "n_items": len(items), "n_train": n_train, "dims": dims, "files_mb": round(size_mb, 1)}


# ---------------------------------------------------------------------------- memory estimate
def effective(model: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` over the model's yaml defaults over the overall ones (the keys the
    estimate and the table read: ``feature_dim``, ``embedding_size``, ...)."""
    import yaml

    values: dict[str, Any] = {}
    for path in (REPO / "properties" / "overall.yaml", REPO / "properties" / "model" / f"{model}.yaml"):
        if path.is_file():
            values.update(yaml.safe_load(path.read_text()) or {})
    return {**values, **overrides}


def estimate_mb(model: str, shape: dict[str, Any], overrides: dict[str, Any]) -> tuple[float, str]:
    """Rough peak resident memory of a run (MB) and its largest model-specific term.

    Calibrated on the measured rows of movielens-mm and amazon (1 thread, CPU); it only
    has to tell a run that cannot fit from one that can. Terms: interpreter and libraries;
    RecBole's dataset and dataloaders; the user-item graph; embeddings with Adam's state;
    propagation activations; feature copies at their peak (load, normalisation, kNN); the
    kNN similarity block; MMGCN's per-modality user preferences and activations.
    """
    overrides = effective(model, overrides)
    nu, ni, ntr = shape["n_users"] + 1, shape["n_items"] + 1, max(1, shape["n_train"])
    fd = overrides.get("feature_dim")
    dims = {m: (min(d, int(fd)) if fd else d) for m, d in shape["dims"].items()}
    feat_total = sum(dims.values())
    d = int(overrides.get("embedding_size", 64))
    mb = 1024**2
    # fitted to LightGCN and BPR on movielens-mm and amazon (1 thread): 1.6 KB per training
    # interaction (RecBole's frames, samplers, evaluation masks), 6.5 KB per graph node at d=64
    # (embeddings, Adam, propagation layers and their gradients), 1 KB per node without a graph
    per_node = (6.5 if model != "BPR" else 1.0) * 1024 * d / 64
    terms = {
        "libraries": 340.0,
        "dataset": ntr * 1.6 * 1024 / mb,
        "embeddings and propagation": (nu + ni) * per_node / mb,
    }
    multimodal = model not in ("LightGCN", "BPR") and not (model == "RLMultimodalRec" and overrides.get("fusion") == "none")
    if multimodal and feat_total:
        # peak copies of the feature matrix: RLMultimodalRec's raw + standardised + the kNN's
        # unit rows; FREEDOM/LATTICE raw + unit rows; VBPR raw + the concatenation
        copies = {"RLMultimodalRec": 3.0, "FREEDOM": 2.0, "LATTICE": 2.0, "VBPR": 2.0, "MMGCN": 1.5}.get(model, 2.0)
        if str(overrides.get("feature_dtype", "float32")) != "float32":
            copies -= 0.5
        terms[f"features ({ni:,} items x {feat_total} dims x {copies:g} copies)"] = ni * feat_total * 4 * copies / mb
        if model in ("RLMultimodalRec", "FREEDOM", "LATTICE"):
            rows = min(2048, ni, max(1, (256 << 20) // (4 * ni)))
            terms[f"kNN similarity block ({rows:,} x {ni:,})"] = rows * ni * 4 * 3 / mb
        if model == "MMGCN":
            latent = int(overrides.get("dim_latent", 256))
            per = sum(latent or dim for dim in dims.values())
            terms[f"MMGCN user preferences ({nu:,} users x {per} dims, with Adam)"] = nu * per * 4 * 4 / mb
            width = sum(6 * (latent or dim) + 15 * d for dim in dims.values())
            terms[f"MMGCN activations ({nu + ni:,} nodes x {width} values, with gradients)"] = (nu + ni) * width * 4 * 2 / mb
    total = sum(terms.values())
    largest = max((k for k in terms if k != "libraries"), key=terms.get)
    return total, f"{largest}: {terms[largest]:,.0f} MB"


def budget_mb(args: argparse.Namespace) -> float:
    if args.mem_budget_gb is not None:
        return args.mem_budget_gb * 1024
    ram = machine().get("ram_gb") or 16.0
    return 0.9 * ram * 1024


# ---------------------------------------------------------------------------- the child
def child(spec_file: Path) -> int:
    """One measured run (in its own process): see the module docstring."""
    spec = json.loads(spec_file.read_text())
    progress = Path(spec["progress"])
    sys.argv = sys.argv[:1]  # RecBole's Config parses sys.argv; ours is no RecBole command line

    def emit(**event: Any) -> None:
        with open(progress, "a", encoding="utf-8") as f:
            f.write(json.dumps({"t": time.time(), **event}) + "\n")

    import torch

    torch.set_num_threads(int(spec["threads"]))
    from recbole_rlmm import timing

    if spec.get("mode") == "reduce":
        return reduce_child(spec)

    phase = "imports"
    result: dict[str, Any] = {"status": "ok"}
    try:
        from recbole.data import create_dataset, data_preparation
        from recbole.utils import init_seed

        import recbole_rlmm  # noqa: F401
        from recbole_rlmm.config import create_config
        from recbole_rlmm.data.cold import restrict_negatives
        from recbole_rlmm.plan.plan import apply_plan, make_plan
        from recbole_rlmm.registry import get_model
        from recbole_rlmm.runner import silence_recbole_warnings
        from recbole_rlmm.runner.checks import validate_before_dataset, validate_dataset
        from recbole_rlmm.runner.dataset import refused_pickled_caches
        from recbole_rlmm.runner.trainer import runner_trainer_class

        silence_recbole_warnings()
        result["base_mb"] = timing.rss_mb()
        cuda = spec["device"] == "cuda"

        def sync() -> None:
            if cuda:
                torch.cuda.synchronize()

        phase = "config"
        config = create_config(spec["model"], spec["dataset"], spec["config_files"], spec["config"])
        model_class = get_model(config["model"])
        validate_before_dataset(config, model_class, False)
        init_seed(config["seed"], config["reproducibility"])

        phase = "dataset"
        emit(phase=phase)
        start = time.perf_counter()
        with refused_pickled_caches(config):  # as our runner reads data
            dataset = create_dataset(config)
            validate_dataset(config, dataset)
            train_data, valid_data, _ = data_preparation(config, dataset)
        if not config["cold_items_as_negatives"]:
            restrict_negatives(train_data)
        result["dataset_s"] = time.perf_counter() - start

        phase = "model"
        emit(phase=phase)
        timing.reset()
        start = time.perf_counter()
        # the run plan first, as our runner does (the content check reads the features too)
        apply_plan(config, make_plan(config, model_class, train_data._dataset, valid_data._dataset))
        init_seed(config["seed"], config["reproducibility"])
        net = model_class(config, train_data._dataset).to(config["device"])
        sync()
        model_s = time.perf_counter() - start
        parts = timing.totals()
        result["features_s"] = parts.get("features", 0.0)
        result["reduce_s"] = parts.get("feature_reduction", 0.0)
        result["knn_s"] = parts.get("knn_graphs", 0.0)
        result["model_other_s"] = max(0.0, model_s - result["features_s"] - result["knn_s"])
        result["startup_s"] = result["dataset_s"] + model_s
        result["startup_peak_mb"] = timing.peak_rss_mb()
        result["n_params"] = sum(p.numel() for p in net.parameters() if p.requires_grad)
        result["n_users"], result["n_items"] = int(dataset.user_num - 1), int(dataset.item_num - 1)
        result["n_train"] = len(train_data._dataset)

        # our runner's trainer: the epoch is told to our models (set_epoch), as in a real run
        trainer = runner_trainer_class(config["MODEL_TYPE"], config["model"])(config, net)
        # batches done, reported every ~30 s: a run stopped inside an epoch still says how far it got
        n_batches = len(train_data)
        batches = {"done": 0, "start": 0.0, "said": 0.0}
        loss_of_batch = net.calculate_loss

        def counted_loss(interaction: Any) -> Any:
            loss = loss_of_batch(interaction)
            batches["done"] += 1
            now = time.perf_counter()
            if batches["done"] == 1 or now - batches["said"] >= 30.0:
                batches["said"] = now
                emit(phase="batch", done=batches["done"], of=n_batches, seconds=now - batches["start"])
            return loss

        net.calculate_loss = counted_loss  # the trainer looks it up on the model at each epoch
        seconds = []
        for epoch in range(int(spec["epochs"])):
            phase = f"training epoch {epoch + 1}"
            emit(phase="train", epoch=epoch)
            start = time.perf_counter()
            batches.update(done=0, start=start, said=start)
            trainer._train_epoch(train_data, epoch, show_progress=False)
            sync()
            seconds.append(time.perf_counter() - start)
            emit(phase="epoch_done", epoch=epoch, seconds=seconds[-1])
        phase = "evaluation"
        emit(phase="eval")
        # evaluations are repeated and the median kept: up to 5 within ~3 s, 3 within ~60 s (one
        # evaluation of a few seconds varies by 10-20% on a shared machine); each repeat drops
        # the cached full-sort vectors, so it pays the forward pass again
        evals: list[float] = []
        while not evals or (len(evals) < 5 and sum(evals) < 3.0) or (len(evals) < 3 and sum(evals) < 60.0):
            for name in ("restore_user_e", "restore_item_e"):
                if getattr(net, name, None) is not None:
                    setattr(net, name, None)
            start = time.perf_counter()
            with torch.no_grad():
                trainer._valid_epoch(valid_data, show_progress=False)
            sync()
            evals.append(time.perf_counter() - start)
        result["eval_s"] = sorted(evals)[len(evals) // 2]
        result["train_s_first"] = seconds[0]
        result["train_s_epoch"] = sum(seconds) / len(seconds)
        if cuda:
            result["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 1024**2
    except MemoryError as exc:
        result = {**result, "status": f"stopped: out of memory in {phase} (MemoryError {exc})"}
    except RuntimeError as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "memory" in text.lower() or "alloc" in text.lower():
            result = {**result, "status": f"stopped: out of memory in {phase} ({text[:200]})"}
        else:
            traceback.print_exc()
            result = {**result, "status": f"error in {phase}: RuntimeError: {text[:200]}"}
    except Exception as exc:  # noqa: BLE001 - reported in the table
        traceback.print_exc()
        text = str(exc).splitlines()[0] if str(exc) else ""
        result = {**result, "status": f"error in {phase}: {type(exc).__name__}: {text[:200]}"}
    result["peak_mb"] = timing.peak_rss_mb()
    Path(spec["result"]).write_text(json.dumps(result))
    return 0 if result["status"] == "ok" else 3


def reduce_child(spec: dict[str, Any]) -> int:
    """The ``feature_dim`` reductions of a size's feature files (computed once, cached)."""
    from recbole_rlmm import timing
    from recbole_rlmm.data.reduce import reduced_features

    start = time.perf_counter()
    for path, modality in spec["files"]:
        reduced_features(Path(path), int(spec["dim"]), spec["method"], Path(spec["cache_dir"]), modality)
    result = {"seconds": time.perf_counter() - start, "peak_mb": timing.peak_rss_mb(), "dim": spec["dim"], "method": spec["method"]}
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


def run_reduction(args: argparse.Namespace, size: dict[str, Any], label: str, threads: int) -> dict[str, Any] | None:
    """Compute a variant's feature reductions for a size in a child process (time and peak
    memory reported in the sizes table), so that no model run pays for them."""
    dim = args.overrides.get("feature_dim")
    if not dim:
        return None
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise SystemExit(f"--set feature_dim={dim!r}: a positive integer, or null for raw features")
    folder = Path(size["data_path"]) / size["dataset"]
    files = [[str(folder / f"{size['dataset']}.{m}.npy"), m] for m, d in size["dims"].items() if d > int(dim)]
    if not files:
        return None
    cache_dir = args.overrides.get("feature_cache_dir") or str(folder / "_cache" / "features")
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    slug = f"{size['name']}-reduce-{label.replace('=', '').replace(',', '_')}"
    spec_file, result_file = runs / f"{slug}.spec.json", runs / f"{slug}.result.json"
    result_file.unlink(missing_ok=True)
    spec = {
        "mode": "reduce", "files": files, "dim": int(dim), "method": args.overrides.get("feature_reduction", "pca"),
        "cache_dir": cache_dir, "result": str(result_file), "threads": threads, "progress": str(runs / f"{slug}.progress"),
    }
    spec_file.write_text(json.dumps(spec, indent=1))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), **args.malloc_env}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    with open(runs / f"{slug}.log", "w", encoding="utf-8") as out:
        rc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", str(spec_file)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(args.out), check=False,
        ).returncode
    if rc != 0 or not result_file.is_file():
        print(f"    feature reduction failed (exit status {rc}); see {runs / (slug + '.log')}", flush=True)
        return None
    return json.loads(result_file.read_text())


# ---------------------------------------------------------------------------- the parent
def _proc_kb(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _fmt_s(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def timeout_status(timeout: float, phase: str, epochs_done: int, partial: dict[str, Any]) -> str:
    """The status of a run stopped by ``--timeout``; inside an epoch, how far that epoch got
    (the last batch report: batches done, of how many, in how many seconds)."""
    where = f"{epochs_done} epochs done"
    if phase == "train" and partial:
        where += f"; epoch {epochs_done + 1}: {partial['done']:,} of {partial['of']:,} batches in {partial['seconds']:,.0f} s"
    return f"stopped: timeout after {timeout:,.0f} s in phase {phase} ({where})"


def run_one(args: argparse.Namespace, size: dict[str, Any], model: str, threads: int, label: str) -> dict[str, Any]:
    """Run one measurement in a child process, watching its memory and time."""
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    slug = "-".join(x.replace("/", "_").replace("=", "").replace(",", "_") for x in (size["name"], model, label, f"t{threads}", args.device))
    spec_file, progress, result_file, log = (runs / f"{slug}.{ext}" for ext in ("spec.json", "progress", "result.json", "log"))
    for path in (progress, result_file):
        path.unlink(missing_ok=True)
    config = {
        "data_path": size["data_path"],
        "epochs": args.epochs,
        "log_dir": None,
        "tensorboard_dir": None,
        "state": "WARNING",
        "show_progress": False,
        "checkpoint_dir": str(args.out / "saved"),
        "use_gpu": args.device == "cuda",
        **size["config"],
        **args.overrides,
    }
    spec = {
        "model": model, "dataset": size["dataset"], "config_files": size["config_files"], "config": config,
        "threads": threads, "epochs": args.epochs, "device": args.device,
        "progress": str(progress), "result": str(result_file),
    }
    spec_file.write_text(json.dumps(spec, indent=1))
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1", **args.malloc_env})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    budget = budget_mb(args)
    start = time.time()
    peak_kb = 0
    stopped = None
    seen = 0
    phase = "start"
    epoch_seconds: list[float] = []
    partial: dict[str, Any] = {}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # the run's own CPU use is the difference after it
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", str(spec_file)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(args.out),
        )
        while proc.poll() is None:
            time.sleep(0.2 if time.time() - start < 5 else 1.0)
            rss = _proc_kb(proc.pid, "VmRSS") or 0
            peak_kb = max(peak_kb, _proc_kb(proc.pid, "VmHWM") or 0, rss)
            if progress.is_file():
                lines = progress.read_text(encoding="utf-8").splitlines()
                for line in lines[seen:]:
                    event = json.loads(line)
                    phase = event["phase"]
                    if phase == "batch":
                        partial = event
                        phase = "train"
                        continue
                    if phase == "epoch_done":
                        partial = {}
                        epoch_seconds.append(event["seconds"])
                        mean = sum(epoch_seconds) / len(epoch_seconds)
                        left = (args.epochs - len(epoch_seconds)) * mean
                        print(
                            f"    epoch {len(epoch_seconds)}/{args.epochs}: {event['seconds']:.2f} s "
                            f"(this run ends in ~{_fmt_s(left + mean)} with the evaluation)",
                            flush=True,
                        )
                    elif phase in ("dataset", "model", "eval"):
                        print(f"    {phase} ... ({_fmt_s(time.time() - start)} in)", flush=True)
                seen = len(lines)
            if rss / 1024 > budget:
                stopped = f"stopped: resident memory {rss / 1024:,.0f} MB above the budget {budget:,.0f} MB in phase {phase}"
            elif args.timeout and time.time() - start > args.timeout:
                stopped = timeout_status(args.timeout, phase, len(epoch_seconds), partial)
            if stopped:
                proc.kill()  # our own child, by its id
                proc.wait()
                break
    wall = time.time() - start
    row: dict[str, Any] = {}
    if result_file.is_file() and not stopped:
        row = json.loads(result_file.read_text())
    elif stopped:
        row = {"status": stopped}
    else:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] if log.is_file() else []
        how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
        hint = " (likely the kernel's out-of-memory killer)" if proc.returncode == -9 else ""
        row = {"status": f"stopped: {how}{hint} in phase {phase}; {tail[0][:150] if tail else ''}".strip()}
    row["peak_mb"] = row.get("peak_mb") or peak_kb / 1024
    if epoch_seconds and "train_s_epoch" not in row:
        row["train_s_epoch"] = sum(epoch_seconds) / len(epoch_seconds)
        row["train_s_first"] = epoch_seconds[0]
    row["wall_s"] = wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    if user + system > 0:  # the share of its CPU time the run spent in the kernel (page faults, mostly)
        row["kernel_share"] = round(system / (user + system), 3)
        row["minor_faults"] = after.ru_minflt - before.ru_minflt
    return row


# ---------------------------------------------------------------------------- table
def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def row_key(row: dict[str, Any]) -> tuple[str, ...]:
    return (str(row["size"]), str(row["model"]), str(row["variant"]), str(row["threads"]), str(row["device"]))


def _malloc_of(row: dict[str, Any]) -> str:
    return next((p.split("=", 1)[1] for p in str(row["variant"]).split(",") if p.startswith("malloc=")), "default")


def _without_malloc(row: dict[str, Any]) -> str:
    return ",".join(p for p in str(row["variant"]).split(",") if not p.startswith("malloc=")) or "default"


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """``*_x``: the ratio to LightGCN's run of the same size, threads, device and allocator (its
    default variant when there are several)."""
    refs: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for row in rows:
        if row["model"] == REFERENCE and row["status"] == "ok":
            key = (str(row["size"]), str(row["threads"]), str(row["device"]), _malloc_of(row))
            if key not in refs or row["variant"] in ("default", f"malloc={_malloc_of(row)}"):
                refs[key] = row
    for row in rows:
        ref = refs.get((str(row["size"]), str(row["threads"]), str(row["device"]), _malloc_of(row)))
        for col, x in (("train_s_epoch", "train_x"), ("eval_s", "eval_x"), ("peak_mb", "peak_x")):
            a, b = _num(row.get(col)), _num(ref.get(col)) if ref else None
            row[x] = round(a / b, 3) if a is not None and b else ""


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    from recbole_rlmm.data.io import write_text_atomic

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _round(row.get(c, "")) for c in COLUMNS})
    write_text_atomic(path, buf.getvalue())


def _round(x: Any) -> Any:
    if isinstance(x, float):
        return round(x, 3)
    return x


def _cell(x: Any, digits: int = 2) -> str:
    v = _num(x)
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def markdown(rows: list[dict[str, Any]], sizes: dict[str, dict[str, Any]], info: dict[str, Any], command: str) -> str:
    """The report: machine, data, one table per size with ratios to LightGCN, the goals."""
    lines = [
        "# Performance benchmark",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']:.0f} GiB RAM"
        + (f", GPU {info['gpu']}" if info.get("gpu") else "")
        + f"; Python {info['python']}, torch {info.get('torch', '?')}. Generated {dt.datetime.now():%Y-%m-%d %H:%M}.",
        "",
        f"Command: `{command}`",
        "",
        "Each row is its own process (peak memory = its `VmHWM`), runs one after the other; seconds",
        "per training epoch are the mean over the epochs run; evaluation is a full-ranking pass over",
        "the validation users, forward pass included (the median of up to 5 under 3 s, of 3 under 60 s);",
        "start-up = dataset + model construction (features, kNN graphs, rest).",
        "Ratios (x) are to RecBole's LightGCN of the same size, threads, device and allocator.",
        "",
    ]
    if sizes:
        lines += ["| size | users | items | train interactions | features | files | prepared in |", "| --- | ---: | ---: | ---: | --- | ---: | ---: |"]
        for name, s in sizes.items():
            dims = " + ".join(f"{m} {d}" for m, d in s["dims"].items()) or "-"
            gen = s.get("generated", {}).get("seconds")
            prepared = f"{gen:.0f} s (generated)" if gen is not None else f"{s.get('prepare_s', 0):.1f} s"
            lines.append(
                f"| {name} | {s['n_users']:,} | {s['n_items']:,} | {s['n_train']:,} | {dims} | {s['files_mb']:,.0f} MB | {prepared} |"
            )
        lines.append("")
        reductions = [(name, label, r) for name, s in sizes.items() for label, r in s.get("reductions", {}).items()]
        if reductions:
            lines += [
                "Feature reductions (`feature_dim`, computed once per feature file in a process of their own, then cached):",
                "",
                "| size | variant | seconds | peak MB |",
                "| --- | --- | ---: | ---: |",
            ]
            lines += [f"| {name} | {label} | {r['seconds']:.1f} | {r['peak_mb']:,.0f} |" for name, label, r in reductions]
            lines.append("")
    order = {m: i for i, m in enumerate(ALL_MODELS)}
    by_size: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_size.setdefault(str(row["size"]), []).append(row)
    for size, group in by_size.items():
        group.sort(key=lambda r: (str(r["device"]), int(r["threads"]), order.get(r["model"], 99), str(r["variant"])))
        lines += [
            f"## {size}",
            "",
            "| model | variant | threads | device | train s/epoch | x | eval s | x | peak MB | x | start-up s (data + features + kNN + rest) | status |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        ]
        for r in group:
            startup = "-"
            if _num(r.get("startup_s")) is not None:
                startup = (
                    f"{_cell(r['startup_s'], 1)} ({_cell(r.get('dataset_s'), 1)} + {_cell(r.get('features_s'), 1)}"
                    f" + {_cell(r.get('knn_s'), 1)} + {_cell(r.get('model_other_s'), 1)})"
                )
                if _num(r.get("reduce_s")):
                    startup += f"; reduction {_cell(r['reduce_s'], 1)}"
            status = r["status"] if r["status"] != "ok" else "ok"
            lines.append(
                f"| {r['model']} | {r['variant']} | {r['threads']} | {r['device']} | {_cell(r.get('train_s_epoch'))} | "
                f"{_cell(r.get('train_x'))} | {_cell(r.get('eval_s'))} | {_cell(r.get('eval_x'))} | "
                f"{_cell(r.get('peak_mb'), 0)} | {_cell(r.get('peak_x'))} | {startup} | {status} |"
            )
        lines.append("")
    lattice = sorted({str(r["size"]) for r in rows if r["model"] == "LATTICE"} & set(sizes), key=lambda n: sizes[n]["n_items"])
    if lattice:
        dense = ", ".join(f"{n}: {3 * (sizes[n]['n_items'] + 1) ** 2 * 4 / 1024**3:,.1f} GiB" for n in lattice)
        lines += [
            "LATTICE keeps its item graphs as edge lists (k per item). MMRec's LATTICE keeps three dense",
            f"n_items x n_items float32 matrices (image, text, mixed), which alone would take {dense}.",
            "",
        ]
    pairs = []
    for r in rows:
        if _malloc_of(r) == "default" or r["status"] != "ok":
            continue
        base = next((b for b in rows if b["status"] == "ok" and _malloc_of(b) == "default" and _without_malloc(b) == _without_malloc(r)
                     and (b["size"], b["model"], str(b["threads"]), b["device"]) == (r["size"], r["model"], str(r["threads"]), r["device"])), None)
        if base is not None:
            pairs.append((base, r))
    if pairs:
        lines += [
            "## Allocator",
            "",
            "The same run under the C library's allocator and under `--malloc` (default / other, and the speed-up; the kernel's",
            "share of the run's CPU time, from the child's resource usage, is mostly page faults):",
            "",
            "| size | model | variant | threads | allocator | train s/epoch | speed-up | eval s | speed-up | peak MB | CPU time in the kernel |",
            "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for base, r in pairs:
            def both(col: str, digits: int = 2, base: dict[str, Any] = base, r: dict[str, Any] = r) -> tuple[str, str]:
                a, b = _num(base.get(col)), _num(r.get(col))
                return f"{_cell(a, digits)} / {_cell(b, digits)}", (f"{a / b:.2f}x" if a and b else "-")
            train, train_x = both("train_s_epoch")
            ev, ev_x = both("eval_s")
            peak, _ = both("peak_mb", 0)
            kernel = " / ".join(f"{v:.0%}" if v is not None else "-" for v in (_num(base.get("kernel_share")), _num(r.get("kernel_share"))))
            lines.append(f"| {r['size']} | {r['model']} | {_without_malloc(r)} | {r['threads']} | {_malloc_of(r)} | {train} | {train_x} | {ev} | {ev_x} | {peak} | {kernel} |")
        lines.append("")
    goal_rows = [r for r in rows if r["model"] == "RLMultimodalRec" and r["status"] == "ok" and _num(r.get("train_x"))]
    if goal_rows:
        lines += [
            "## RLMultimodalRec against the goals",
            "",
            f"Goals: training epoch <= {GOALS['train']}x LightGCN, evaluation <= {GOALS['eval']}x, peak memory <= {GOALS['peak']}x.",
            "",
            "| size | variant | threads | device | train x | eval x | peak x | all met |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: | --- |",
        ]
        for r in goal_rows:
            met = all((_num(r.get(f"{k}_x")) or 0) <= v for k, v in GOALS.items())
            lines.append(
                f"| {r['size']} | {r['variant']} | {r['threads']} | {r['device']} | {_cell(r['train_x'])} | "
                f"{_cell(r['eval_x'])} | {_cell(r['peak_x'])} | {'yes' if met else 'no'} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], sizes: dict[str, dict[str, Any]], path: Path) -> str:
    """Scaling figure: seconds per epoch vs training interactions, the ratio to LightGCN vs
    n_items x feature dims, peak memory vs interactions."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'recbole-rlmm[plot]'): no scaling plot"
    ok = [r for r in rows if r["status"] == "ok" and _num(r.get("train_s_epoch")) and r["size"] in sizes]
    if not ok:
        return "no finished run to plot"
    fig, axes = plt.subplots(1, 3, figsize=(16, 6))
    series: dict[str, list[dict[str, Any]]] = {}
    for r in ok:
        name = f"{r['model']}" + ("" if r["variant"] == "default" else f" ({r['variant']})")
        name += f" t{r['threads']}" if str(r["threads"]) != "1" else ""
        name += " cuda" if r["device"] == "cuda" else ""
        series.setdefault(name, []).append(r)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, group) in enumerate(sorted(series.items())):
        style = {"marker": "o", "label": name, "color": colours[k % len(colours)], "linestyle": "-" if k < len(colours) else "--"}
        group.sort(key=lambda r: sizes[r["size"]]["n_train"])
        x = [sizes[r["size"]]["n_train"] for r in group]
        axes[0].plot(x, [float(r["train_s_epoch"]) for r in group], **style)
        axes[2].plot(x, [float(r["peak_mb"]) for r in group], **style)
        xr = [sizes[r["size"]]["n_items"] * _dims_of(r, sizes) for r in group if _num(r.get("train_x"))]
        yr = [float(r["train_x"]) for r in group if _num(r.get("train_x"))]
        if any(xr) and name.split(" ")[0] not in ("LightGCN", "BPR"):
            axes[1].plot(xr, yr, **style)
    axes[0].set(xscale="log", yscale="log", xlabel="training interactions", ylabel="seconds per training epoch")
    axes[1].set(xscale="log", xlabel="n_items x feature dims (all modalities)", ylabel="training epoch / LightGCN's")
    axes[1].axhline(GOALS["train"], color="grey", linestyle="--", linewidth=1)
    axes[2].set(xscale="log", xlabel="training interactions", ylabel="peak resident memory (MB)")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    rows_of_legend = math.ceil(len(labels) / 4)
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, min(0.45, 0.045 * rows_of_legend + 0.02), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"scaling plot: {path}"


def _dims_of(row: dict[str, Any], sizes: dict[str, dict[str, Any]]) -> int:
    dims = row.get("feature_dims")
    if dims:
        try:
            return int(sum(int(x.split(":")[1]) for x in str(dims).split()))
        except (IndexError, ValueError):
            pass
    return sum(sizes[row["size"]]["dims"].values())


# ---------------------------------------------------------------------------- main
def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set wants KEY=VALUE, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def variant_label(overrides: dict[str, Any], malloc: str = "default") -> str:
    parts = [f"{k}={v}" for k, v in sorted(overrides.items())] + ([f"malloc={malloc}"] if malloc != "default" else [])
    return ",".join(parts) or "default"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", nargs="+", default=list(ALL_SIZES), help=f"sizes (default: {' '.join(ALL_SIZES)}; also: tiny, tiny-cold)")
    parser.add_argument("--models", nargs="+", default=list(ALL_MODELS), help="models (default: all seven)")
    parser.add_argument("--threads", nargs="+", type=int, default=[1], help="torch/OpenMP threads per run (default 1)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per run (default 3)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "perf", help="results folder (default results/perf)")
    parser.add_argument("--data-cache", type=Path, default=None, help="generated datasets (default OUT/data)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="config key for every run (a variant)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds per run before it is stopped (default 3 h; 0: none)")
    parser.add_argument("--mem-budget-gb", type=float, default=None, help="memory per run (default 90%% of the RAM)")
    parser.add_argument("--force", action="store_true", help="re-run rows already in the CSV")
    parser.add_argument("--malloc", choices=MALLOC_CHOICES, default="default",
                        help="the runs' memory allocator (a variant; docs/RESULTS.md, \"Allocator\")")
    args = parser.parse_args(argv)
    if args.child is not None:
        return child(args.child)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    args.overrides = parse_overrides(args.overrides)
    label = variant_label(args.overrides, args.malloc)
    args.malloc_env = malloc_env(args.malloc, "bench/perf.py")  # once; a missing jemalloc is an error before any run
    cache = (args.data_cache or args.out / "data").resolve()
    csv_path, md_path, png_path = args.out / "perf.csv", args.out / "perf.md", args.out / "perf.png"
    sizes_path = args.out / "sizes.json"
    rows = read_rows(csv_path)
    sizes: dict[str, dict[str, Any]] = json.loads(sizes_path.read_text()) if sizes_path.is_file() else {}
    info = machine()
    command = "python bench/perf.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    budget = budget_mb(args)
    todo = [(s, m, t) for s in args.sizes for t in args.threads for m in args.models]
    print(
        f"perf: {len(todo)} runs ({len(args.sizes)} sizes x {len(args.models)} models x {len(args.threads)} thread settings), "
        f"variant {label}, {args.epochs} epochs, device {args.device}, memory budget {budget / 1024:.1f} GB, "
        f"timeout {args.timeout:.0f} s; results in {args.out}",
        flush=True,
    )

    def save() -> None:
        add_ratios(rows)
        write_csv(csv_path, rows)
        from recbole_rlmm.data.io import write_json_atomic, write_text_atomic

        write_json_atomic(sizes_path, sizes)
        write_text_atomic(md_path, markdown(rows, sizes, info, command))

    prepared: dict[str, dict[str, Any]] = {}
    began = time.time()
    for n, (size_name, model, threads) in enumerate(todo, 1):
        key = (size_name, model, label, str(threads), args.device)
        done = next((r for r in rows if row_key(r) == key), None)
        if done is not None and not args.force:
            print(f"[{n}/{len(todo)}] {size_name} {model} t{threads}: in the CSV ({done['status']}), skipped", flush=True)
            continue
        if size_name not in prepared:
            print(f"preparing size {size_name} ...", flush=True)
            prepared[size_name] = prepare_size(size_name, cache)
            prepared[size_name]["name"] = size_name
            reductions = sizes.get(size_name, {}).get("reductions", {})
            sizes[size_name] = prepared[size_name]
            if args.overrides.get("feature_dim"):
                done_before = reductions.get(label)
                reduction = run_reduction(args, prepared[size_name], label, threads)
                # a second call finds the cache: keep the first call's figures
                if reduction is not None and (done_before is None or args.force):
                    reductions[label] = reduction
                    print(f"    feature reduction ({label}): {reduction['seconds']:.1f} s, peak {reduction['peak_mb']:,.0f} MB", flush=True)
            sizes[size_name]["reductions"] = reductions
        size = prepared[size_name]
        est, why = estimate_mb(model, size, args.overrides)
        elapsed = time.time() - began
        print(f"[{n}/{len(todo)}] {size_name} {model} ({label}, {threads} thread(s), {args.device}); estimated {est:,.0f} MB; {_fmt_s(elapsed)} elapsed", flush=True)
        if est > budget:
            row = {"status": f"refused: estimated {est:,.0f} MB above the budget {budget:,.0f} MB ({why})", "wall_s": 0.0}
        else:
            row = run_one(args, size, model, threads, label)
        dims = size["dims"]
        fd = effective(model, args.overrides).get("feature_dim")
        row.update(
            size=size_name, model=model, variant=label, threads=threads, device=args.device, est_mb=round(est),
            epochs=args.epochs, date=dt.date.today().isoformat(),
            feature_dims=" ".join(f"{m}:{min(d, int(fd)) if fd else d}" for m, d in dims.items()) if model not in ("LightGCN", "BPR") else "",
        )
        for k in ("n_users", "n_items", "n_train"):
            row.setdefault(k, size[k])
        rows[:] = [r for r in rows if row_key(r) != key] + [row]
        save()
        print(f"    -> {row['status']}; train {_cell(row.get('train_s_epoch'))} s/epoch, eval {_cell(row.get('eval_s'))} s, peak {_cell(row.get('peak_mb'), 0)} MB", flush=True)
    save()
    print(plot(rows, sizes, png_path))
    print(f"wrote {csv_path}, {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
