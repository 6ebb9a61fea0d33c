"""The shared building blocks of recbole_rlmm/model/layers.py on tiny hand-made tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from reference import info_nce_dense, recbole_bpr

from recbole_rlmm.graph import EdgeGraph
from recbole_rlmm.model.layers import (
    GatedFusion,
    ModalityEncoder,
    bpr_loss,
    info_nce,
    lightgcn_layers,
    lightgcn_propagate,
    propagate,
)

MASKS = torch.tensor([[True, True, False, False], [True, False, True, False]])  # image, text


def _projected() -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [torch.randn(4, 3) * MASKS[m].float()[:, None] for m in range(2)]


def test_modality_encoder_projects_and_zeroes_missing_items() -> None:
    x = torch.arange(8.0).view(4, 2)
    mask = torch.tensor([True, False, True, True])
    enc = ModalityEncoder(x, mask, out_dim=3)
    expected = (x @ enc.projection.weight.T + enc.projection.bias) * mask[:, None]
    torch.testing.assert_close(enc(), expected)
    torch.testing.assert_close(enc(torch.tensor([2, 1])), expected[[2, 1]])
    raw = ModalityEncoder(x, mask)
    torch.testing.assert_close(raw(), x * mask[:, None])
    assert "features" not in enc.state_dict() and "mask" not in enc.state_dict()  # data, not weights


@pytest.mark.parametrize("gate_type", ["vector", "scalar"])
def test_gate_mixes_two_modalities_with_sigmoid(gate_type: str) -> None:
    fusion = GatedFusion(2, 3, "gate", gate_type)
    p = _projected()
    g = torch.sigmoid(torch.cat(p, dim=1) @ fusion.gate.weight.T + fusion.gate.bias)
    fused, shares = fusion(p, MASKS)
    # item 0 has both: f = g p_a + (1 - g) p_b; item 1 image only; item 2 text only; item 3 none
    torch.testing.assert_close(fused[0], g[0] * p[0][0] + (1 - g[0]) * p[1][0])
    torch.testing.assert_close(fused[1], p[0][1])
    torch.testing.assert_close(fused[2], p[1][2])
    assert fused[3].abs().sum() == 0
    torch.testing.assert_close(shares[:, 0, 0], torch.stack([g[0].mean(), 1 - g[0].mean()]))
    torch.testing.assert_close(shares[:, 1:, 0], torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))


def test_sum_and_concat_fusion() -> None:
    p = _projected()
    fused, shares = GatedFusion(2, 3, "sum")(p, MASKS)
    torch.testing.assert_close(fused, p[0] + p[1])
    torch.testing.assert_close(shares[:, 0, 0], torch.tensor([0.5, 0.5]))
    concat = GatedFusion(2, 3, "concat")
    fused, _ = concat(p, MASKS)
    expected = torch.cat(p, dim=1) @ concat.concat.weight.T + concat.concat.bias
    torch.testing.assert_close(fused[:3], expected[:3])
    assert fused[3].abs().sum() == 0 and concat.shares(p, MASKS) is None


def test_bad_fusion_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="fusion mode 'mean'"):
        GatedFusion(2, 3, "mean")
    with pytest.raises(ValueError, match="gate_type='matrix'"):
        GatedFusion(2, 3, "gate", "matrix")


def test_lightgcn_layers_and_mean() -> None:
    adj = torch.rand(7, 7).to_sparse()
    users, items = torch.rand(3, 4), torch.rand(4, 4)
    layers = lightgcn_layers(adj, users, items, 2)
    assert len(layers) == 3
    torch.testing.assert_close(layers[2], adj @ (adj @ torch.cat([users, items])))
    mean_u, mean_i = lightgcn_propagate(adj, users, items, 2)
    torch.testing.assert_close(torch.cat([mean_u, mean_i]), torch.stack(layers).mean(dim=0))


def test_propagate_on_sparse_and_edge_graphs() -> None:
    dense = torch.tensor([[0.0, 0.5, 0.0], [0.2, 0.0, 0.3], [0.0, 0.0, 1.0]])
    x = torch.randn(3, 2)
    rows, cols = dense.nonzero(as_tuple=True)
    edges = EdgeGraph(rows, cols, dense[rows, cols], 3)
    torch.testing.assert_close(propagate(dense.to_sparse(), x, 2), dense @ dense @ x)
    torch.testing.assert_close(propagate(edges, x, 2), dense @ dense @ x)
    torch.testing.assert_close(propagate(edges, x, 0), x)


def test_bpr_loss_forms() -> None:
    pos, neg = torch.randn(5), torch.randn(5)
    torch.testing.assert_close(bpr_loss(pos, neg), -F.logsigmoid(pos - neg).mean())
    torch.testing.assert_close(bpr_loss(pos, neg, gamma=1e-10), recbole_bpr(pos, neg))


def test_info_nce_matches_its_definition() -> None:
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    torch.testing.assert_close(info_nce(a, b, 0.5), info_nce_dense(a, b, 0.5))
    assert info_nce(a, a, 0.05) < info_nce(a, b, 0.05)  # identical views agree best
