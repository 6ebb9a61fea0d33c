"""Building blocks shared by the models (RecBole-GNN's ``model/layers.py`` is the anchor).

* :class:`ModalityEncoder`: one modality's frozen item features, its missing-item mask and an
  optional linear projection ``p = X W + b`` (zero for items that lack the modality);
* :class:`GatedFusion`: the one place where modality shares are computed and normalised;
  mixes projected modalities by a learned gate (``gate``), equal weights (``sum``) or a
  linear map of their concatenation (``concat``);
* :func:`lightgcn_layers` / :func:`lightgcn_propagate`: LightGCN propagation;
* :func:`propagate`: repeated multiplication by an item graph (sparse tensor or edge list);
* :func:`bpr_loss` and :func:`info_nce`: the pairwise ranking loss and the contrastive loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from recbole_rlmm.graph.knn import EdgeGraph
from recbole_rlmm.graph.sparse import sparse_mm
from recbole_rlmm.keys.choices import GATE_TYPES, MIXING_FUSIONS

#: How :class:`GatedFusion` mixes modalities.
#: One gate value per embedding dimension (``vector``) or one per item (``scalar``).


class ModalityEncoder(nn.Module):
    """A modality's item features (n_items, d_m), mask (n_items,) and optional projection.

    Features and mask are non-persistent buffers: ``.to(device)`` moves them, checkpoints do
    not store them (they are data, reloaded from the dataset's feature files).
    """

    def __init__(self, features: torch.Tensor, mask: torch.Tensor, out_dim: int | None = None) -> None:
        super().__init__()
        self.register_buffer("features", features, persistent=False)
        self.register_buffer("mask", mask.clone(), persistent=False)
        self.projection: nn.Linear | None = (
            nn.Linear(features.shape[1], out_dim) if out_dim else None
        )

    @property
    def in_dim(self) -> int:
        """Dimensionality of the stored features."""
        return int(self.features.shape[1])

    def dense(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """The float32 features of ``items`` (all when None); a copy only when they are
        stored at a lower precision (``feature_dtype``)."""
        x = self.features if items is None else self.features[items]
        return x.float()

    def forward(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """``X W + b`` (or ``X`` without a projection) of ``items`` (all when None), zero
        for items that lack the modality."""
        x = self.features if items is None else self.features[items]
        mask = self.mask if items is None else self.mask[items]
        x = linear(self.projection, x) if self.projection is not None else x.float()
        return x * mask.unsqueeze(1)


class _StoredLowLinear(torch.autograd.Function):
    """``x W^T + b`` for frozen features ``x`` stored at a lower precision (float16/bfloat16):
    each block of rows is widened to float32 only while it is multiplied, forward and backward,
    so no float32 copy of the whole matrix is ever made (and none is kept for the backward)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, block: int) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(x, weight)
        ctx.has_bias, ctx.block = bias is not None, block
        out = x.new_empty((x.shape[0], weight.shape[0]), dtype=weight.dtype)
        for start in range(0, x.shape[0], block):
            out[start : start + block] = F.linear(x[start : start + block].to(weight.dtype), weight, bias)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple:  # noqa: ANN001
        x, weight = ctx.saved_tensors
        grad_w = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        if grad_w is not None:
            for start in range(0, x.shape[0], ctx.block):
                grad_w += grad[start : start + ctx.block].T @ x[start : start + ctx.block].to(weight.dtype)
        grad_b = grad.sum(dim=0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return None, grad_w, grad_b, None


def linear(layer: nn.Linear, x: torch.Tensor, block_rows: int = 8192) -> torch.Tensor:
    """``layer(x)`` for features ``x`` stored at ``layer``'s precision. Features stored as
    bfloat16 are multiplied in bfloat16 (the weights rounded to it, the result widened back;
    gradients flow to the float32 weights), which CPUs with bfloat16 units (AVX512-BF16, AMX)
    and GPUs do ~3x faster than float32; float16 features are widened a block of rows at a
    time (:class:`_StoredLowLinear`; CPUs have no fast float16 product)."""
    if x.dtype == layer.weight.dtype:
        return layer(x)
    if x.requires_grad:
        return layer(x.to(layer.weight.dtype))
    if x.dtype == torch.bfloat16:
        bias = None if layer.bias is None else layer.bias.to(x.dtype)
        return F.linear(x, layer.weight.to(x.dtype), bias).to(layer.weight.dtype)
    return _StoredLowLinear.apply(x, layer.weight, layer.bias, block_rows)


class GatedFusion(nn.Module):
    """Mixes N projected modalities (each (n_items, d)) into one content vector per item.

    ``gate``: modality weights from a gate on the concatenated projections. Two modalities:
    ``g = sigmoid([p_a ; p_b] W_g + b_g)`` and ``f = g * p_a + (1 - g) * p_b``; N > 2: a
    softmax over N logits. ``gate_type`` ``vector`` gives one weight per dimension,
    ``scalar`` one per item. Weights are renormalised over the modalities an item has.
    ``sum``: ``f = sum_m p_m`` over the modalities the item has (one modality: ``f = p``).
    ``concat``: ``f = [p_1 ; ... ; p_N] W_c + b_c``.
    An item with no modality gets ``f = 0``.
    """

    def __init__(self, n_modalities: int, dim: int, mode: str = "gate", gate_type: str = "vector") -> None:
        super().__init__()
        if mode not in MIXING_FUSIONS:
            raise ValueError(f"fusion mode {mode!r}; choose one of {', '.join(MIXING_FUSIONS)}.")
        if gate_type not in GATE_TYPES:
            raise ValueError(f"gate_type={gate_type!r}; choose one of {', '.join(GATE_TYPES)}.")
        self.mode = mode
        self.n_modalities = n_modalities
        self.gate: nn.Linear | None = None
        self.concat: nn.Linear | None = None
        if mode == "gate" and n_modalities >= 2:
            out = 1 if gate_type == "scalar" else dim
            # two modalities: one logit (sigmoid); N modalities: N logits (softmax)
            self.gate = nn.Linear(n_modalities * dim, out if n_modalities == 2 else out * n_modalities)
        if mode == "concat" and n_modalities >= 1:
            self.concat = nn.Linear(n_modalities * dim, dim)

    def modality_weights(self, projected: Sequence[torch.Tensor], masks: torch.Tensor) -> torch.Tensor:
        """Weights (N, n_items, d or 1) of the modalities; 0 where an item lacks one.

        For ``gate`` they sum to 1 over the modalities an item has; for ``sum`` each present
        modality weighs 1.
        """
        n_mod = len(projected)
        if self.gate is not None:
            logits = self.gate(torch.cat(list(projected), dim=1))
            if n_mod == 2:
                g = torch.sigmoid(logits)
                weights = torch.stack([g, 1.0 - g])
            else:
                n_items = projected[0].shape[0]
                weights = torch.softmax(logits.view(n_items, n_mod, -1).transpose(0, 1), dim=0)
        else:
            weights = torch.ones(n_mod, masks.shape[1], 1, device=masks.device)
        weights = weights * masks.unsqueeze(2)
        if self.mode == "gate":
            weights = _normalise(weights)
        return weights

    def shares(self, projected: Sequence[torch.Tensor], masks: torch.Tensor) -> torch.Tensor | None:
        """Each modality's share (N, n_items, d or 1), summing to 1 over the modalities an
        item has (0 for an item with none); None for ``concat``, which has no shares."""
        if self.mode == "concat":
            return None
        return _normalise(self.modality_weights(projected, masks))

    def forward(
        self, projected: Sequence[torch.Tensor], masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused content f (n_items, d) and each modality's per-item share (N, n_items, 1).

        The shares are the weights averaged over dimensions and normalised to sum to 1 over
        the modalities an item has (equal shares for ``concat``).
        """
        has_any = masks.any(dim=0)
        if self.mode == "concat":
            fused = self.concat(torch.cat(list(projected), dim=1)) * has_any.unsqueeze(1)
            weights = masks.unsqueeze(2).float()
        else:
            weights = self.modality_weights(projected, masks)
            fused = (weights * torch.stack(list(projected))).sum(dim=0)
        shares = weights.mean(dim=2, keepdim=True)
        shares = shares / shares.sum(dim=0, keepdim=True).clamp_min(1e-12)
        return fused, shares


def _normalise(weights: torch.Tensor) -> torch.Tensor:
    """Divide by the sum over modalities (dim 0); all-zero columns stay zero."""
    total = weights.sum(dim=0, keepdim=True)
    return torch.where(total > 0, weights / total.clamp_min(1e-12), torch.zeros_like(weights))


# ---------------------------------------------------------------------------- propagation
def lightgcn_layers(
    adj: torch.Tensor, user_e: torch.Tensor, item_e: torch.Tensor, n_layers: int
) -> list[torch.Tensor]:
    """LightGCN's layers E_0 .. E_n_layers (users then items), E_{l+1} = adj E_l."""
    all_e = torch.cat([user_e, item_e], dim=0)
    layers = [all_e]
    for _ in range(n_layers):
        all_e = sparse_mm(adj, all_e)
        layers.append(all_e)
    return layers


def lightgcn_propagate(
    adj: torch.Tensor, user_e: torch.Tensor, item_e: torch.Tensor, n_layers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """LightGCN: mean of layers 0..n_layers of E_{l+1} = adj E_l; split into users/items."""
    final = torch.stack(lightgcn_layers(adj, user_e, item_e, n_layers), dim=1).mean(dim=1)
    return torch.split(final, [user_e.shape[0], item_e.shape[0]])


def propagate(graph: torch.Tensor | EdgeGraph, x: torch.Tensor, steps: int = 1) -> torch.Tensor:
    """``graph^steps @ x`` for a torch sparse matrix or a (differentiable) :class:`EdgeGraph`."""
    for _ in range(steps):
        x = graph.propagate(x) if isinstance(graph, EdgeGraph) else sparse_mm(graph, x)
    return x


# ---------------------------------------------------------------------------- losses
def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, gamma: float = 0.0) -> torch.Tensor:
    """BPR: ``-mean log sigmoid(pos - neg)``.

    ``gamma > 0`` computes RecBole's ``BPRLoss`` form ``-mean log(gamma + sigmoid(pos - neg))``
    (RecBole uses ``gamma = 1e-10``; the models that reproduce RecBole's BPR and LightGCN use
    it), ``gamma = 0`` MMRec's numerically stable ``logsigmoid``.
    """
    if gamma > 0:
        return -torch.log(gamma + torch.sigmoid(pos_scores - neg_scores)).mean()
    return -F.logsigmoid(pos_scores - neg_scores).mean()


#: RecBole's ``BPRLoss`` epsilon (``recbole.model.loss.BPRLoss(gamma=1e-10)``).
RECBOLE_BPR_GAMMA = 1e-10


def dot_scores(user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products <user_b, item_b>."""
    return torch.mul(user, items).sum(dim=1)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE between two views (rows of ``a`` and ``b`` are positives, other rows of ``b``
    negatives), on cosine similarity: mean over rows of -log softmax(cos / T)[row]."""
    a = F.normalize(a, dim=1)
    b = F.normalize(b, dim=1)
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return F.cross_entropy(logits, target)


def sigmoid_gate(dim: int) -> nn.Sequential:
    """x -> sigmoid(W x + b), d -> d (the purifier's and the preference gates)."""
    return nn.Sequential(nn.Linear(dim, dim), nn.Sigmoid())
