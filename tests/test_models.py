"""The model contract (recbole_rlmm/model/abstract.py), checked for every plugin model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import build_model
from datagen import base_config
from reference import first_batch, total_loss

from recbole_rlmm.registry import plugin_models
from recbole_rlmm.runner import run_recbole_rlmm

MODELS = plugin_models()


def _all_pairs(net: Any, users: list[int]) -> Any:
    from recbole.data.interaction import Interaction

    u = torch.tensor(users).repeat_interleave(net.n_items)
    i = torch.arange(net.n_items).repeat(len(users))
    return Interaction({net.USER_ID: u, net.ITEM_ID: i})


@pytest.mark.parametrize("model", MODELS)
def test_forward_backward(tiny: Path, model: str) -> None:
    net, _, train, *_ = build_model(model, tiny)
    net.train()
    terms = net.calculate_loss(first_batch(net, train))
    assert isinstance(terms, tuple) and terms  # RecBole's trainer logs each term
    loss = total_loss(terms)
    assert torch.isfinite(loss).all()
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("model", MODELS)
def test_full_sort_equals_predict(tiny: Path, model: str) -> None:
    from recbole.data.interaction import Interaction

    net, *_ = build_model(model, tiny)
    net.eval()
    users = [1, 2, 5]
    with torch.no_grad():
        full = net.full_sort_predict(Interaction({net.USER_ID: torch.tensor(users)}))
        pairs = net.predict(_all_pairs(net, users))
    torch.testing.assert_close(full.view(len(users), -1), pairs.view(len(users), -1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model", MODELS)
def test_checkpoint_reload_gives_identical_scores(tiny: Path, tmp_path: Path, model: str) -> None:
    from recbole.data.interaction import Interaction

    net, *_ = build_model(model, tiny)
    with torch.no_grad():  # move weights away from their initial values
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    net.eval()
    users = Interaction({net.USER_ID: torch.tensor([1, 3])})
    before = net.full_sort_predict(users)
    torch.save({"state_dict": net.state_dict(), "other_parameter": net.other_parameter()}, tmp_path / "m.pth")
    fresh, *_ = build_model(model, tiny)
    ckpt = torch.load(tmp_path / "m.pth", weights_only=False)
    fresh.load_state_dict(ckpt["state_dict"])
    fresh.load_other_parameter(ckpt["other_parameter"])
    fresh.eval()
    torch.testing.assert_close(fresh.full_sort_predict(users), before)


@pytest.mark.parametrize("model", [*MODELS, "BPR", "LightGCN"])
def test_end_to_end_two_epochs(tiny: Path, model: str) -> None:
    result = run_recbole_rlmm(model, config_dict=base_config(tiny), saved=True)
    assert Path(result["checkpoint"]).is_file()
    assert set(result) >= {"best_valid_score", "valid_score_bigger", "best_valid_result", "test_result"}
    assert result["epochs_run"] == 2 and 0 <= result["best_epoch"] <= 1
    assert 0 <= result["test_result"]["recall@20"] <= 1


def test_checkpoint_names_are_unique_within_one_second(tiny: Path) -> None:
    from recbole_rlmm.config import create_config
    from recbole_rlmm.runner import unique_checkpoint_path

    config = create_config("BPR", config_dict=base_config(tiny))
    names = {unique_checkpoint_path(config) for _ in range(20)}
    assert len(names) == 20 and all("BPR-tiny-" in n for n in names)


@pytest.mark.parametrize("model", MODELS)
def test_training_reads_self_training_only(tiny: Path, model: str) -> None:
    """Evaluation mode scores deterministically and drops nothing; a training batch drops the
    full-sort cache."""
    from recbole.data.interaction import Interaction

    net, _, train, *_ = build_model(model, tiny)
    users = Interaction({net.USER_ID: torch.tensor([1, 2])})
    net.eval()
    with torch.no_grad():
        first = net.forward()
        again = net.forward()
        net.full_sort_predict(users)
    for a, b in zip(first[:2], again[:2], strict=True):
        torch.testing.assert_close(a, b)
    assert net.restore_user_e is not None
    net.train()
    net.calculate_loss(first_batch(net, train))
    assert net.restore_user_e is None and net.restore_item_e is None


@pytest.mark.parametrize("model", MODELS)
def test_pre_epoch_runs_once_per_training_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """RecBole's own trainer drives the hook: once per epoch, in training mode only."""
    from datagen import make_dataset

    from recbole_rlmm.registry import get_model

    cls = get_model(model)
    original = cls.pre_epoch
    calls: list[bool] = []

    def counted(self: Any) -> Any:
        calls.append(self.training)
        return original(self)

    monkeypatch.setattr(cls, "pre_epoch", counted)
    root = tmp_path / "data"
    make_dataset(root, n_users=120, n_items=50)
    run_recbole_rlmm(model, config_dict=base_config(root, epochs=3, train_batch_size=64), saved=False)
    assert calls == [True, True, True]  # several batches per epoch, one call each
