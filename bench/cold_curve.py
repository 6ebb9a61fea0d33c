"""The cold-share curve: every model across the family of cold shares, warm and cold items apart.

    python bench/build_scientific.py --out /tmp/rlmm-data         # once (Scientific's text features)
    python bench/build_cold.py --family --out /tmp/rlmm-data       # the family: 0% .. 100% cold
    python bench/cold_curve.py train  [--datasets movielens scientific] [--shares ...] [--models ...]
                                      [--seeds 2020 2021 2022] [--out results/cold_curve] [--label L --set K=V ...]
    python bench/cold_curve.py report [--out results/cold_curve] [--plot docs/cold_curve.png]

``train`` runs ``recbole-rlmm compare`` on every family member (resumable: finished runs are
kept), one thread, so two calls can share two cores. ``--label L --set K=V`` trains a variant
under its own label (e.g. ``--models RLMultimodalRec --label cold-off --set cold_start_weight=0``).

``report`` reads every run's best checkpoint and scores the test split (and validation) in full
ranking as RecBole's evaluator does (every item competes, the user's training items masked,
``torch.topk``), then splits each user's held-out items into **warm** (items with training
interactions) and **cold** (items without): Recall@20 / NDCG@20 over the user's warm items only
(users with at least one), over the cold items only, and over all (RecBole's own figure, checked
against the run's record). It prints one markdown table per dataset (mean ± std over seeds) and
draws the curve. Scores are cached per checkpoint (``<out>/<member>/scores/``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("PYTHONWARNINGS", "ignore")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from build_cold import SHARES, family_name  # noqa: E402

DATA = Path("/tmp/rlmm-data")
MODELS = ("LightGCN", "VBPR", "FREEDOM", "RLMultimodalRec")
SEEDS = (2020, 2021, 2022)
K = 20
CACHE_VERSION = 2  # 2: the "cold-last" metrics (the same checkpoint with every cold item ranked last)


def member_folder(out: Path, base: str, share: int, label: str) -> Path:
    return out / family_name(base, share) / label


def train(args: argparse.Namespace) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    for base in args.datasets:
        for share in args.shares:
            name = family_name(base, share)
            if not (args.data / name / f"{name}.yaml").is_file():
                raise SystemExit(f"cold_curve.py: {args.data / name} is missing: run python bench/build_cold.py --family --out {args.data}")
            for model in args.models:
                label = args.label or model
                cmd = [
                    sys.executable, "-m", "recbole_rlmm.cli", "compare", "-d", name, "-m", model,
                    "--seeds", *map(str, args.seeds), "--out", str(member_folder(args.out, base, share, label)),
                    "--threads", "1",
                    "--set", "log_dir=None", "tensorboard_dir=None", f"data_path={args.data}", *args.set,
                ]
                print(f"== {name} {label}", flush=True)
                subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL if args.quiet else None,
                           stderr=subprocess.DEVNULL if args.quiet else None)


def _lists(scores, positives: list[np.ndarray], warm: np.ndarray):
    """Each user's top-K warm and top-K cold items: scores, hit flags, and the numbers of
    warm and cold positives (a full ranking for any cold-score offset can be rebuilt from them)."""
    import torch

    warm_t = torch.from_numpy(warm)
    k_cold = min(K, int((~warm[1:]).sum()))
    wv, wi = torch.topk(scores.masked_fill(~warm_t, -math.inf), K, dim=1)
    cold_scores = scores.masked_fill(warm_t, -math.inf)
    cold_scores[:, 0] = -math.inf
    if k_cold > 0:
        cv, ci = torch.topk(cold_scores, k_cold, dim=1)
    else:
        cv, ci = scores.new_full((scores.shape[0], 0), -math.inf), wi[:, :0]
    wh = np.zeros(tuple(wi.shape), dtype=bool)
    ch = np.zeros(tuple(ci.shape), dtype=bool)
    n_warm = np.zeros(len(positives))
    n_cold = np.zeros(len(positives))
    for j, pos in enumerate(positives):
        wh[j] = np.isin(wi[j].numpy(), pos)
        ch[j] = np.isin(ci[j].numpy(), pos)
        n_warm[j], n_cold[j] = warm[pos].sum(), (~warm[pos]).sum()
    return wv.numpy(), wh, cv.numpy(), ch, n_warm, n_cold


def _metrics_at(lists, offset: float) -> dict[str, float]:
    """Recall@K / NDCG@K over all, warm and cold positives when ``offset`` is added to every
    cold item's score."""
    wv, wh, cv, ch, n_warm, n_cold = lists
    values = np.concatenate([wv, cv + offset], axis=1)
    hits = np.concatenate([wh, ch], axis=1)
    is_cold = np.concatenate([np.zeros_like(wh), np.ones_like(ch)], axis=1)
    order = np.argsort(-values, axis=1, kind="stable")[:, :K]
    h = np.take_along_axis(hits, order, axis=1)
    c = np.take_along_axis(is_cold, order, axis=1)
    discount = 1.0 / np.log2(np.arange(2, K + 2))
    out = {}
    for part, n, mask in (("all", n_warm + n_cold, np.ones_like(h)), ("warm", n_warm, ~c), ("cold", n_cold, c)):
        users = n > 0
        if not users.any():
            continue
        got = h & mask
        idcg = np.array([discount[: int(min(x, K))].sum() for x in n[users]])
        out[f"{part} recall"] = float((got.sum(axis=1)[users] / n[users]).mean())
        out[f"{part} ndcg"] = float(((got * discount).sum(axis=1)[users] / idcg).mean())
    return out


def _cold_only(lists) -> dict[str, float]:
    """Recall@K of the cold positives ranked among the cold items only (borrowing's quality,
    whatever the offset)."""
    _, _, _, ch, _, n_cold = lists
    users = n_cold > 0
    return {"cold-only recall": float((ch.sum(axis=1)[users] / n_cold[users]).mean())} if users.any() else {}


def score_checkpoint(checkpoint: Path) -> dict[str, float]:
    """Full-ranking warm / cold / all metrics of a checkpoint on validation and test."""
    import torch

    import recbole_rlmm  # noqa: F401  (RecBole patches)
    from recbole_rlmm.runner import load_for_inference

    loaded = load_for_inference(checkpoint, device="cpu")
    model, dataset = loaded.model, loaded.dataset
    iid = dataset.iid_field
    warm = np.zeros(dataset.item_num, dtype=bool)
    warm[np.unique(loaded.train_data._dataset.inter_feat[iid].numpy())] = True
    result: dict[str, float] = {"cold items": float((~warm[1:]).sum())}
    lists = {}
    with torch.no_grad():
        for split, data in (("valid", loaded.valid_data), ("test", loaded.test_data)):
            parts = []
            for interaction, history, positive_u, positive_i in data:
                scores = model.full_sort_predict(interaction).view(-1, dataset.item_num)
                scores[:, 0] = -math.inf
                if history is not None:
                    scores[history] = -math.inf
                positives = [positive_i[positive_u == j].numpy() for j in range(scores.shape[0])]
                parts.append(_lists(scores, positives, warm))
            lists[split] = tuple(np.concatenate([p[i] for p in parts]) for i in range(6))
    for split, split_lists in lists.items():
        for key, value in _metrics_at(split_lists, 0.0).items():  # the model's own scores
            result[f"{split} {key}@{K}"] = value
        for key, value in _cold_only(split_lists).items():
            result[f"{split} {key}@{K}"] = value
        for key, value in _metrics_at(split_lists, -math.inf).items():  # cold handling off
            result[f"{split} cold-last {key}@{K}"] = value
    return result


def collect(out: Path) -> list[dict[str, Any]]:
    rows = []
    for record in sorted(out.glob("*-cold-*/*/runs/*.json")):
        stored = json.loads(record.read_text())
        run = {**stored, **stored["result"]}
        member, label = record.parents[2].name, record.parents[1].name
        checkpoint = run.get("checkpoint")
        if not checkpoint or not Path(checkpoint).is_file():
            continue
        cache = record.parents[1] / "scores" / (record.stem + ".json")
        cached = json.loads(cache.read_text()) if cache.is_file() else {}
        if cached.get("checkpoint") == checkpoint and cached.get("version") == CACHE_VERSION:
            scores = cached["scores"]
        else:
            scores = score_checkpoint(Path(checkpoint))
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp")
            tmp.write_text(json.dumps({"checkpoint": checkpoint, "version": CACHE_VERSION, "scores": scores}, indent=1))
            tmp.replace(cache)
        recbole = run["test_result"].get(f"recall@{K}")
        if recbole is not None and abs(recbole - scores[f"test all recall@{K}"]) > 2e-4:
            print(f"warning: {record}: RecBole's test recall@{K} {recbole} != {scores[f'test all recall@{K}']:.4f}", file=sys.stderr)
        base, share = member.rsplit("-cold-", 1)
        rows.append({"dataset": base, "share": int(share), "label": label, "seed": run["seed"],
                     "valid": run["best_valid_result"], "best_epoch": run.get("best_epoch"),
                     "epoch_seconds": run.get("train_seconds_per_epoch"), **scores})
    return rows


def _fmt(values: list[float]) -> str:
    if not values or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return ""
    mean = float(np.mean(values))
    return f"{mean:.4f} ± {float(np.std(values)):.4f}" if len(values) > 1 else f"{mean:.4f}"


def report(args: argparse.Namespace) -> None:
    rows = collect(args.out)
    if not rows:
        raise SystemExit(f"cold_curve.py: no finished runs under {args.out}")
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["dataset"], row["share"], row["label"]].append(row)
    columns = [
        ("valid R@20", lambda r: r["valid"].get("recall@20")),
        ("test R@20", lambda r: r["test all recall@20"]),
        ("test N@20", lambda r: r["test all ndcg@20"]),
        ("warm R@20", lambda r: r.get("test warm recall@20", math.nan)),
        ("warm N@20", lambda r: r.get("test warm ndcg@20", math.nan)),
        ("cold R@20", lambda r: r.get("test cold recall@20", math.nan)),
        ("cold-only R@20", lambda r: r.get("test cold-only recall@20", math.nan)),
        ("cold N@20", lambda r: r.get("test cold ndcg@20", math.nan)),
        ("warm R@20, cold last", lambda r: r.get("test cold-last warm recall@20", math.nan)),
        ("s/epoch", lambda r: r["epoch_seconds"]),
    ]
    for base in sorted({r["dataset"] for r in rows}):
        print(f"\n### {base}: full-ranking test metrics (mean ± std over seeds)\n")
        print("| cold share | model | seeds | " + " | ".join(c for c, _ in columns) + " |")
        print("| ---: | --- | ---: |" + " ---: |" * len(columns))
        for (b, share, label), runs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][2])):
            if b != base:
                continue
            cells = [_fmt([f(r) for r in runs]) for _, f in columns]
            print(f"| {share}% | {label} | {len(runs)} | " + " | ".join(cells) + " |")
    done_when(groups)
    if args.plot:
        plot(groups, args.plot)


def done_when(groups: dict[tuple[str, int, str], list[dict[str, Any]]]) -> None:
    """Issue 18's bar per dataset and share: RLMultimodalRec's 3-seed mean test Recall@20 against
    LightGCN's, and its warm-item Recall@20 against the same checkpoints with every cold item
    ranked last (cold handling off: the model's warm ranking untouched)."""
    print("\n### RLMultimodalRec against LightGCN and against itself with cold handling off\n")
    print("| dataset | cold share | test R@20 / LightGCN | warm R@20 / cold-last warm R@20 |")
    print("| --- | ---: | ---: | ---: |")
    for base, share in sorted({(b, s) for b, s, _ in groups}):
        ours, lgn = groups.get((base, share, "RLMultimodalRec")), groups.get((base, share, "LightGCN"))
        if not ours:
            continue
        mean = lambda runs, key: float(np.mean([r.get(key, math.nan) for r in runs]))  # noqa: E731
        ratio = lambda a, b: math.nan if math.isnan(a + b) else (a / b if b else math.inf)  # noqa: E731
        vs_lgn = ratio(mean(ours, "test all recall@20"), mean(lgn, "test all recall@20")) if lgn else math.nan
        warm = ratio(mean(ours, "test warm recall@20"), mean(ours, "test cold-last warm recall@20"))
        cell = lambda x: "" if math.isnan(x) else ("inf" if math.isinf(x) else f"{x:.3f}")  # noqa: E731
        print(f"| {base} | {share}% | {cell(vs_lgn)} | {cell(warm)} |")


def plot(groups: dict[tuple[str, int, str], list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bases = sorted({b for b, _, _ in groups})
    parts = (("all", "all held-out items"), ("warm", "warm items"), ("cold", "cold items"))
    fig, axes = plt.subplots(len(bases), len(parts), figsize=(4.2 * len(parts), 3.3 * len(bases)), squeeze=False)
    for i, base in enumerate(bases):
        labels = sorted({lab for b, _, lab in groups if b == base})
        for j, (part, title) in enumerate(parts):
            ax = axes[i][j]
            for label in labels:
                shares = sorted(s for b, s, lab in groups if b == base and lab == label)
                xs, ys, es = [], [], []
                for share in shares:
                    values = [r.get(f"test {part} recall@20", math.nan) for r in groups[base, share, label]]
                    values = [v for v in values if not math.isnan(v)]
                    if values:
                        xs.append(share)
                        ys.append(np.mean(values))
                        es.append(np.std(values))
                if xs:
                    ax.errorbar(xs, ys, yerr=es, marker="o", ms=3, capsize=2, label=label)
            ax.set_xscale("symlog", linthresh=2)
            ax.set_xticks(list(SHARES))
            ax.set_xticklabels([f"{s}%" for s in SHARES], fontsize=7)
            ax.set_title(f"{base}: {title}", fontsize=9)
            ax.set_xlabel("share of held-out interactions on cold items", fontsize=8)
            ax.set_ylabel("test Recall@20 (full ranking)", fontsize=8)
            ax.grid(alpha=0.3)
        axes[i][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nplot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the models on every family member (resumable)")
    t.add_argument("--datasets", nargs="+", choices=("movielens", "scientific"), default=["movielens", "scientific"])
    t.add_argument("--shares", nargs="+", type=int, default=list(SHARES))
    t.add_argument("--models", nargs="+", default=list(MODELS))
    t.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    t.add_argument("--label", default=None, help="store the runs under this label instead of the model's name")
    t.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides of these runs")
    t.add_argument("--data", type=Path, default=DATA)
    t.add_argument("--out", type=Path, default=Path("results/cold_curve"))
    t.add_argument("--quiet", action="store_true", help="only the progress lines")
    r = sub.add_parser("report", help="warm / cold / all metrics of every finished run, and the plot")
    r.add_argument("--out", type=Path, default=Path("results/cold_curve"))
    r.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "train":
        if args.label and len(args.models) > 1:
            parser.error("--label names the runs of one model: give one model with it")
        train(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
