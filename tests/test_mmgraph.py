"""Graph helpers of recbole_rlmm.mmgraph added for RLMultimodalRec's options: the
co-occurrence user graph, LightGCN's perturbed layers and the InfoNCE loss."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from test_baselines import _sym_norm

from recbole_rlmm.mmgraph import (
    cooccurrence_knn_edges,
    info_nce,
    lightgcn_layers,
    lightgcn_propagate,
)

# 5 users x 6 items; user 4 shares no item with anybody
INTER = np.array(
    [
        [1, 1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 1],
    ],
    dtype=np.float32,
)


def _dense_reference(inter: np.ndarray, k: int) -> torch.Tensor:
    """Top-k co-occurring users per row by a dense count matrix, ties to the lower index."""
    counts = inter @ inter.T
    np.fill_diagonal(counts, 0)
    s = np.zeros_like(counts)
    for u, row in enumerate(counts):
        top = sorted(range(len(row)), key=lambda v: (-row[v], v))[:k]
        s[u, [v for v in top if row[v] > 0]] = 1.0
    return _sym_norm(torch.from_numpy(s))


@pytest.mark.parametrize("k", [1, 2, 10])
@pytest.mark.parametrize("chunk_size", [2, 2048])
def test_cooccurrence_graph_matches_dense_reference(k: int, chunk_size: int) -> None:
    coo = sp.coo_matrix(INTER)
    graph = cooccurrence_knn_edges(coo, k, chunk_size=chunk_size)
    torch.testing.assert_close(graph.to_dense(), _dense_reference(INTER, k))
    assert graph.to_dense()[4].abs().sum() == 0  # no co-occurring user, no neighbour
    assert torch.all(graph.rows != graph.cols)  # never one's own neighbour


def test_cooccurrence_graph_counts_duplicate_interactions_once() -> None:
    doubled = sp.coo_matrix(
        (np.ones(4), ([0, 0, 1, 2], [0, 0, 0, 1])), shape=(3, 2)
    )  # user 0 has item 0 twice; users 0 and 1 share item 0
    graph = cooccurrence_knn_edges(doubled, 1).to_dense()
    assert graph[0, 1] > 0 and graph[1, 0] > 0 and graph[2].sum() == 0


def test_lightgcn_layers_without_noise_is_lightgcn() -> None:
    adj = torch.rand(7, 7).to_sparse()
    users, items = torch.rand(3, 4), torch.rand(4, 4)
    layers = lightgcn_layers(adj, users, items, 2)
    assert len(layers) == 3
    torch.testing.assert_close(layers[2], adj @ (adj @ torch.cat([users, items])))
    mean_u, mean_i = lightgcn_propagate(adj, users, items, 2)
    torch.testing.assert_close(torch.cat([mean_u, mean_i]), torch.stack(layers).mean(dim=0))


def test_lightgcn_noise_has_the_requested_length_and_keeps_the_sign() -> None:
    adj = torch.eye(5).to_sparse()
    users, items = torch.randn(2, 8), torch.randn(3, 8)
    clean = torch.cat([users, items])
    noisy = lightgcn_layers(adj, users, items, 1, noise=0.3)[1]
    delta = noisy - clean
    torch.testing.assert_close(delta.norm(dim=1), torch.full((5,), 0.3))
    assert torch.all(delta * clean.sign() >= 0)  # pushed away from zero, never across it


def test_info_nce_matches_its_definition() -> None:
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    sim = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / 0.5
    expected = -(sim.diag() - sim.logsumexp(dim=1)).mean()
    torch.testing.assert_close(info_nce(a, b, 0.5), expected)
    assert info_nce(a, a, 0.05) < info_nce(a, b, 0.05)  # identical views agree best
