"""The content check (recbole_rlmm/plan/signal.py) and the run plan that uses it
(recbole_rlmm/plan/plan.py): decisions made from the data once, before the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import build_model

from recbole_rlmm.plan import signal
from recbole_rlmm.plan.plan import PLAN_KEY, apply_plan, make_plan
from recbole_rlmm.plan.signal import ModalitySignal, modality_signal, probe_and_history


def _world(n_users: int = 1000, n_items: int = 300, informative: bool = True, seed: int = 0):
    """Users with a taste vector pick items whose latent vector matches it; features are the
    latent vectors plus noise (informative) or pure noise."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_items, 8))
    taste = rng.normal(size=(n_users, 8))
    rows, cols = [], []
    for u in range(n_users):
        p = np.exp(2 * latent @ taste[u])
        picks = rng.choice(n_items, size=12, replace=False, p=p / p.sum())
        rows += [u] * 12
        cols += picks.tolist()
    x = latent + 0.5 * rng.normal(size=latent.shape) if informative else rng.normal(size=(n_items, 8))
    inter = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
    return torch.tensor(x, dtype=torch.float32), inter


@pytest.mark.parametrize("informative", [True, False])
def test_auc_separates_signal_from_noise(informative: bool) -> None:
    x, inter = _world(informative=informative)
    history, users, items, source = probe_and_history(inter, seed=0)
    assert source == "training hold-out" and len(users) > signal.MIN_PAIRS / 2
    result = modality_signal(x, torch.ones(len(x), dtype=torch.bool), history, users, items, seed=0)
    assert result.conclusive  # enough pairs: the verdict below is the test's, not a fallback
    if informative:
        assert result.auc > 0.6 and result.low > 0.5 and result.informative
    else:
        assert abs(result.auc - 0.5) < 0.05 and result.low <= 0.5 and not result.informative


def test_validation_pairs_replace_the_training_hold_out() -> None:
    _, inter = _world()
    history, users, items, source = probe_and_history(inter, seed=0, validation=(np.array([1, 2]), np.array([3, 4])))
    assert source == "validation" and users.tolist() == [1, 2] and history.nnz == inter.nnz


def test_too_few_pairs_keep_the_modality() -> None:
    result = ModalitySignal(auc=0.45, low=0.40, pairs=10, source="validation")
    assert not result.conclusive and result.informative and "inconclusive" in str(result)


def _plan(root: Path, **extra: object) -> tuple[object, object, object]:
    """The run plan of RLMultimodalRec on a generated dataset: (plan, config, train dataloader)."""
    from datagen import base_config
    from recbole.data import create_dataset, data_preparation

    from recbole_rlmm.config import create_config
    from recbole_rlmm.model.rlmultimodalrec import RLMultimodalRec

    config = create_config("RLMultimodalRec", config_dict=base_config(root, **extra))
    train, valid, _ = data_preparation(config, create_dataset(config))
    return make_plan(config, RLMultimodalRec, train._dataset, valid._dataset), config, train


def test_the_plan_drops_noise_and_keeps_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One modality is the dataset's real content, the other pure noise: the plan keeps the
    first and drops the second; the model then reads only the kept one."""
    from datagen import make_dataset

    monkeypatch.setattr(signal, "MIN_PAIRS", 20)
    root = tmp_path / "data"
    make_dataset(root, n_users=200, n_items=60, per_user=12)
    folder = root / "tiny"
    noise = np.random.default_rng(1).normal(size=np.load(folder / "tiny.text.npy").shape).astype(np.float32)
    np.save(folder / "tiny.text.npy", noise)
    plan, config, train = _plan(root, item_graph_k=3)
    assert plan.content_check["image"]["informative"] and not plan.content_check["text"]["informative"]
    assert plan.content_check["image"]["pairs"] >= 20 and plan.content_check["text"]["low"] <= 0.5
    assert plan.use_modalities == ["image"]
    apply_plan(config, plan)
    assert config["use_modalities"] == ["image"] and config[PLAN_KEY]["use_modalities"] == ["image"]
    net = config["model"] and __import__("recbole_rlmm.model.rlmultimodalrec", fromlist=["x"]).RLMultimodalRec(
        config, train._dataset
    )
    assert net.modalities == ["image"] and net.dropped_modalities == ["text"]
    assert "left out: text" in net.content_summary()


def test_the_plan_of_an_all_noise_dataset_is_the_id_backbone(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signal, "MIN_PAIRS", 10)
    for modality in ("image", "text"):  # pure-noise features
        path = tiny / "tiny" / f"tiny.{modality}.npy"
        noise = np.random.default_rng(1).normal(size=np.load(path).shape).astype(np.float32)
        noise[np.load(path).sum(axis=1) == 0] = 0.0
        np.save(path, noise)
    plan, config, train = _plan(tiny, item_graph_k=3)
    informative = [m for m, v in plan.content_check.items() if v["informative"]]
    assert plan.use_modalities == informative
    apply_plan(config, plan)
    net, *_ = build_model("RLMultimodalRec", tiny, item_graph_k=3, use_modalities=plan.use_modalities)
    assert net.modalities == informative
    if not informative:
        assert net.item_graphs == [] and "ID only" in net.content_summary()
    plan_off, *_ = _plan(tiny, content_check=False)
    assert plan_off.use_modalities is None and plan_off.content_check == {}
    net_off, *_ = build_model("RLMultimodalRec", tiny, content_check=False)
    assert net_off.modalities == ["image", "text"]


def test_a_loaded_checkpoint_uses_the_stored_plan(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan runs once, in the run; loading the checkpoint rebuilds the model from the stored
    decisions and never runs the content check again."""
    from datagen import base_config

    from recbole_rlmm.plan import plan as plan_module
    from recbole_rlmm.runner import load_for_inference, run_recbole_rlmm

    result = run_recbole_rlmm("RLMultimodalRec", "tiny", config_dict=base_config(tiny, epochs=1, item_graph_k=3))
    stored = result["config"][PLAN_KEY]
    assert set(stored["content_check"]) == {"image", "text"}

    def no_check(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("the content check ran again")

    monkeypatch.setattr(plan_module, "modality_signal", no_check)
    monkeypatch.setattr(signal, "modality_signal", no_check)
    loaded = load_for_inference(result["checkpoint"])
    assert loaded.config[PLAN_KEY] == stored and loaded.model.modalities == stored["use_modalities"]
