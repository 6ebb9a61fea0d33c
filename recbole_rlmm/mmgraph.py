"""Helpers shared by the multimodal baselines VBPR, MMGCN, LATTICE and FREEDOM.

* :func:`register_modalities` loads every configured modality through the shared loader
  (:func:`recbole_rlmm.features.load_modalities`) and stores features and masks as
  non-persistent buffers, raising :class:`FeatureFileError` when a dataset has none;
* :class:`EdgeGraph` is a sparse square graph kept as an edge list, so that its edge
  values may carry gradients (LATTICE's learned item graph) or be frozen (FREEDOM's);
* :func:`knn_graph_edges` builds MMRec's modality kNN item graphs without materialising
  more than one block of the n_items x n_items cosine-similarity matrix at a time;
* :func:`mix_item_graphs` sums per-modality item graphs with modality weights,
  re-normalised per item over the modalities that item has;
* :func:`cooccurrence_knn_edges` is DRAGON's user-user graph of co-interacting users;
* :func:`row_norm_adjacency` and :func:`lightgcn_propagate` cover the user-item graphs.

Graph conventions follow MMRec (enoche/MMRec, ``src/utils/utils.py`` and the models):
a kNN row keeps the ``k`` most similar items *including the item itself* (MMRec's
``torch.topk`` over the full similarity row), and a graph S is normalised as
D^-1/2 S D^-1/2 with D the row sums of S.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recbole_rlmm.features import FeatureFileError, load_modalities, normalize_features
from recbole_rlmm.graph import bipartite_adjacency, to_torch_sparse


# ---------------------------------------------------------------------------- features
def register_modalities(
    module: nn.Module, model_name: str, config: Any, dataset: Any, feature_norm: str = "none"
) -> list[str]:
    """Load the configured modalities and register ``feat_<m>``/``mask_<m>`` buffers.

    Buffers are non-persistent: checkpoints stay small and ``module.to(device)`` moves
    them. Returns the modality names in config order. Raises :class:`FeatureFileError`
    naming the ``modalities`` config key when the dataset has no features.
    """
    modal = load_modalities(config, dataset)
    if not modal.names:
        name = config["dataset"]
        raise FeatureFileError(
            f"{model_name} is a multimodal model and needs item features, but dataset "
            f"'{name}' has no `modalities` configured. Add e.g. `modalities: {{image: "
            f"{name}.image.npy, text: {name}.text.npy}}` to the dataset yaml (files are made "
            f"by `recbole-rlmm prepare`), or use an ID-only model such as LightGCN."
        )
    for m in modal.names:
        feats = normalize_features(modal.features[m], modal.masks[m], feature_norm)
        module.register_buffer(f"feat_{m}", feats, persistent=False)
        module.register_buffer(f"mask_{m}", modal.masks[m].clone(), persistent=False)
    return modal.names


# ---------------------------------------------------------------------------- edge graphs
@dataclass
class EdgeGraph:
    """A sparse ``size x size`` matrix as COO edges; ``values`` may require grad.

    Duplicate (row, col) pairs are allowed and add up, as in a sum of sparse matrices.
    """

    rows: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor
    size: int

    def propagate(self, x: torch.Tensor) -> torch.Tensor:
        """``self @ x``; differentiable with respect to ``values`` and ``x``."""
        out = x.new_zeros(self.size, x.shape[1])
        if self.rows.numel() == 0:
            return out
        return out.index_add(0, self.rows, self.values.unsqueeze(1) * x[self.cols])

    def to_sparse(self) -> torch.Tensor:
        """A coalesced ``torch.sparse_coo_tensor`` (duplicates summed), detached."""
        index = torch.stack([self.rows, self.cols])
        return torch.sparse_coo_tensor(
            index, self.values.detach(), (self.size, self.size)
        ).coalesce()

    def to_dense(self) -> torch.Tensor:
        return self.to_sparse().to_dense()

    def to(self, device: torch.device | str) -> EdgeGraph:
        return EdgeGraph(
            self.rows.to(device), self.cols.to(device), self.values.to(device), self.size
        )

    def detach(self) -> EdgeGraph:
        return EdgeGraph(self.rows, self.cols, self.values.detach(), self.size)

    def scaled(self, factor: torch.Tensor | float) -> EdgeGraph:
        return EdgeGraph(self.rows, self.cols, self.values * factor, self.size)

    @staticmethod
    def cat(graphs: Sequence[EdgeGraph]) -> EdgeGraph:
        """The sum of several graphs of the same size."""
        size = graphs[0].size
        return EdgeGraph(
            torch.cat([g.rows for g in graphs]),
            torch.cat([g.cols for g in graphs]),
            torch.cat([g.values for g in graphs]),
            size,
        )


@torch.no_grad()
def knn_neighbours(
    x: torch.Tensor,
    k: int,
    mask: torch.Tensor,
    include_self: bool = True,
    chunk_size: int = 2048,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of each valid item's ``k`` most cosine-similar valid items.

    Items with ``mask`` False get no neighbours and are nobody's neighbour. With
    ``include_self`` the item itself competes (and, with similarity 1, normally wins a
    place), as in MMRec's ``torch.topk`` over a full similarity row. The similarity
    matrix is computed ``chunk_size`` rows at a time.
    """
    device = x.device
    xn = torch.nn.functional.normalize(x.detach().float(), dim=1)
    valid = mask.nonzero(as_tuple=True)[0]
    k = min(int(k), len(valid) - (0 if include_self else 1))
    if k <= 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty
    invalid = ~mask
    rows, cols = [], []
    for start in range(0, len(valid), chunk_size):
        chunk = valid[start : start + chunk_size]
        sim = xn[chunk] @ xn.T
        sim[:, invalid] = -float("inf")
        if not include_self:
            sim[torch.arange(len(chunk), device=device), chunk] = -float("inf")
        top = sim.topk(k, dim=1).indices
        rows.append(chunk.repeat_interleave(k))
        cols.append(top.reshape(-1))
    return torch.cat(rows), torch.cat(cols)


def cosine_values(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """cos(x[rows], x[cols]) per edge; differentiable with respect to ``x``."""
    xn = torch.nn.functional.normalize(x, dim=1)
    return (xn[rows] * xn[cols]).sum(dim=1)


def sym_norm_values(
    rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: int
) -> torch.Tensor:
    """Edge values of D^-1/2 S D^-1/2, D = row sums of S; rows summing to <= 0 give 0.

    This is MMRec's ``compute_normalized_laplacian`` on an edge list (differentiable).
    """
    degree = values.new_zeros(size).index_add(0, rows, values)
    positive = degree > 0
    d_inv_sqrt = torch.where(positive, degree.clamp_min(1e-12).pow(-0.5), torch.zeros_like(degree))
    return d_inv_sqrt[rows] * values * d_inv_sqrt[cols]


def knn_graph_edges(
    x: torch.Tensor,
    k: int,
    mask: torch.Tensor,
    weighted: bool,
    include_self: bool = True,
    normalize: bool = True,
) -> EdgeGraph:
    """A modality's kNN item graph (MMRec's construction) as an :class:`EdgeGraph`.

    ``weighted``: edges carry the cosine similarity (LATTICE; clamped at 0 so the degree
    normalisation stays defined), else 1 (FREEDOM). ``normalize``: apply
    D^-1/2 S D^-1/2. Values are differentiable with respect to ``x`` when weighted.
    """
    rows, cols = knn_neighbours(x, k, mask, include_self=include_self)
    if weighted:
        values = cosine_values(x, rows, cols).clamp_min(0.0)
    else:
        values = torch.ones(len(rows), dtype=x.dtype, device=x.device)
    if normalize:
        values = sym_norm_values(rows, cols, values, x.shape[0])
    return EdgeGraph(rows, cols, values, x.shape[0])


def mix_item_graphs(
    graphs: Sequence[EdgeGraph], weights: torch.Tensor, masks: Sequence[torch.Tensor]
) -> EdgeGraph:
    """sum_m w_m G_m with each item's weights re-normalised over the modalities it has.

    For an item with every modality this is MMRec's plain weighted sum (weights sum to
    1); an item lacking modality ``m`` spreads ``m``'s weight over the others instead of
    losing it; an item with no modality keeps an empty row. Differentiable in ``weights``.
    """
    if len(graphs) == 1:
        return graphs[0]
    mask = torch.stack([mk.to(weights.dtype) for mk in masks])  # (M, n)
    available = (weights.unsqueeze(1) * mask).sum(dim=0)  # (n,)
    scale = torch.where(
        available > 0, 1.0 / available.clamp_min(1e-12), torch.zeros_like(available)
    )
    parts = [g.scaled(weights[i] * scale[g.rows]) for i, g in enumerate(graphs)]
    return EdgeGraph.cat(parts)


def fixed_modality_weights(names: Sequence[str], image_weight: float) -> torch.Tensor:
    """FREEDOM's modality weights: ``image`` gets ``image_weight`` (MMRec's mm_image_weight),
    the other modalities share the rest equally; equal weights when there is no ``image``."""
    n = len(names)
    if n == 1:
        return torch.ones(1)
    if "image" not in names:
        return torch.full((n,), 1.0 / n)
    if not 0.0 <= image_weight <= 1.0:
        raise ValueError(f"mm_image_weight must lie in [0, 1]; got {image_weight}.")
    rest = (1.0 - image_weight) / (n - 1)
    return torch.tensor(
        [image_weight if m == "image" else rest for m in names], dtype=torch.float32
    )


@torch.no_grad()
def cooccurrence_knn_edges(interactions: sp.spmatrix, k: int, chunk_size: int = 2048) -> EdgeGraph:
    """Each user's ``k`` users with the most co-interacted items, D^-1/2 S D^-1/2 normalised.

    DRAGON's user-user graph (Zhou et al., 2023) with binary edges, as FREEDOM's item graph:
    S[u, v] = 1 when v is among u's top-``k`` co-occurring users (ties broken by index,
    never u itself, never a user sharing no item). Counts come from the binary training
    matrix, ``chunk_size`` users at a time, so no n_users x n_users matrix is ever dense.
    """
    inter = dedup_interactions(interactions).tocsr()
    n = inter.shape[0]
    k = min(int(k), n - 1)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    transposed = inter.T.tocsr()
    for start in range(0, n if k > 0 else 0, chunk_size):
        block = np.asarray((inter[start : start + chunk_size] @ transposed).todense())
        local = np.arange(block.shape[0])
        block[local, start + local] = 0.0  # never one's own neighbour
        # stable descending sort: equal counts are broken by the lower user index
        top = np.argsort(-block, axis=1, kind="stable")[:, :k]
        keep = np.take_along_axis(block, top, axis=1) > 0
        rows.append(np.repeat(start + local, k)[keep.ravel()])
        cols.append(top.ravel()[keep.ravel()])
    row = torch.from_numpy(np.concatenate(rows) if rows else np.zeros(0, np.int64)).long()
    col = torch.from_numpy(np.concatenate(cols) if cols else np.zeros(0, np.int64)).long()
    values = sym_norm_values(row, col, torch.ones(len(row)), n)
    return EdgeGraph(row, col, values, n)


# ---------------------------------------------------------------------------- user-item graph
def dedup_interactions(interactions: sp.spmatrix) -> sp.coo_matrix:
    """The binary user-item matrix (duplicate interactions counted once), as COO."""
    inter = sp.csr_matrix(interactions, dtype=np.float32)
    inter.sum_duplicates()
    inter.data[:] = 1.0
    inter.eliminate_zeros()
    return inter.tocoo()


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


def lightgcn_layers(
    adj: torch.Tensor, user_e: torch.Tensor, item_e: torch.Tensor, n_layers: int, noise: float = 0.0
) -> list[torch.Tensor]:
    """LightGCN's layers E_0 .. E_n_layers (users then items), E_{l+1} = adj E_l.

    ``noise`` > 0 adds XSimGCL's perturbation to every propagated layer (Yu et al., TKDE
    2023): E_l += noise * sign(E_l) * normalize(uniform noise), a random direction of
    length ``noise`` in E_l's orthant. Used while training only.
    """
    all_e = torch.cat([user_e, item_e], dim=0)
    layers = [all_e]
    for _ in range(n_layers):
        all_e = torch.sparse.mm(adj, all_e)
        if noise > 0:
            direction = torch.nn.functional.normalize(torch.rand_like(all_e), dim=1)
            all_e = all_e + noise * torch.sign(all_e) * direction
        layers.append(all_e)
    return layers


def lightgcn_propagate(
    adj: torch.Tensor, user_e: torch.Tensor, item_e: torch.Tensor, n_layers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """LightGCN: mean of layers 0..n_layers of E_{l+1} = adj E_l; split into users/items."""
    final = torch.stack(lightgcn_layers(adj, user_e, item_e, n_layers), dim=1).mean(dim=1)
    return torch.split(final, [user_e.shape[0], item_e.shape[0]])


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE between two views (rows of ``a`` and ``b`` are positives, other rows of ``b``
    negatives), on cosine similarity: mean over rows of -log softmax(cos / T)[row]."""
    a = torch.nn.functional.normalize(a, dim=1)
    b = torch.nn.functional.normalize(b, dim=1)
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return torch.nn.functional.cross_entropy(logits, target)


# ---------------------------------------------------------------------------- edge pruning
DEGREE_EPS = 1e-7  # MMRec's epsilon on node degrees


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
    edges: torch.Tensor, weights: torch.Tensor, ratio: float, n_users: int, n_items: int
) -> torch.Tensor:
    """FREEDOM's degree-sensitive pruning: keep (1 - ratio) of the edges, sampled without
    replacement with probability proportional to ``weights`` (1 / sqrt(d_u d_i), so edges
    between high-degree nodes go first), and re-normalise the kept graph symmetrically."""
    n_keep = max(1, int(edges.shape[1] * (1.0 - ratio)))
    kept = edges[:, torch.multinomial(weights, n_keep, replacement=False)]
    return bipartite_sparse(kept, edge_norm(kept, n_users, n_items), n_users, n_items)
