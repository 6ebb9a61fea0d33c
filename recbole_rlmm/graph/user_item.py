"""The user-item graph: LightGCN's normalised adjacency, the row-normalised variants of MMGCN
and LATTICE, and FREEDOM's degree-sensitive edge dropout.

Users come first, then items: node ``n_users + i`` is item ``i``. Duplicate interactions
count once everywhere.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

#: MMRec's (and RecBole's) epsilon on node degrees.
DEGREE_EPS = 1e-7


def to_torch_sparse(matrix: sp.spmatrix) -> torch.Tensor:
    """Convert a scipy sparse matrix to a coalesced float32 ``torch.sparse_coo_tensor``."""
    coo = sp.coo_matrix(matrix)
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    return torch.sparse_coo_tensor(index, values, torch.Size(coo.shape)).coalesce()


def dedup_interactions(interactions: sp.spmatrix) -> sp.coo_matrix:
    """The binary user-item matrix (duplicate interactions counted once), as COO."""
    inter = sp.csr_matrix(interactions, dtype=np.float32)
    inter.sum_duplicates()
    inter.data[:] = 1.0
    inter.eliminate_zeros()
    return inter.tocoo()


def bipartite_adjacency(interactions: sp.spmatrix, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary (n_users + n_items)^2 adjacency [[0, R], [R^T, 0]] of a user-item matrix R."""
    inter = sp.coo_matrix(interactions)
    rows = np.concatenate([inter.row, inter.col + n_users])
    cols = np.concatenate([inter.col + n_users, inter.row])
    n = n_users + n_items
    adj = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n))
    adj.data[:] = 1.0  # duplicates were summed; the graph is binary
    return adj


def sym_norm(adj: sp.spmatrix, eps: float = DEGREE_EPS) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 with RecBole's epsilon on the degree (isolated nodes stay zero)."""
    adj = sp.csr_matrix(adj)
    deg = np.asarray((adj > 0).sum(axis=1)).flatten().astype(np.float64) + eps
    d_inv = sp.diags(np.power(deg, -0.5))
    return sp.csr_matrix(d_inv @ adj @ d_inv)


def norm_adj_matrix(interactions: sp.spmatrix, n_users: int, n_items: int) -> torch.Tensor:
    """LightGCN's symmetric-normalised user-item adjacency as a torch sparse tensor."""
    return to_torch_sparse(sym_norm(bipartite_adjacency(interactions, n_users, n_items)))


def row_norm_adjacency(
    interactions: sp.spmatrix, n_users: int, n_items: int, self_loops: bool
) -> torch.Tensor:
    """D^-1 A (or D^-1 (A + I)) of the bipartite user-item graph, torch sparse.

    Without self-loops this is mean aggregation over neighbours (MMGCN's ``aggr='mean'``);
    with them it is LATTICE's ``normalized_adj_single(adj + I)``. Isolated rows stay 0.
    """
    adj = bipartite_adjacency(interactions, n_users, n_items)
    if self_loops:
        adj = adj + sp.eye(adj.shape[0], dtype=np.float32, format="csr")
    degree = np.asarray(adj.sum(axis=1)).flatten()
    inv = np.zeros_like(degree, dtype=np.float64)
    inv[degree > 0] = 1.0 / degree[degree > 0]
    return to_torch_sparse(sp.diags(inv) @ adj)


# ---------------------------------------------------------------------------- edge dropout
def edge_norm(edges: torch.Tensor, n_users: int, n_items: int) -> torch.Tensor:
    """1 / sqrt(d_u d_i) of each user-item edge (2, E), degrees counted over ``edges``."""
    users, items = edges
    ones = torch.ones(users.shape[0], device=users.device)
    d_user = torch.zeros(n_users, device=users.device).index_add(0, users, ones) + DEGREE_EPS
    d_item = torch.zeros(n_items, device=users.device).index_add(0, items, ones) + DEGREE_EPS
    return d_user[users].pow(-0.5) * d_item[items].pow(-0.5)


def bipartite_sparse(
    edges: torch.Tensor, values: torch.Tensor, n_users: int, n_items: int
) -> torch.Tensor:
    """The symmetric (n_users + n_items)^2 sparse graph of user-item ``edges`` with ``values``."""
    users, items = edges
    n = n_users + n_items
    index = torch.cat(
        [torch.stack([users, items + n_users]), torch.stack([items + n_users, users])], dim=1
    )
    return torch.sparse_coo_tensor(index, torch.cat([values, values]), (n, n)).coalesce()


def prune_edges(
    edges: torch.Tensor,
    weights: torch.Tensor,
    ratio: float,
    n_users: int,
    n_items: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """FREEDOM's degree-sensitive pruning: keep (1 - ratio) of the edges, sampled without
    replacement with probability proportional to ``weights`` (1 / sqrt(d_u d_i), so edges
    between high-degree nodes go first), and re-normalise the kept graph symmetrically."""
    n_keep = max(1, int(edges.shape[1] * (1.0 - ratio)))
    kept = edges[:, torch.multinomial(weights, n_keep, replacement=False, generator=generator)]
    return bipartite_sparse(kept, edge_norm(kept, n_users, n_items), n_users, n_items)


class EdgeDropout(nn.Module):
    """FREEDOM's degree-sensitive edge dropout over a fixed set of training interactions.

    Holds the deduplicated user-item edges and their sampling weights 1 / sqrt(d_u d_i) as
    non-persistent buffers (``.to(device)`` moves them; checkpoints stay small).
    :meth:`sample` draws one pruned, re-normalised graph; a model draws one per epoch.
    """

    def __init__(self, interactions: sp.spmatrix, n_users: int, n_items: int, ratio: float) -> None:
        super().__init__()
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"edge dropout ratio must lie in [0, 1); got {ratio}.")
        inter = dedup_interactions(interactions)
        edges = torch.from_numpy(np.vstack([inter.row, inter.col]).astype(np.int64))
        self.ratio = float(ratio)
        self.n_users, self.n_items = n_users, n_items
        self.register_buffer("edges", edges, persistent=False)
        self.register_buffer("weights", edge_norm(edges, n_users, n_items), persistent=False)

    @torch.no_grad()
    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A graph of ``1 - ratio`` of the edges, normalised D^-1/2 A' D^-1/2 (torch sparse)."""
        return prune_edges(
            self.edges, self.weights, self.ratio, self.n_users, self.n_items, generator
        )


def user_item_block(norm_adj: torch.Tensor, n_users: int, n_items: int) -> torch.Tensor:
    """R^ = the (n_users, n_items) user-item block of the normalised bipartite adjacency."""
    adj = norm_adj.coalesce()
    rows, cols = adj.indices()
    keep = (rows < n_users) & (cols >= n_users)
    index = torch.stack([rows[keep], cols[keep] - n_users])
    return torch.sparse_coo_tensor(index, adj.values()[keep], (n_users, n_items)).coalesce()
