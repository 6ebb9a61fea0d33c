"""Reading a 2-d ``.npy`` feature file a block of rows at a time.

A feature file can be larger than the memory a run should spend on it (Amazon Electronics:
63,001 items x 4,096 float32 = 1 GB). :class:`NpyRows` reads the header once and then
plain ``read`` calls of at most ``max_bytes`` each, never memory-mapping the file, so no more
than one block of the file is ever resident in the process (a memory map would count the
whole file in the process's resident memory once it has been read). No pickle is involved.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

#: Default size of one block read from a feature file.
BLOCK_BYTES = 64 << 20


class NpyRows:
    """A C-ordered 2-d ``.npy`` file, read in row blocks (Fortran-ordered files and format 3.0
    are read whole)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:  # format 3.0: numpy reads it (whole)
                array = np.load(self.path, allow_pickle=False, mmap_mode="r")
                shape, fortran, dtype = array.shape, True, array.dtype
            self.offset = f.tell()
        if len(shape) != 2:
            raise ValueError(f"{self.path}: expected a 2-d array, got shape {shape}")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype: np.dtype = np.dtype(dtype)
        self.fortran = bool(fortran)

    def block_rows(self, max_bytes: int = BLOCK_BYTES) -> int:
        """Rows per block so that one block (as float64) stays under ``max_bytes``."""
        return max(1, int(max_bytes // max(1, self.shape[1] * 8)))

    def blocks(self, max_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, rows)`` blocks in file order, in the file's dtype."""
        n, d = self.shape
        if self.fortran:  # rare; numpy reads it whole
            yield 0, np.ascontiguousarray(np.load(self.path, allow_pickle=False))
            return
        step = self.block_rows(max_bytes)
        itemsize = self.dtype.itemsize
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            for start in range(0, n, step):
                rows = min(step, n - start)
                data = f.read(rows * d * itemsize)
                if len(data) != rows * d * itemsize:
                    raise ValueError(f"{self.path}: the file ends inside row {start + len(data) // max(1, d * itemsize)}")
                yield start, np.frombuffer(data, dtype=self.dtype).reshape(rows, d)
