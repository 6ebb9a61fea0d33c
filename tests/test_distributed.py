"""Multi-process training with RecBole's DDP on the CPU (gloo): two real processes on tiny data."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import build_model
from datagen import base_config

pytestmark = pytest.mark.slow  # many trainings or processes: `-m "not slow"` skips them

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_state(rank: int, root: str, port: int, queue: Any) -> None:
    """Train 2 epochs as one rank of 2 through our runner's trainer; report a digest of the
    weights and of the last pruned graph."""
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    import recbole_rlmm  # noqa: F401
    from recbole_rlmm.config import create_config
    from recbole_rlmm.registry import get_model
    from recbole_rlmm.runner.distributed import leave_process_group
    from recbole_rlmm.runner.trainer import runner_trainer_class

    torch.set_num_threads(1)
    extra = {"world_size": 2, "nproc": 2, "ip": "127.0.0.1", "port": str(port), "offset": 0, "local_rank": rank}
    config = create_config("RLMultimodalRec", config_dict=base_config(Path(root), **extra))
    init_seed(config["seed"], config["reproducibility"])
    train, valid, _ = data_preparation(config, create_dataset(config))
    init_seed(config["seed"] + rank, config["reproducibility"])  # ranks differ, as in RecBole
    model = get_model("RLMultimodalRec")(config, train._dataset)
    trainer = runner_trainer_class(config["MODEL_TYPE"], config["model"])(config, model)  # our runner's
    trainer.fit(train, valid, saved=False)
    digest = hashlib.sha1()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().numpy().tobytes())
    graph = model.pruned_adj.coalesce()
    queue.put((rank, digest.hexdigest(), graph.indices().numpy().tobytes(), len(train)))
    del trainer, model
    leave_process_group()  # as the runner does: exits cleanly, never a SIGABRT at shutdown


def test_two_ranks_keep_identical_weights_and_graphs(tiny: Path) -> None:
    """Each rank trains on its half of the batches; DDP averages gradients, so the weights
    must stay identical, and edge dropout must prune the same graph on both ranks."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    port = _free_port()
    procs = [ctx.Process(target=_rank_state, args=(r, str(tiny), port, queue)) for r in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
        assert p.exitcode == 0
    states = dict((r, rest) for r, *rest in (queue.get() for _ in procs))
    assert states[0][0] == states[1][0]  # weights
    assert states[0][1] == states[1][1]  # this epoch's pruned graph


def test_run_command_with_two_processes(tiny: Path, tmp_path: Path) -> None:
    port = _free_port()
    out = subprocess.run(
        [sys.executable, str(REPO / "run_recbole_rlmm.py"), "-d", "tiny", f"--data_path={tiny}",
         "--nproc", "2", "--port", str(port), "--epochs=2", "--embedding_size=8",
         "--train_batch_size=64", "--topk=[5,10,20]", "--state=ERROR"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RLMultimodalRec on tiny" in out.stdout and "2 processes" in out.stdout
    assert "recall" in out.stdout


@pytest.mark.parametrize("model", ["RLMultimodalRec", "FREEDOM"])
def test_epoch_draws_ignore_the_global_random_state(tiny: Path, model: str) -> None:
    """Ranks seed torch differently (seed + rank); the epoch's pruning must not depend on it."""
    key = "edge_dropout" if model == "RLMultimodalRec" else "dropout"
    graphs = []
    for global_seed in (1, 2):
        net, *_ = build_model(model, tiny, **{key: 0.5})
        torch.manual_seed(global_seed)
        net.train()
        net.start_epoch()
        graphs.append((net.pruned_adj if model == "RLMultimodalRec" else net.masked_adj).coalesce().indices())
        net.train()  # the next epoch draws anew
        net.start_epoch()
        graphs.append((net.pruned_adj if model == "RLMultimodalRec" else net.masked_adj).coalesce().indices())
    assert torch.equal(graphs[0], graphs[2]) and torch.equal(graphs[1], graphs[3])
    assert not torch.equal(graphs[0], graphs[1])
