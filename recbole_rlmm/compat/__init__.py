"""Repairs: what breaks, or is wrong, in plain RecBole 1.2.1 on today's scientific stack.

RecBole 1.2.1 is the latest release and is no longer maintained. On a fresh install it
meets numpy 2, pandas 3 (copy-on-write), scipy >= 1.12 and torch >= 2.6, each of which
breaks one of its code paths. Pinning all four to 2023 versions would make us impossible
to install next to anything else, so we pin only RecBole itself (``recbole==1.2.1``) and
repair the few broken functions here.

``import recbole_rlmm`` applies these repairs and nothing else. Each one changes only what
crashes or is wrong in plain RecBole on the stack it runs on; where the stack does not need a
repair (numpy 1, pandas 2 without copy-on-write, scipy < 1.12, torch < 2.6, a GPU), RecBole's
own code runs. Code that works in plain RecBole therefore behaves exactly as in plain RecBole:
same metrics, same files (RecBole's own pickled checkpoints), same data read, same errors.
``tests/test_compat.py`` tests each repair and ``tests/test_guest.py`` compares plain RecBole
with and without ``import recbole_rlmm`` in fresh processes (``noxfile.py`` runs that on
today's stack and on an older one).

Our own choices (the pickle-free checkpoint format, cold items never drawn as negatives, our
defaults, a user's ``dataset/ml-100k`` first, refusal of pickled caches, ``use_gpu``) are not
here: our runner applies them (:mod:`recbole_rlmm.runner`, :mod:`recbole_rlmm.runner.trainer`,
:mod:`recbole_rlmm.config`).

When repairs apply: :func:`install` (run by ``import recbole_rlmm``) repairs the RecBole
modules that are already imported and registers an import hook that repairs the others the
moment they are imported. Importing ``recbole_rlmm`` therefore costs nothing (no torch, no
RecBole), and RecBole code written by a user works the same whether it imports RecBole
before or after ``recbole_rlmm``. :func:`apply` imports and repairs everything at once.

One repair is about cost rather than breakage: RecBole's evaluation collector copies everything
collected so far at every batch, which makes a full-ranking evaluation quadratic in the number of
users (:func:`_linear_collector`); the repaired collector returns the same tensors.

Our package never imports RecBole's own quick_start module on today's stack: it imports
ray 2.6.3 at module level, which needs ``pkg_resources`` and ``np.bool8``.
:mod:`recbole_rlmm.runner` holds the same functions. Where it does import (numpy 1), its
``load_data_and_model`` is repaired like the trainer (torch >= 2.6).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Callable
from typing import Any

from recbole_rlmm.compat.checkpoints import recbole_checkpoints
from recbole_rlmm.compat.evaluation import linear_collector
from recbole_rlmm.compat.numerics import dok_update, metric_values, numpy_aliases
from recbole_rlmm.compat.pandas import fillna, float_seq_split, token_seq_remap
from recbole_rlmm.compat.processes import (
    ddp_on_cpu,
    distributed_on_cpu,
    ensure_dir,
    join_cpu_process_group,
)
from recbole_rlmm.compat.stack import (
    numpy_needs_aliases,
    numpy_scalar_reprs,
    pandas_agg_len_per_row,
    pandas_copy_on_write,
    scipy_lacks_dok_update,
    torch_loads_weights_only,
)

__all__ = ["APPLIED", "PATCHES", "REPAIRS", "apply", "install", "join_cpu_process_group", "needed", "torch_loads_weights_only"]

#: Names of the repairs applied so far, in order.
APPLIED: list[str] = []


# ---------------------------------------------------------------------------- registry
#: Modules of RecBole's that read pre-trained files or checkpoints with a bare ``torch.load``.
_CHECKPOINT_READERS = (
    "recbole.trainer.trainer",
    "recbole.quick_start.quick_start",
    "recbole.model.general_recommender.neumf",
    "recbole.model.general_recommender.convncf",
    "recbole.model.general_recommender.nais",
    "recbole.model.general_recommender.ract",
    "recbole.model.sequential_recommender.s3rec",
    "recbole.model.context_aware_recommender.kd_dagfm",
)

#: The one repaired module that may fail to import (it imports ray 2.6.3; numpy 2 breaks it).
_OPTIONAL = "recbole.quick_start.quick_start"

#: RecBole module -> the repairs that apply to it, in order.
PATCHES: dict[str, list[Callable[[types.ModuleType], None]]] = {
    "recbole.utils.utils": [ensure_dir],
    "recbole.utils": [ensure_dir],
    "recbole.utils.logger": [ensure_dir],
    "recbole.data.utils": [ensure_dir],
    "recbole.config.configurator": [numpy_aliases, distributed_on_cpu],
    "recbole.model.general_recommender.lightgcn": [dok_update],
    "recbole.model.general_recommender.ngcf": [dok_update],
    "recbole.model.general_recommender.ncl": [dok_update],
    "recbole.trainer.trainer": [recbole_checkpoints, ddp_on_cpu, ensure_dir],
    "recbole.data.dataset.dataset": [fillna, token_seq_remap, float_seq_split, ensure_dir],
    "recbole.evaluator.collector": [linear_collector],
    "recbole.evaluator.evaluator": [metric_values],
}
for _name in _CHECKPOINT_READERS:
    PATCHES.setdefault(_name, [])
    if recbole_checkpoints not in PATCHES[_name]:
        PATCHES[_name].insert(0, recbole_checkpoints)

#: What plain RecBole does that a repair changes: ``(stack condition, repair)``; the README's
#: table of repairs lists the same. ``needed()`` says which of them this stack needs.
REPAIRS: dict[str, Callable[[], bool]] = {
    "numpy_aliases": numpy_needs_aliases,
    "dok_update": scipy_lacks_dok_update,
    "recbole_checkpoints": torch_loads_weights_only,
    "metric_values": numpy_scalar_reprs,
    "fillna": pandas_copy_on_write,
    "token_seq_remap": lambda: not pandas_agg_len_per_row(),
    "float_seq_split": lambda: not pandas_agg_len_per_row(),
    "distributed_on_cpu": lambda: True,
    "ddp_on_cpu": lambda: True,
    "ensure_dir": lambda: True,
    "linear_collector": lambda: True,
}


def needed() -> list[str]:
    """The repairs that change something on this stack (the others run RecBole's own code)."""
    return [name for name, condition in REPAIRS.items() if condition()]

_patched: set[str] = set()


def _patch(name: str, module: types.ModuleType) -> None:
    if name in _patched:
        return
    _patched.add(name)
    for patch in PATCHES[name]:
        patch(module)
        label = patch.__name__.lstrip("_")
        if label not in APPLIED:
            APPLIED.append(label)


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then the patches of that module."""

    def __init__(self, name: str, loader: importlib.abc.Loader) -> None:
        self.name = name
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.loader.exec_module(module)
        _patch(self.name, module)


class _PatchingFinder(importlib.abc.MetaPathFinder):
    """Import hook: the RecBole modules of :data:`PATCHES` are patched when first imported."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in PATCHES or fullname in _patched:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(fullname, spec.loader)
                return spec
        return None


_FINDER = _PatchingFinder()


def install() -> None:
    """Patch the RecBole modules already imported; patch the others when they are imported."""
    for name in PATCHES:
        module = sys.modules.get(name)
        if module is not None:
            _patch(name, module)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def apply() -> list[str]:
    """Import every patched RecBole module now (patching each); returns the applied patches."""
    install()
    for name in PATCHES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001
            if name != _OPTIONAL:
                raise  # RecBole's quick_start imports ray, which fails on today's stack
    return APPLIED
