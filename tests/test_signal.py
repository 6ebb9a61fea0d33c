"""The content check (recbole_rlmm/model/signal.py) and the choices RLMultimodalRec makes with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import build_model
from datagen import make_cold_dataset

from recbole_rlmm.model import signal
from recbole_rlmm.model.signal import (
    ModalitySignal,
    modality_signal,
    probe_and_history,
    validation_probe,
)


def _world(n_users: int = 400, n_items: int = 300, informative: bool = True, seed: int = 0):
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
    if informative:
        assert result.auc > 0.6 and result.informative
    else:
        assert abs(result.auc - 0.5) < 0.05 and (not result.conclusive or not result.informative)


def test_validation_pairs_replace_the_training_hold_out() -> None:
    _, inter = _world()
    with validation_probe(np.array([1, 2]), np.array([3, 4])):
        history, users, items, source = probe_and_history(inter, seed=0)
    assert source == "validation" and users.tolist() == [1, 2] and history.nnz == inter.nnz


def test_too_few_pairs_keep_the_modality() -> None:
    result = ModalitySignal(auc=0.45, low=0.40, pairs=10, source="validation")
    assert not result.conclusive and result.informative and "inconclusive" in str(result)


def test_rlmultimodalrec_drops_modalities_without_signal(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    monkeypatch.setattr(signal, "MIN_PAIRS", 10)
    for modality in ("image", "text"):  # pure-noise features
        path = tiny / "tiny" / f"tiny.{modality}.npy"
        noise = np.random.default_rng(1).normal(size=np.load(path).shape).astype(np.float32)
        noise[np.load(path).sum(axis=1) == 0] = 0.0
        np.save(path, noise)
    net, *_ = build_model("RLMultimodalRec", tiny, item_graph_k=3)
    assert set(net.content_signal) == {"image", "text"}
    dropped = [m for m, sig in net.content_signal.items() if not sig.informative]
    assert net.modalities == [m for m in ("image", "text") if m not in dropped]
    if not net.modalities:
        assert net.item_graphs == [] and "ID only" in net.content_summary()
    net_off, *_ = build_model("RLMultimodalRec", tiny, content_check=False)
    assert net_off.modalities == ["image", "text"] and net_off.content_signal == {}
