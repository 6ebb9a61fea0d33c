"""Reference computations the model tests compare against: plain dense tensor formulas,
written from the papers (and MMRec's code), independent of the package's implementation."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F


def total_loss(loss: Any) -> torch.Tensor:
    """The summed loss of ``calculate_loss`` (a tensor or RecBole's tuple of terms)."""
    return sum(loss) if isinstance(loss, tuple) else loss


def first_batch(net: Any, train: Any) -> Any:
    """The first training batch of RecBole's pairwise dataloader, on the model's device."""
    return next(iter(train)).to(net.device)


def knn_dense(x: torch.Tensor, mask: torch.Tensor, k: int, weighted: bool) -> torch.Tensor:
    """MMRec's dense kNN matrix (utils.build_sim + build_knn_neighbourhood), with items
    lacking the modality removed: the reference for the sparse builders."""
    xn = F.normalize(x, dim=1)
    sim = xn @ xn.T
    sim[:, ~mask] = -float("inf")
    val, idx = sim.topk(k, dim=1)
    s = torch.zeros_like(sim).scatter_(
        1, idx, val.clamp_min(0) if weighted else torch.ones_like(val)
    )
    s[~mask] = 0.0
    return s


def sym_norm_dense(s: torch.Tensor) -> torch.Tensor:
    """MMRec's compute_normalized_laplacian: D^-1/2 S D^-1/2 with row sums D."""
    d = s.sum(dim=1)
    d_inv = torch.where(d > 0, d.clamp_min(1e-12).pow(-0.5), torch.zeros_like(d))
    return d_inv[:, None] * s * d_inv[None, :]


def lightgcn_adjacency(interactions: sp.spmatrix, n_users: int, n_items: int) -> torch.Tensor:
    """LightGCN's D^-1/2 A D^-1/2 of A = [[0, R], [R^T, 0]], dense, degrees + 1e-7 (RecBole)."""
    r = (np.asarray(sp.csr_matrix(interactions).todense()) > 0).astype(np.float64)
    a = np.zeros((n_users + n_items, n_users + n_items))
    a[:n_users, n_users:] = r
    a[n_users:, :n_users] = r.T
    d = a.sum(axis=1) + 1e-7
    return torch.from_numpy(a / np.sqrt(d)[:, None] / np.sqrt(d)[None, :]).float()


def lightgcn_mean(adj: torch.Tensor, user_e: torch.Tensor, item_e: torch.Tensor, n_layers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of E_0 .. E_L with E_{l+1} = adj E_l (dense), split into users and items."""
    e = torch.cat([user_e, item_e])
    layers = [e]
    for _ in range(n_layers):
        e = adj @ e
        layers.append(e)
    final = torch.stack(layers).mean(dim=0)
    return final[: user_e.shape[0]], final[user_e.shape[0] :]


def recbole_bpr(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """RecBole's BPRLoss: -mean log(1e-10 + sigmoid(pos - neg))."""
    return -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()


def info_nce_dense(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """-mean_i log softmax_j(cos(a_i, b_j) / T)[i]."""
    sim = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / temperature
    return -(sim.diag() - sim.logsumexp(dim=1)).mean()
