"""Graph construction shared by every graph model (ours and the patched RecBole built-ins)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def to_torch_sparse(matrix: sp.spmatrix) -> torch.Tensor:
    """Convert a scipy sparse matrix to a coalesced float32 ``torch.sparse_coo_tensor``."""
    coo = sp.coo_matrix(matrix)
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    return torch.sparse_coo_tensor(index, values, torch.Size(coo.shape)).coalesce()


def bipartite_adjacency(interactions: sp.spmatrix, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary (n_users + n_items)^2 adjacency [[0, R], [R^T, 0]] of a user-item matrix R."""
    inter = sp.coo_matrix(interactions)
    rows = np.concatenate([inter.row, inter.col + n_users])
    cols = np.concatenate([inter.col + n_users, inter.row])
    n = n_users + n_items
    adj = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n))
    adj.data[:] = 1.0  # duplicates were summed; the graph is binary
    return adj


def sym_norm(adj: sp.spmatrix, eps: float = 1e-7) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 with RecBole's epsilon on the degree (isolated nodes stay zero)."""
    adj = sp.csr_matrix(adj)
    deg = np.asarray((adj > 0).sum(axis=1)).flatten().astype(np.float64) + eps
    d_inv = sp.diags(np.power(deg, -0.5))
    return sp.csr_matrix(d_inv @ adj @ d_inv)


def norm_adj_matrix(interactions: sp.spmatrix, n_users: int, n_items: int) -> torch.Tensor:
    """LightGCN's symmetric-normalised user-item adjacency as a torch sparse tensor."""
    return to_torch_sparse(sym_norm(bipartite_adjacency(interactions, n_users, n_items)))
