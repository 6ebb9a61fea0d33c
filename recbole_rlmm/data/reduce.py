"""Reducing a modality's features to ``feature_dim`` dimensions at load time, once, cached.

Every training step of RLMultimodalRec (and FREEDOM's auxiliary loss, LATTICE's learned
graph, VBPR, MMGCN) projects the full item feature matrix, so its cost grows with
``n_items x feature_dim``; a 4,096-d CNN feature costs 16 times a 256-d one. With
``feature_dim: k`` every modality with more than ``k`` dimensions is replaced, at load time,
by its first ``k`` principal components:

* ``feature_reduction: pca`` (default): PCA of the *standardised* features (each dimension
  centred and scaled to unit variance over the items that have the modality), so that a few
  large CNN activations do not own the components; the scores keep the standardised features'
  inner products as far as ``k`` components can.
* ``svd``: truncated SVD of the raw features (no centring or scaling), which keeps the raw
  inner products and hence, approximately, the raw cosine geometry the kNN item graphs use.

All-zero rows (items lacking the modality) stay all-zero and do not enter the statistics.
Files of up to :data:`EXACT_MAX_DIM` dimensions get the exact components (eigenvectors of
the D x D Gram matrix); wider ones a randomized SVD (Halko, Martinsson and Tropp 2011) with
``oversample`` extra directions and ``power_iters`` power iterations, from a fixed seed. Signs
are fixed (each component's largest loading is positive), so the result is deterministic
given the file. The file is read in row blocks (:mod:`recbole_rlmm.data.blocks`): memory is
O(n_rows x (k + oversample) + D x (k + oversample)), never the whole file.

The reduced rows are cached as a plain ``.npy`` (written atomically, loaded without pickle)
under ``feature_cache_dir`` (default ``<dataset folder>/_cache/features``), named after the
feature file, the method, ``k`` and the first 16 hex digits of the file's SHA-256: a changed
file gets a new cache entry, an unchanged one is reduced once.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from recbole_rlmm.data import feature_checks as checks
from recbole_rlmm.data.blocks import NpyRows
from recbole_rlmm.data.io import file_sha256, save_npy_atomic
from recbole_rlmm.keys.choices import REDUCTIONS
from recbole_rlmm.timing import phase

logger = logging.getLogger(__name__)

METHODS: tuple[str, ...] = REDUCTIONS
#: Up to this many dimensions the components are exact (a D x D eigendecomposition).
EXACT_MAX_DIM = 2048
#: Version of the computation; part of every cache name, bumped when results change.
VERSION = 1


def cache_path(path: Path, dim: int, method: str, cache_dir: Path) -> Path:
    """Where the reduction of ``path`` to ``dim`` dimensions by ``method`` is cached."""
    digest = file_sha256(path)[:16]
    return cache_dir / f"{path.stem}.{method}{dim}.v{VERSION}.{digest}.npy"


def _stats(reader: NpyRows, modality: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Present-row mask, and the mean and population std of every dimension over present rows
    (float64); checks the values as :func:`~recbole_rlmm.data.feature_checks.check_feature_values`."""
    n, d = reader.shape
    present = np.zeros(n, dtype=bool)
    total = np.zeros(d)
    count = 0
    for start, block in reader.blocks():
        checks.check_feature_values(reader.path, modality, block, first_row=start)
        rows = block.astype(np.float64)
        keep = np.any(rows != 0, axis=1)
        present[start : start + len(rows)] = keep
        total += rows[keep].sum(axis=0)
        count += int(keep.sum())
    mean = total / max(1, count)
    squares = np.zeros(d)
    for _, block in reader.blocks():
        rows = block.astype(np.float64)
        rows = rows[np.any(rows != 0, axis=1)] - mean
        squares += (rows * rows).sum(axis=0)
    std = np.sqrt(squares / max(1, count))
    return present, mean, std


class _Rows:
    """The (transformed) present rows of a file, in blocks: ``(x - shift) / scale``."""

    def __init__(self, reader: NpyRows, present: np.ndarray, shift: np.ndarray | None, scale: np.ndarray | None) -> None:
        self.reader, self.present, self.shift, self.scale = reader, present, shift, scale

    def blocks(self):  # noqa: ANN201 - a generator of (row slice in present order, rows)
        done = 0
        for start, block in self.reader.blocks():
            keep = self.present[start : start + len(block)]
            rows = block[keep].astype(np.float64)
            if self.shift is not None:
                rows -= self.shift
            if self.scale is not None:
                rows /= self.scale
            yield slice(done, done + len(rows)), rows
            done += len(rows)

    def times(self, right: np.ndarray) -> np.ndarray:
        """rows @ right, (n_present, right.shape[1])."""
        out = np.empty((int(self.present.sum()), right.shape[1]))
        for where, rows in self.blocks():
            out[where] = rows @ right
        return out

    def t_times(self, left: np.ndarray) -> np.ndarray:
        """rows.T @ left, (D, left.shape[1])."""
        out = np.zeros((self.reader.shape[1], left.shape[1]))
        for where, rows in self.blocks():
            out += rows.T @ left[where]
        return out

    def gram(self) -> np.ndarray:
        d = self.reader.shape[1]
        out = np.zeros((d, d))
        for _, rows in self.blocks():
            out += rows.T @ rows
        return out


def components(
    rows: _Rows, dim: int, seed: int = 0, oversample: int = 10, power_iters: int = 4
) -> np.ndarray:
    """The top ``dim`` right singular vectors (D, dim) of the rows, signs fixed."""
    d = rows.reader.shape[1]
    if d <= EXACT_MAX_DIM:
        values, vectors = np.linalg.eigh(rows.gram())
        basis = vectors[:, np.argsort(values)[::-1][:dim]]
    else:
        width = min(d, dim + oversample)
        omega = np.random.default_rng(seed).standard_normal((d, width))
        q, _ = np.linalg.qr(rows.times(omega))
        for _ in range(power_iters):
            z, _ = np.linalg.qr(rows.t_times(q))
            q, _ = np.linalg.qr(rows.times(z))
        small = rows.t_times(q).T  # (width, D) = Q^T X
        _, _, vt = np.linalg.svd(small, full_matrices=False)
        basis = vt[:dim].T
    signs = np.sign(basis[np.abs(basis).argmax(axis=0), np.arange(basis.shape[1])])
    return basis * np.where(signs == 0, 1.0, signs)


def reduce_file(path: Path, dim: int, method: str, modality: str = "features", seed: int = 0) -> np.ndarray:
    """The rows of ``path`` reduced to ``dim`` dimensions (float32, all-zero rows stay zero)."""
    if method not in METHODS:
        raise ValueError(f"feature_reduction {method!r}; choose one of {', '.join(METHODS)}")
    reader = NpyRows(path)
    n, d = reader.shape
    present, mean, std = _stats(reader, modality)
    dim = min(dim, d)
    out = np.zeros((n, dim), dtype=np.float32)
    if not present.any():
        return out
    if method == "pca":
        rows = _Rows(reader, present, mean, std + 1e-6)
    else:
        rows = _Rows(reader, present, None, None)
    basis = components(rows, min(dim, int(present.sum())), seed=seed)
    scores = rows.times(basis)
    out[present, : scores.shape[1]] = scores.astype(np.float32)
    return out


def reduced_features(path: Path, dim: int, method: str, cache_dir: Path, modality: str = "features") -> np.ndarray:
    """``path``'s rows reduced to ``dim`` dimensions: from the cache, or computed and cached."""
    target = cache_path(path, dim, method, cache_dir)
    with phase("feature_reduction"):
        if target.is_file():
            try:
                cached = np.load(target, allow_pickle=False)
                n_rows = NpyRows(path).shape[0]
                if cached.ndim == 2 and cached.shape[0] == n_rows and cached.dtype == np.float32:
                    logger.info("modality %s: %s reduced to %d dims (%s), from the cache %s", modality, path.name, cached.shape[1], method, target)
                    return cached
            except (OSError, ValueError):
                pass  # unreadable: computed again and replaced
            logger.warning("feature cache %s does not match %s; computing it again", target, path)
        start = time.perf_counter()
        reduced = reduce_file(path, dim, method, modality)
        save_npy_atomic(target, reduced)
        logger.info(
            "modality %s: %s reduced from %d to %d dims (%s) in %.1f s, cached in %s",
            modality, path.name, NpyRows(path).shape[1], reduced.shape[1], method, time.perf_counter() - start, target,
        )
        return reduced
