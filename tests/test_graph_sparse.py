"""``sparse_mm``: the same products and gradients as ``torch.sparse.mm``, to float rounding.

Both sum each output row over its non-zeros in column order; the vectorised inner loops differ
by CPU (bit for bit on the Intel AVX-512 development machine, within one or two ulps on an AMD
EPYC), so the comparison allows float32 rounding and nothing more."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recbole_rlmm.graph import norm_adj_matrix
from recbole_rlmm.graph.knn import knn_graph_edges
from recbole_rlmm.graph.sparse import csr_pair, sparse_mm


def _graphs() -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    n_users, n_items, nnz = 300, 200, 3000
    inter = sp.coo_matrix(
        (np.ones(nnz, np.float32), (rng.integers(0, n_users, nnz), rng.integers(0, n_items, nnz))),
        shape=(n_users, n_items),
    )
    x = torch.randn(n_items, 16, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(n_items, dtype=torch.bool)
    mask[0] = False
    return {
        "user-item (symmetric)": norm_adj_matrix(inter, n_users, n_items),
        "kNN (not symmetric)": knn_graph_edges(x, 7, mask, weighted=True).to_sparse(),
    }


@pytest.mark.parametrize("width", [8, 33, 64, 256])
@pytest.mark.parametrize("name", list(_graphs()))
def test_values_and_gradients_equal_torch_sparse_mm(name: str, width: int) -> None:
    graph = _graphs()[name]
    gen = torch.Generator().manual_seed(1)
    dense = torch.randn(graph.shape[1], width, generator=gen)
    weight = torch.randn(graph.shape[0], width, generator=gen)
    results = []
    for mm in (torch.sparse.mm, sparse_mm):
        x = dense.clone().requires_grad_(True)
        out = mm(graph, mm(graph, x) if graph.shape[0] == graph.shape[1] else x)
        (out * weight).sum().backward()
        results.append((out.detach(), x.grad))
    for ours, reference in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(sparse_mm(graph, dense), torch.sparse.mm(graph, dense), rtol=1e-6, atol=1e-6)


def test_evaluation_never_transposes() -> None:
    graph = _graphs()["kNN (not symmetric)"]
    with torch.no_grad():
        sparse_mm(graph, torch.ones(graph.shape[1], 64, requires_grad=True))
    assert hasattr(graph, "_rlmm_csr") and not hasattr(graph, "_rlmm_csr_t")


def test_csr_copies_are_made_once() -> None:
    graph = _graphs()["kNN (not symmetric)"]
    first = csr_pair(graph)
    assert all(a is b for a, b in zip(csr_pair(graph), first, strict=True))
    assert torch.equal(first[1].to_dense(), graph.to_dense().T)


def test_a_graph_with_gradients_falls_back_to_torch() -> None:
    graph = _graphs()["kNN (not symmetric)"].detach()
    values = graph.values().clone().requires_grad_(True)
    learned = torch.sparse_coo_tensor(graph.indices(), values, graph.shape)
    sparse_mm(learned, torch.ones(graph.shape[1], 64)).sum().backward()
    assert values.grad is not None
