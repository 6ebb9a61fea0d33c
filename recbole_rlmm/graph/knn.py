"""Item-item kNN graphs built from modality features (MMRec's construction).

* :class:`EdgeGraph` is a sparse square graph kept as an edge list, so that its edge values
  may carry gradients (LATTICE's learned item graph) or be frozen (FREEDOM's, ours);
* :func:`knn_graph_edges` builds a modality's kNN item graph without materialising more
  than one block of the n_items x n_items cosine-similarity matrix at a time;
* :func:`mix_item_graphs` sums per-modality item graphs with modality weights,
  re-normalised per item over the modalities that item has.

Graph conventions follow MMRec (enoche/MMRec, ``src/utils/utils.py`` and the models):
a kNN row keeps the ``k`` most similar items *including the item itself* (MMRec's
``torch.topk`` over the full similarity row), and a graph S is normalised as
D^-1/2 S D^-1/2 with D the row sums of S.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from recbole_rlmm.errors import UserError
from recbole_rlmm.keys.choices import KNN_BACKENDS
from recbole_rlmm.timing import phase


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


#: Largest block of the similarity matrix computed at once (rows x n_items x 4 bytes).
SIM_BLOCK_BYTES = 256 << 20


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str) -> str:
    """``auto`` -> ``faiss`` when faiss is installed, else ``torch``; ``faiss`` without faiss
    installed is an error naming the extra."""
    if backend == "auto":
        return "faiss" if faiss_available() else "torch"
    if backend == "faiss" and not faiss_available():
        raise UserError(
            "knn_backend=faiss needs faiss: pip install \"recbole-rlmm[faiss]\" (or faiss-cpu), or set "
            "knn_backend: torch."
        )
    if backend not in KNN_BACKENDS:
        raise ValueError(f"knn_backend {backend!r}; choose one of {', '.join(KNN_BACKENDS)}")
    return backend


@torch.no_grad()
def knn_neighbours(
    x: torch.Tensor,
    k: int,
    mask: torch.Tensor,
    include_self: bool = True,
    chunk_size: int = 2048,
    candidates: torch.Tensor | None = None,
    backend: str = "torch",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of each valid item's ``k`` most cosine-similar candidate items.

    Rows: items with ``mask`` True. Neighbours: items with ``candidates`` True (default
    ``mask``), so an item outside ``candidates`` is nobody's neighbour; this is how cold items
    (no training interaction) get neighbours among the warm items without becoming anyone's
    neighbour. With ``include_self`` the item itself competes (and, with similarity 1,
    normally wins a place), as in MMRec's ``torch.topk`` over a full similarity row. The
    similarity matrix is computed ``chunk_size`` rows at a time, fewer when a block would
    exceed :data:`SIM_BLOCK_BYTES` (more than 32,768 items), so memory stays bounded.

    ``backend="faiss"``: an exact inner-product index (``faiss.IndexFlatIP``) over the
    normalised candidates; the same neighbours as ``torch`` up to ties between equal
    similarities (their order may differ).
    """
    device = x.device
    xn = torch.nn.functional.normalize(x.detach().float(), dim=1)
    valid = mask.nonzero(as_tuple=True)[0]
    candidates = mask if candidates is None else candidates & mask
    k = min(int(k), int(candidates.sum()) - (0 if include_self else 1))
    if k <= 0 or len(valid) == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty
    if resolve_backend(backend) == "faiss":
        return _faiss_neighbours(xn, k, valid, candidates, include_self)
    invalid = ~candidates
    chunk_size = max(1, min(int(chunk_size), SIM_BLOCK_BYTES // (4 * max(1, xn.shape[0]))))
    rows, cols = [], []
    for start in range(0, len(valid), chunk_size):
        chunk = valid[start : start + chunk_size]
        sim = xn[chunk] @ xn.T
        diagonal = torch.arange(len(chunk), device=device), chunk
        self_sim = sim[diagonal].clone()
        sim[:, invalid] = -float("inf")
        if not include_self:
            sim[diagonal] = -float("inf")
        else:
            outside = invalid[chunk]  # rows outside the candidates still compete with themselves
            sim[diagonal[0][outside], chunk[outside]] = self_sim[outside]
        top = sim.topk(k, dim=1).indices
        rows.append(chunk.repeat_interleave(k))
        cols.append(top.reshape(-1))
    return torch.cat(rows), torch.cat(cols)


def _faiss_neighbours(
    xn: torch.Tensor, k: int, valid: torch.Tensor, candidates: torch.Tensor, include_self: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`knn_neighbours` with faiss (``xn``: unit rows)."""
    import faiss
    import numpy as np

    faiss.omp_set_num_threads(torch.get_num_threads())
    device = xn.device
    data = xn.cpu().numpy()
    cand = candidates.cpu().nonzero(as_tuple=True)[0].numpy()
    index = faiss.IndexFlatIP(data.shape[1])
    index.add(np.ascontiguousarray(data[cand]))
    wanted = min(k + 1, len(cand))
    rows_out, cols_out = [], []
    valid_np = valid.cpu().numpy()
    is_cand = candidates.cpu().numpy()
    step = max(1, SIM_BLOCK_BYTES // (4 * max(1, len(cand))))
    for start in range(0, len(valid_np), step):
        chunk = valid_np[start : start + step]
        queries = np.ascontiguousarray(data[chunk])
        sims, labels = index.search(queries, wanted)
        neighbours = np.where(labels >= 0, cand[np.maximum(labels, 0)], -1)
        sims = np.where(labels >= 0, sims, -np.inf)
        own = neighbours == chunk[:, None]
        if include_self:
            # a row outside the candidates competes with itself (similarity of its own vector)
            self_sim = np.einsum("ij,ij->i", queries, queries)
            extra = np.where(is_cand[chunk], -np.inf, self_sim)
            neighbours = np.concatenate([neighbours, chunk[:, None]], axis=1)
            sims = np.concatenate([sims, extra[:, None]], axis=1)
        else:
            sims = np.where(own, -np.inf, sims)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        rows_out.append(np.repeat(chunk, k))
        cols_out.append(np.take_along_axis(neighbours, order, axis=1).reshape(-1))
    rows = torch.from_numpy(np.concatenate(rows_out)).to(device)
    cols = torch.from_numpy(np.concatenate(cols_out)).to(device)
    return rows, cols


def cosine_values(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, block_edges: int | None = None) -> torch.Tensor:
    """cos(x[rows], x[cols]) per edge; differentiable with respect to ``x``.

    Without gradients the edges are taken ``block_edges`` at a time (default: about 64 MB of
    gathered rows), so that frozen graphs of wide features (LATTICE's 4,096-d image graph)
    never gather (n_items x k) full rows at once; the values are the same.
    """
    if x.requires_grad:
        xn = torch.nn.functional.normalize(x, dim=1)
        return (xn[rows] * xn[cols]).sum(dim=1)
    step = block_edges or max(1, (64 << 20) // max(1, 4 * x.shape[1]))
    parts = []
    for r, c in zip(rows.split(step), cols.split(step), strict=True):
        a = torch.nn.functional.normalize(x[r], dim=1)
        b = torch.nn.functional.normalize(x[c], dim=1)
        parts.append((a * b).sum(dim=1))
    return torch.cat(parts) if parts else x.new_zeros(0)


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
    candidates: torch.Tensor | None = None,
    backend: str = "torch",
) -> EdgeGraph:
    """A modality's kNN item graph (MMRec's construction) as an :class:`EdgeGraph`.

    ``weighted``: edges carry the cosine similarity (LATTICE; clamped at 0 so the degree
    normalisation stays defined), else 1 (FREEDOM). ``normalize``: apply
    D^-1/2 S D^-1/2. Values are differentiable with respect to ``x`` when weighted.
    ``candidates``, ``backend``: see :func:`knn_neighbours`.
    """
    with phase("knn_graphs"):  # start-up cost, read by bench/perf.py
        rows, cols = knn_neighbours(x, k, mask, include_self=include_self, candidates=candidates, backend=backend)
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
