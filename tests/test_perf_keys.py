"""The cost-of-content keys besides ``feature_dim`` (tests/test_feature_reduction.py):
``feature_dtype`` (features stored at half precision) and ``knn_backend`` (faiss), and the
memory-bounded computations that must give the same values as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import build_model
from reference import total_loss
from torch import nn

from recbole_rlmm.data.features import normalize_features
from recbole_rlmm.errors import UserError
from recbole_rlmm.graph import knn as knn_module
from recbole_rlmm.graph.knn import cosine_values, knn_neighbours
from recbole_rlmm.model.layers import linear

MODELS = ["RLMultimodalRec", "FREEDOM", "LATTICE", "VBPR", "MMGCN"]


# ---------------------------------------------------------------------------- feature_dtype
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_stored_low_precision_linear_equals_float32_product(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 12, generator=gen).to(dtype)
    layer = nn.Linear(12, 4)
    grad = torch.randn(50, 4, generator=gen)
    out = linear(layer, x, block_rows=7)
    assert out.dtype == torch.float32
    (out * grad).sum().backward()
    got = (out.detach(), layer.weight.grad.clone(), layer.bias.grad.clone())
    layer.zero_grad()
    ref = layer(x.float())
    (ref * grad).sum().backward()
    # float16: float32 products of the stored values; bfloat16: bfloat16 products (~3 digits)
    tol = {"rtol": 2e-2, "atol": 2e-2} if dtype == torch.bfloat16 else {}
    torch.testing.assert_close(got[0], ref.detach(), **tol)
    torch.testing.assert_close(got[1], layer.weight.grad, **tol)
    torch.testing.assert_close(got[2], layer.bias.grad, **tol)
    assert linear(layer, x.float()).dtype == torch.float32  # float32 features: the layer itself


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_models_train_with_half_precision_features(tiny: Path, model: str, dtype: str) -> None:
    net, _, train, *_ = build_model(model, tiny, feature_dtype=dtype)
    reference, *_ = build_model(model, tiny)
    for name, encoder in net.encoders.items():
        assert encoder.features.dtype == getattr(torch, dtype)
        # the stored values are the float32 ones rounded
        torch.testing.assert_close(encoder.dense(), reference.encoders[name].features, atol=1e-2, rtol=1e-2)
    net.train()
    batch = next(iter(train))
    loss = total_loss(net.calculate_loss(batch))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in net.parameters())
    net.eval()
    scores = net.full_sort_predict(batch)
    assert torch.isfinite(scores).all()


# ---------------------------------------------------------------------------- knn_backend
def _clustered(n: int = 300, d: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    mask = torch.rand(n, generator=gen) > 0.1
    mask[0] = False
    candidates = mask & (torch.rand(n, generator=gen) > 0.2)
    return x, mask, candidates


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("restricted", [True, False])
def test_faiss_finds_the_same_neighbours_as_the_matmul(include_self: bool, restricted: bool) -> None:
    pytest.importorskip("faiss")
    x, mask, candidates = _clustered()
    cand = candidates if restricted else None
    rows_t, cols_t = knn_neighbours(x, 7, mask, include_self=include_self, candidates=cand)
    rows_f, cols_f = knn_neighbours(x, 7, mask, include_self=include_self, candidates=cand, backend="faiss")
    assert torch.equal(rows_t, rows_f)
    # random Gaussian rows: no ties, so the same neighbours (in the same order)
    assert torch.equal(cols_t.view(-1, 7).sort(dim=1).values, cols_f.view(-1, 7).sort(dim=1).values)


def test_faiss_backend_in_the_models(tiny: Path) -> None:
    pytest.importorskip("faiss")
    torch_net, *_ = build_model("FREEDOM", tiny)
    faiss_net, *_ = build_model("FREEDOM", tiny, knn_backend="faiss")
    assert faiss_net.knn_backend == "faiss"
    assert torch.equal(torch_net.mm_adj.to_dense() > 0, faiss_net.mm_adj.to_dense() > 0)


def test_faiss_missing_is_a_clear_error(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knn_module, "faiss_available", lambda: False)
    net, config, train, valid, _ = build_model("FREEDOM", tiny, knn_backend="auto")  # the graphs use torch
    from recbole_rlmm.model.freedom import FREEDOM
    from recbole_rlmm.plan.plan import make_plan

    assert make_plan(config, FREEDOM, train._dataset, valid._dataset).knn_backend == "torch"  # logged and stored
    with pytest.raises(UserError, match="faiss"):
        build_model("FREEDOM", tiny, knn_backend="faiss")


def test_similarity_blocks_are_bounded_and_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    x, mask, candidates = _clustered(n=200)
    whole = knn_neighbours(x, 5, mask, candidates=candidates)
    monkeypatch.setattr(knn_module, "SIM_BLOCK_BYTES", 4 * 200 * 3)  # 3 rows per block
    blocked = knn_neighbours(x, 5, mask, candidates=candidates)
    assert torch.equal(whole[0], blocked[0]) and torch.equal(whole[1], blocked[1])


# ---------------------------------------------------------------------------- same values, less memory
def test_blocked_normalisation_and_cosines_equal_the_whole_matrix_ones() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(301, 40, generator=gen) * 5
    mask = torch.rand(301, generator=gen) > 0.1
    mask[0] = False
    x[~mask] = 0
    for how in ("standard", "l2"):
        out = x.clone()
        rows = out[mask]
        if how == "standard":
            rows = (rows - rows.mean(dim=0)) / (rows.std(dim=0, unbiased=False) + 1e-6)
        out[mask] = F.normalize(rows, dim=1)
        assert torch.equal(normalize_features(x, mask, how, block_rows=13), out)
    rows, cols = torch.randint(0, 301, (2000,), generator=gen), torch.randint(0, 301, (2000,), generator=gen)
    xn = F.normalize(x, dim=1)
    assert torch.equal(cosine_values(x, rows, cols, block_edges=77), (xn[rows] * xn[cols]).sum(dim=1))
