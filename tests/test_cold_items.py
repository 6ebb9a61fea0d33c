"""Cold items in full ranking: borrowed vectors, and their score offset chosen on validation."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from conftest import build_model
from datagen import make_cold_dataset

from recbole_rlmm.runner.calibration import calibrate_cold_offset, parse_metric

COLD = ("i30", "i31", "i32", "i33", "i34")


# --------------------------------------------------------------------------- the choice of offset
class _Model:
    """Scores of 4 users over items 0..9 (item 0 is padding); items 7, 8, 9 are cold."""

    def __init__(self, scores: torch.Tensor) -> None:
        self.raw = scores
        self.n_items = scores.shape[1]
        self.cold_items = torch.tensor([7, 8, 9])
        self.cold_last = -1.0e4
        self.offset = 123.0
        self.device = torch.device("cpu")
        self.training = False

    def set_cold_offset(self, value: float) -> None:
        self.offset = float(value)

    def eval(self) -> None:
        self.training = False

    def train(self, mode: bool = True) -> None:
        self.training = mode

    def full_sort_predict(self, interaction: Any) -> torch.Tensor:
        scores = self.raw[interaction.users].clone()
        scores[:, self.cold_items] += self.offset
        return scores.reshape(-1)


class _Batch(SimpleNamespace):
    def to(self, _device: Any) -> _Batch:
        return self


def _valid(positives: list[list[int]]) -> list[tuple[Any, Any, torch.Tensor, torch.Tensor]]:
    users = torch.arange(len(positives))
    pos_u = torch.tensor([u for u, items in enumerate(positives) for _ in items])
    pos_i = torch.tensor([i for items in positives for i in items])
    return [(_Batch(users=users), None, pos_u, pos_i)]


def _recall_at(scores: torch.Tensor, positives: list[list[int]], k: int, offset: float) -> float:
    s = scores.clone()
    s[:, [7, 8, 9]] += offset
    s[:, 0] = -math.inf
    top = s.topk(k, dim=1).indices
    return float(np.mean([len(set(top[u].tolist()) & set(p)) / len(p) for u, p in enumerate(positives)]))


SCORES = torch.tensor(
    [
        [0.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 1.5, 0.2, 0.1],
        [0.0, 1.0, 4.0, 3.0, 5.0, 2.0, 0.5, 0.3, 2.5, 0.1],
        [0.0, 3.0, 1.0, 5.0, 2.0, 4.0, 0.5, 0.4, 0.2, 0.6],
        [0.0, 2.0, 5.0, 1.0, 3.0, 4.0, 0.5, 0.9, 0.8, 0.7],
    ]
)


def test_no_cold_positive_keeps_cold_items_last() -> None:
    model = _Model(SCORES)
    positives = [[1], [4], [3], [2]]
    result = calibrate_cold_offset(model, _valid(positives), "Recall@2")
    assert result is not None and result.offset == model.cold_last == model.offset
    assert result.cold_share == 0 and "rank last" in str(result)


def test_the_offset_is_the_best_for_the_valid_metric() -> None:
    model = _Model(SCORES)
    positives = [[1, 7], [8], [3, 9], [2, 5]]  # cold positives, some worth a top-2 slot
    result = calibrate_cold_offset(model, _valid(positives), "Recall@2")
    assert result is not None and result.offset == model.offset != model.cold_last
    best = max(_recall_at(SCORES, positives, 2, b) for b in np.linspace(-6, 6, 2401))
    assert result.value == pytest.approx(best)
    assert result.value == pytest.approx(_recall_at(SCORES, positives, 2, result.offset))
    assert result.value > result.value_last == pytest.approx(_recall_at(SCORES, positives, 2, -1e4))
    assert 0 < result.cold_slots < 1 and result.cold_share == pytest.approx(3 / 7)


def test_all_cold_validation_puts_cold_items_first() -> None:
    model = _Model(SCORES)
    positives = [[7], [8], [9], [7, 8]]
    result = calibrate_cold_offset(model, _valid(positives), "NDCG@3")
    assert result is not None and result.metric == "ndcg@3" and result.value == 1.0 and result.value_last == 0.0
    assert result.cold_slots > 0.5  # the lowest offset that ranks every cold positive first


@pytest.mark.parametrize("k_cold", [0, 3, 5])
@pytest.mark.parametrize("name", ["recall", "precision", "hit"])
def test_counting_metrics_match_the_sorted_merge(name: str, k_cold: int) -> None:
    """The offset grid's counting shortcut gives what sorting the merged lists gives, ties and
    unscorable (-inf) entries included."""
    from recbole_rlmm.runner.calibration import _Lists

    rng = np.random.default_rng(7)
    k, users = 5, 300
    warm = -np.sort(-rng.integers(0, 6, (users, k)).astype(float), axis=1)  # many ties
    warm[rng.random(users) < 0.2, -2:] = -math.inf  # users with too few candidates
    cold = -np.sort(-rng.integers(0, 6, (users, k_cold)).astype(float), axis=1)
    if k_cold:
        cold[rng.random(users) < 0.2, -1] = -math.inf
    lists = _Lists(warm, rng.random((users, k)) < 0.3, cold, rng.random((users, k_cold)) < 0.3,
                   rng.integers(1, 8, users), rng.integers(0, 2, users))
    for offset in (-10.0, -2.0, -1.0, 0.0, 0.5, 1.0, 3.0, 10.0):
        fast = lists.value(name, k, offset)
        lists_sorted = _Lists(*(x for x in (warm, lists.warm_hits, cold, lists.cold_hits, lists.n_pos, lists.n_cold_pos)))
        lists_sorted.warm_scores = np.concatenate([warm, np.full((users, 1), -math.inf)], axis=1)  # not k wide
        lists_sorted.warm_hits = np.concatenate([lists.warm_hits, np.zeros((users, 1), dtype=bool)], axis=1)
        assert fast == pytest.approx(lists_sorted.value(name, k, offset)), offset


@pytest.mark.parametrize(
    ("metric", "expected"),
    [("Recall@20", ("recall", 20)), ("ndcg@10", ("ndcg", 10)), ("MRR@5", ("mrr", 5)), ("AUC", ("recall", 20)),
     ("GAUC@10", ("recall", 10))],
)
def test_parse_metric(metric: str, expected: tuple[str, int]) -> None:
    assert parse_metric(metric) == expected


# --------------------------------------------------------------------------- the model's cold items
@pytest.fixture
def cold(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    make_cold_dataset(root)
    return root


def _cold_ids(ds: Any) -> torch.Tensor:
    return torch.tensor([int(ds.token2id(ds.iid_field, t)) for t in COLD])


def test_cold_items_rank_last_until_calibrated_and_warm_scores_are_untouched(cold: Path) -> None:
    net, _, train, *_ = build_model("RLMultimodalRec", cold, name="cold", item_graph_k=3)
    net.eval()
    ids = _cold_ids(train._dataset)
    assert sorted(net.cold_items.tolist()) == sorted(ids.tolist())
    assert net.calibrate_cold and float(net.cold_offset) == net.cold_last
    with torch.no_grad():
        out = net.forward()
        scores = out.user @ out.item.T
    warm = torch.ones(net.n_items, dtype=torch.bool)
    warm[ids] = False
    warm[0] = False
    assert scores[:, ids].max() < scores[:, warm].min()  # last, for every user
    # the offset is one more dimension: 1 for users, the offset for cold items, 0 for warm ones
    assert out.item.shape[1] == net.embedding_size + 1 and bool((out.user[:, -1] == 1).all())
    assert bool((out.item[warm, -1] == 0).all()) and bool((out.item[ids, -1] == net.cold_last).all())
    net.set_cold_offset(0.5)
    with torch.no_grad():
        moved = net.forward()
    assert torch.equal(moved.item[warm], out.item[warm]) and torch.equal(moved.user, out.user)
    assert torch.allclose(moved.item[ids, :-1], out.item[ids, :-1]) and bool((moved.item[ids, -1] == 0.5).all())


def test_a_cold_item_borrows_from_its_content_neighbours(cold: Path) -> None:
    net, _, train, *_ = build_model("RLMultimodalRec", cold, name="cold", item_graph_k=3, cold_borrow_k=2)
    net.eval()
    ids = _cold_ids(train._dataset)
    with torch.no_grad():
        base = net.forward()
        graphs = [g.to_dense() for g in net.borrow_graphs]
        for g in graphs:  # cold rows: 2 warm neighbours of 1/2 each; warm rows empty
            assert torch.allclose(g[ids].sum(dim=1), torch.ones(len(ids)))
            assert int((g[ids] > 0).sum(dim=1).max()) == 2 and g[:, ids].abs().sum() == 0
            assert g[net.warm_items].abs().sum() == 0
        # by hand: sum_m share_m(c) * mean of its modality-m neighbours' final vectors + content
        fused, shares = net.content()
    for c in ids.tolist():
        expected = net.content_scale * fused[c]
        for m, g in enumerate(graphs):
            neighbours = g[c].nonzero().view(-1)
            expected = expected + shares[m, c] * base.item[neighbours, :-1].mean(dim=0)
        assert torch.allclose(base.item[c, :-1], expected, atol=1e-6)
    # without borrowing a cold item keeps what the graph gives it (its content at layer 0 and
    # the gated item graph); the same weights (same seed) with borrowing replace that vector
    net0, *_ = build_model("RLMultimodalRec", cold, name="cold", item_graph_k=3, cold_borrow_k=0)
    net0.eval()
    net.borrow_graphs = []
    with torch.no_grad():
        out0, unborrowed = net0.forward(), net.forward()
    assert net0.borrow_graphs == []
    assert torch.allclose(out0.item, unborrowed.item) and not torch.allclose(out0.item[ids], base.item[ids])


def test_the_calibration_pass_reads_recboles_batches_or_its_user_tables_alike(cold: Path) -> None:
    from recbole_rlmm.runner.calibration import _collect

    net, _, _, _, test = build_model("RLMultimodalRec", cold, name="cold", item_graph_k=3, eval_batch_size=41)
    net.eval()
    net.set_cold_offset(0.0)  # raw scores, as the calibration reads them
    fast, slow = _collect(net, test, 5), _collect(net, list(test), 5)  # list(): RecBole's own batches
    assert len(list(test)) > 1 and len(fast.n_pos) == len(test.uid_list)
    for name in ("warm_hits", "cold_hits", "n_pos", "n_cold_pos"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
    for name in ("warm_scores", "cold_scores"):  # one user per product or many: float rounding
        assert np.allclose(getattr(fast, name), getattr(slow, name), rtol=1e-5, atol=1e-6), name
