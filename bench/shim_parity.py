"""The torch_geometric / torch_scatter stand-ins of bench/reference_parity.py against the real
torch_geometric: the references' own message-passing layers, run once on each, must give the
same outputs and gradients; their seconds show whether the stand-in slows a reference down.

    pip install torch_geometric      # pure Python; its optional compiled extras are not needed
    OMP_NUM_THREADS=1 python bench/shim_parity.py --mmrec /path/to/MMRec --mentor /path/to/MENTOR \\
        [--work /tmp/rlmm-shims] [--repeats 10]

For each reference the script prepares the fixed copy of ``src/`` that reference_parity.py runs
(:func:`reference_parity.prepare_reference`, stand-ins included) and a second copy without the
stand-ins, then imports the reference's model module in one process per copy and runs, on the
user-item graph of ``dataset/movielens-mm`` (the training interactions in both directions, as
the references build it):

- MENTOR's ``Base_gcn`` (sum aggregation with symmetric degree normalisation, through
  ``remove_self_loops`` and ``degree``), two layers as its ``GCN`` stacks them, 64-d;
- MMGCN's ``BaseModel`` (a weight, then mean aggregation, MMRec's setting; and sum), 256-d;
- ``scatter_add`` as MMRec's and MENTOR's ``get_sparse_laplacian`` call it (the stand-in for
  torch_scatter against torch_geometric's own ``scatter(..., reduce="sum")``, torch_scatter
  itself needing a compiler and a CUDA-matched build);
- ``add_self_loops`` (imported by both references).

Inputs and weights come from the same seed in both processes. Printed: the largest absolute
difference of each output and gradient, and milliseconds per forward + backward pass (median of
``--repeats``) with each implementation, one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

#: reference -> (module with the layer, what it is checked on)
CASES = {"mentor": "models.mentor", "mmrec": "models.mmgcn"}


def graph() -> tuple[np.ndarray, int]:
    """movielens-mm's training graph, users then items, both directions (as the references)."""
    import pandas as pd

    train = pd.read_csv(REPO / "dataset" / "movielens-mm" / "movielens-mm.train.inter", sep="\t", dtype=str)
    users = {u: k for k, u in enumerate(sorted(set(train.iloc[:, 0])))}
    items = {t: k for k, t in enumerate(sorted(set(train.iloc[:, 1])))}
    u = train.iloc[:, 0].map(users).to_numpy()
    i = train.iloc[:, 1].map(items).to_numpy() + len(users)
    edges = np.stack([np.concatenate([u, i]), np.concatenate([i, u])]).astype(np.int64)
    return edges, len(users) + len(items)


# ---------------------------------------------------------------------------- one process per copy
def worker(src: Path, reference: str, edges_file: Path, n: int, repeats: int, out: Path) -> None:
    sys.path.insert(0, str(src))
    import importlib

    import torch

    torch.set_num_threads(1)
    module = importlib.import_module(CASES[reference])
    import torch_geometric
    from torch_geometric.utils import add_self_loops

    stand_in = (src / "torch_geometric").is_dir()
    edge_index = torch.from_numpy(np.load(edges_file))
    arrays: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}

    def timed(name: str, step: Any) -> None:
        times = []
        for k in range(repeats + 1):
            start = time.perf_counter()
            step(k == 0)
            if k:  # the first pass warms up
                times.append(time.perf_counter() - start)
        seconds[name] = statistics.median(times)

    def layers(name: str, make: Any, dim: int) -> None:
        torch.manual_seed(0)
        layer = make()
        x0 = torch.nn.functional.normalize(torch.randn(n, dim))
        weight = torch.randn(n, dim)

        def step(keep: bool) -> None:
            layer.zero_grad()
            x = x0.clone().requires_grad_(True)
            h = layer(x, edge_index)
            h1 = layer(h, edge_index)
            ((h + h1) * weight).sum().backward()
            if keep:
                arrays[f"{name}/output"] = (h + h1).detach().numpy()
                arrays[f"{name}/grad x"] = x.grad.numpy()
                for p_name, p in layer.named_parameters():
                    arrays[f"{name}/grad {p_name}"] = p.grad.numpy()

        timed(name, step)

    if reference == "mentor":
        layers("MENTOR Base_gcn (add), 2 layers", lambda: module.Base_gcn(64, 64, aggr="add"), 64)
    else:
        for aggr in ("mean", "add"):
            layers(f"MMGCN BaseModel ({aggr}), 2 layers", lambda aggr=aggr: module.BaseModel(256, 256, aggr=aggr), 256)

        torch.manual_seed(0)
        weights = torch.rand(edge_index.shape[1])
        if stand_in:
            from torch_scatter import scatter_add

            def total() -> Any:
                return scatter_add(weights, edge_index[0], dim=0, dim_size=n)
        else:
            from torch_geometric.utils import scatter

            def total() -> Any:
                return scatter(weights, edge_index[0], dim=0, dim_size=n, reduce="sum")

        arrays["scatter_add (get_sparse_laplacian's degrees)/output"] = total().numpy()
        timed("scatter_add (get_sparse_laplacian's degrees)", lambda _keep: total())
    looped, _ = add_self_loops(edge_index, num_nodes=n)
    arrays["add_self_loops/output"] = looped.numpy()

    np.savez(out, **arrays)
    out.with_suffix(".json").write_text(json.dumps({
        "seconds": seconds, "torch_geometric": "stand-in" if stand_in else torch_geometric.__version__,
    }))


# ---------------------------------------------------------------------------- the comparison
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--mmrec", type=Path, help="MMRec (enoche/MMRec): MMGCN's layer")
    parser.add_argument("--mentor", type=Path, help="MENTOR (Jinfeng-Xu/MENTOR): its Base_gcn")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rlmm-shims"))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)  # src reference edges n out
    args = parser.parse_args(argv)
    if args.worker:
        src, reference, edges_file, n, out = args.worker
        worker(Path(src), reference, Path(edges_file), int(n), args.repeats, Path(out))
        return 0
    paths = {"mmrec": args.mmrec, "mentor": args.mentor}
    if not any(paths.values()):
        parser.error("give --mmrec and/or --mentor (checkouts of the references)")
    probe = subprocess.run([sys.executable, "-c", "import torch_geometric"], capture_output=True, text=True, cwd="/")
    if probe.returncode != 0:
        raise SystemExit(f"bench/shim_parity.py: torch_geometric is not importable ({probe.stderr.strip().splitlines()[-1]}); "
                         "fix: pip install torch_geometric (pure Python)")

    import reference_parity as parity

    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    edges, n = graph()
    np.save(args.work / "edges.npy", edges)
    print(f"graph: dataset/movielens-mm training interactions, {n} nodes, {edges.shape[1]} directed edges; "
          f"median of {args.repeats} forward + backward passes, one thread")
    rows = []
    for reference, path in paths.items():
        if path is None:
            continue
        ref = parity.prepare_reference(reference, path, args.work / "stand-in")
        real = args.work / "real" / reference / "src"
        if real.exists():
            shutil.rmtree(real)
        shutil.copytree(ref.src, real, ignore=shutil.ignore_patterns("torch_geometric", "torch_scatter.py"))
        results = {}
        for side, src in (("stand-in", ref.src), ("real", real)):
            out = args.work / f"{reference}-{side}.npz"
            done = subprocess.run(
                [sys.executable, __file__, "--repeats", str(args.repeats), "--worker", str(src), reference,
                 str(args.work / "edges.npy"), str(n), str(out)],
                capture_output=True, text=True, cwd=src, env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            if done.returncode != 0:
                raise SystemExit(f"{reference} ({side}) failed:\n{done.stderr[-3000:]}")
            results[side] = (np.load(out), json.loads(out.with_suffix(".json").read_text()))
        (a, meta_a), (b, meta_b) = results["stand-in"], results["real"]
        for key in a.files:
            case, what = key.split("/", 1)
            diff = float(np.abs(a[key].astype(np.float64) - b[key].astype(np.float64)).max())
            scale = float(np.abs(b[key]).max())
            ms_a, ms_b = meta_a["seconds"].get(case), meta_b["seconds"].get(case)
            timing = f"{ms_a * 1e3:.1f} / {ms_b * 1e3:.1f} ({ms_a / ms_b:.2f}x)" if what == "output" and ms_a and ms_b else ""
            rows.append((case, what, diff, scale, a[key].shape == b[key].shape, timing))
        print(f"{reference}: stand-in against torch_geometric {meta_b['torch_geometric']}")
    print("\n| layer | tensor | max abs difference | max abs value | same shape | ms stand-in / real |")
    print("|---|---|---:|---:|---|---|")
    worst = 0.0
    for case, what, diff, scale, same, timing in rows:
        print(f"| {case} | {what} | {diff:.2e} | {scale:.3g} | {'yes' if same else 'NO'} | {timing} |")
        worst = max(worst, diff / max(scale, 1e-12)) if same else float("inf")
    print(f"\nlargest difference relative to the tensor's largest value: {worst:.2e}")
    return 0 if worst < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
