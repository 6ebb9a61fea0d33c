"""The memory allocator of the benchmarks' training processes (docs/RESULTS.md, "Allocator").

With glibc's defaults, PyTorch's large CPU tensors are mapped from the kernel on allocation and
unmapped on release, so every batch touches fresh pages, and the page faults can take more of a
training run than its arithmetic. Two ways around it, neither of which changes a result:

- ``jemalloc``: jemalloc preloaded (``LD_PRELOAD``), told to keep freed pages for reuse
  (``dirty_decay_ms:-1,muzzy_decay_ms:-1``); needs the library (Debian/Ubuntu: ``apt-get install
  libjemalloc2``);
- ``glibc-kept``: glibc itself, with the largest mmap threshold it accepts on 64-bit (32 MiB) and
  no trimming of the heap top; needs nothing, and helps less where tensors exceed 32 MiB.

``bench/perf.py --malloc`` and ``bench/reference_parity.py --malloc`` give their child processes
one of them; in a shell, ``eval "$(python bench/malloc.py jemalloc)"`` exports it for what follows
(``bench/tuned_table.sh`` does so with ``MALLOC=jemalloc``). Nothing in the package sets an
allocator: a process's allocator is its owner's choice.
"""

from __future__ import annotations

import ctypes.util
import os
import shlex
import sys
from pathlib import Path

CHOICES = ("default", "jemalloc", "glibc-kept")
JEMALLOC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2", "/opt/homebrew/lib/libjemalloc.2.dylib",
)


def find_jemalloc() -> str | None:
    found = next((p for p in JEMALLOC_PATHS if Path(p).is_file()), None)
    if found is not None:
        return found
    name = ctypes.util.find_library("jemalloc")  # runs ldconfig: only where the usual paths fail
    if not name:
        return None
    return next((str(p) for d in ("/usr/lib", "/usr/lib64", "/usr/local/lib") if Path(d).is_dir()
                 for p in Path(d).rglob(name)), None)


def malloc_env(malloc: str, who: str = "bench") -> dict[str, str]:
    """Environment variables that give a child process the allocator ``malloc`` (one of
    :data:`CHOICES`); SystemExit with the fix when jemalloc is asked for and not installed."""
    if malloc not in CHOICES:
        raise SystemExit(f"{who}: --malloc {malloc}: not one of {', '.join(CHOICES)}")
    if malloc == "default":
        return {}
    if malloc == "glibc-kept":
        return {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024), "MALLOC_TRIM_THRESHOLD_": str(2**62),
                "MALLOC_TOP_PAD_": str(64 * 1024 * 1024)}
    found = find_jemalloc()
    if found is None:
        raise SystemExit(f"{who}: --malloc jemalloc: libjemalloc.so.2 not found; install it (Debian/Ubuntu: "
                         "apt-get install libjemalloc2; Fedora: dnf install jemalloc) or use --malloc glibc-kept")
    preload = " ".join(filter(None, [os.environ.get("LD_PRELOAD"), found]))
    return {"LD_PRELOAD": preload, "MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"}


def active() -> str:
    """The allocator this process runs under, as far as its environment says."""
    if "jemalloc" in os.environ.get("LD_PRELOAD", ""):
        return "jemalloc"
    return "glibc-kept" if os.environ.get("MALLOC_TRIM_THRESHOLD_") else "default"


if __name__ == "__main__":  # python bench/malloc.py jemalloc  ->  export lines for eval
    env = malloc_env(sys.argv[1] if len(sys.argv) > 1 else "default", "bench/malloc.py")
    print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items()))
