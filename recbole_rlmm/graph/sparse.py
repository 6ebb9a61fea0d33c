"""Products of a frozen sparse graph with a dense matrix, faster than ``torch.sparse.mm``.

``torch.sparse.mm(A, X)`` with a COO ``A`` recomputes ``A``'s transpose (and sorts it) in
every backward pass, and its CPU kernel is slower than the CSR one. :func:`sparse_mm` keeps a
CSR copy of ``A`` (made on the first product) and of ``A^T`` (on the first backward pass) on
the tensor itself and multiplies with those. The products are the same to float rounding for
dense matrices of at least :data:`MIN_WIDTH` columns (narrower ones take ``torch.sparse.mm``):
both paths sum each output row over its non-zeros in column order, bit for bit on the Intel
AVX-512 development machine, within one or two ulps on an AMD EPYC whose vectorised loops round
differently (``tests/test_graph_sparse.py`` checks values and gradients against
``torch.sparse.mm``). A graph whose values require gradients (LATTICE's learned graph is an
edge list, not this) falls back to ``torch.sparse.mm``.

Measured on Amazon Baby (26,495 nodes, 239,350 non-zeros, 64 dims, one thread): two
LightGCN layers forward and backward 50 ms with ``torch.sparse.mm``, 23 ms here; a kNN item
graph (7,050 items, k = 10) 5.3 ms vs 1.9 ms.
"""

from __future__ import annotations

import warnings

import torch

_CACHE = "_rlmm_csr"
#: Narrower dense matrices go through ``torch.sparse.mm``: for widths 4-24 its COO kernel
#: rounds differently from the CSR one (measured on this project's x86 machine, torch 2.13).
MIN_WIDTH = 32


class _FrozenSparseMM(torch.autograd.Function):
    """``A @ X`` with the gradient ``A^T @ G``, through CSR copies of ``A`` and ``A^T`` (the
    transpose is made on the first backward pass: evaluation never needs it)."""

    @staticmethod
    def forward(ctx, matrix: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.matrix = matrix
        return torch.sparse.mm(_csr(matrix, transpose=False), dense)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor | None]:  # noqa: ANN001
        if not ctx.needs_input_grad[1]:
            return None, None
        return None, torch.sparse.mm(_csr(ctx.matrix, transpose=True), grad)


def _csr(matrix: torch.Tensor, transpose: bool) -> torch.Tensor:
    """A CSR copy of a COO ``matrix`` (or of its transpose), cached on ``matrix``."""
    name = _CACHE + ("_t" if transpose else "")
    cached = getattr(matrix, name, None)
    if cached is None:
        coo = matrix.t() if transpose else matrix
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
            warnings.simplefilter("ignore", UserWarning)
            cached = coo.coalesce().to_sparse_csr()
        setattr(matrix, name, cached)
    return cached


def csr_pair(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR copies of a COO ``matrix`` and of its transpose, cached on ``matrix``."""
    return _csr(matrix, transpose=False), _csr(matrix, transpose=True)


def sparse_mm(matrix: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``matrix @ dense`` for a sparse COO ``matrix`` (differentiable in ``dense``): as
    ``torch.sparse.mm``, through cached CSR copies when ``matrix`` is frozen."""
    if matrix.layout != torch.sparse_coo or matrix.requires_grad or dense.shape[-1] < MIN_WIDTH:
        return torch.sparse.mm(matrix, dense)
    if not (dense.requires_grad and torch.is_grad_enabled()):
        return torch.sparse.mm(_csr(matrix, transpose=False), dense)
    return _FrozenSparseMM.apply(matrix, dense)
