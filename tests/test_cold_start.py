"""Cold items (in valid/test, never in training): unseen while training, scored from content."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import build_model
from datagen import base_config, make_cold_dataset

from recbole_rlmm.data.cold import restrict_negatives, warm_item_ids
from recbole_rlmm.graph import knn_graph_edges

COLD = ("i30", "i31", "i32", "i33", "i34")


@pytest.fixture
def cold(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    make_cold_dataset(root)
    return root


def _cold_ids(ds: Any) -> list[int]:
    return [int(ds.token2id(ds.iid_field, t)) for t in COLD]


def test_training_negatives_are_never_cold_items(cold: Path) -> None:
    from recbole.data import create_dataset, data_preparation

    from recbole_rlmm.config import create_config

    config = create_config("BPR", config_dict=base_config(cold, name="cold"))
    train, *_ = data_preparation(config, create_dataset(config))
    cold_ids = _cold_ids(train._dataset)
    assert set(cold_ids).isdisjoint(warm_item_ids(train._dataset))
    drawn = np.concatenate([b["neg_item_id"].numpy() for b in train])
    assert np.isin(drawn, cold_ids).any()  # RecBole's own sampler draws them
    assert restrict_negatives(train) == len(COLD)
    drawn = np.concatenate([b["neg_item_id"].numpy() for _ in range(20) for b in train])
    assert not np.isin(drawn, cold_ids).any() and not np.isin(drawn, [0]).any()
    assert len(np.unique(drawn)) > len(warm_item_ids(train._dataset)) // 2  # still spread over warm items


def test_knn_candidates_give_cold_rows_warm_neighbours() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 4)
    mask = torch.ones(8, dtype=torch.bool)
    mask[0] = False
    warm = mask.clone()
    warm[[6, 7]] = False
    graph = knn_graph_edges(x, 3, mask, weighted=False, candidates=warm).to_dense()
    assert graph[[6, 7]].gt(0).sum(dim=1).tolist() == [3, 3]  # cold rows: self + 2 warm items
    assert graph[:, [6, 7]].gt(0).sum().item() == 2  # ... and nobody else's neighbour
    assert graph[6, 6] > 0 and graph[7, 7] > 0
    assert torch.equal(
        knn_graph_edges(x, 3, warm, weighted=False).to_dense()[:6], graph[:6]
    )  # warm rows as in the warm-only graph


@pytest.mark.parametrize("model", ["RLMultimodalRec", "FREEDOM", "LATTICE"])
def test_cold_items_join_item_graphs_only_for_scoring(cold: Path, model: str) -> None:
    net, _, train, *_ = build_model(model, cold, name="cold")
    cold_ids = _cold_ids(train._dataset)

    def graph() -> torch.Tensor:
        if model == "RLMultimodalRec":
            graphs = net.item_graphs if net.training else net.scoring_item_graphs
            return sum(g.to_dense() for g in graphs)
        if model == "FREEDOM":
            return (net.mm_adj if net.training else net.scoring_mm_adj).to_dense()
        with torch.no_grad():
            return net.item_graph().to_dense()

    net.train()
    training = graph()
    assert training[cold_ids].abs().sum() == 0 and training[:, cold_ids].abs().sum() == 0
    net.eval()
    scoring = graph()
    assert (scoring[cold_ids].abs().sum(dim=1) > 0).all()  # cold rows: their content neighbours
    off_diagonal = scoring[:, cold_ids].clone()
    off_diagonal[cold_ids, range(len(cold_ids))] = 0
    assert off_diagonal.abs().sum() == 0  # never a neighbour of another item


def test_rlmultimodalrec_scores_cold_items_from_content(cold: Path) -> None:
    net, _, train, *_ = build_model("RLMultimodalRec", cold, name="cold")
    cold_ids = _cold_ids(train._dataset)
    net.eval()
    with torch.no_grad():
        out = net.forward()
        fused, _ = net.content()
    torch.testing.assert_close(out.item_ego[cold_ids], net.content_scale * fused[cold_ids])  # no ID
    with torch.no_grad():
        net.item_embedding.weight[cold_ids] += 100.0  # an untrained ID changes nothing
        torch.testing.assert_close(net.forward().item[cold_ids], out.item[cold_ids])
