"""The evaluation collector: quadratic copying replaced by one concatenation (same tensors)."""

from __future__ import annotations

import types
from typing import Any


class _Blocks(list):
    """The tensor blocks collected for one evaluation key, concatenated when first read."""

def linear_collector(collector: types.ModuleType) -> None:
    """Full-ranking evaluation cost quadratic in the number of users.

    Breakage (cost, not an error): ``DataStruct.update_tensor`` concatenates every batch's
    result onto everything collected before, so an evaluation of U users in B batches copies
    about B x U / 2 rows. With RecBole's default ``eval_batch_size`` (4096 scores) a dataset of
    more than 4,096 items is evaluated one user per batch, so the copying grows with U squared:
    at Amazon Baby's size (19,445 users) the evaluation took 26.5 s instead of 11.7 s
    (``bench/eval_collector.py``; docs/RESULTS.md, Performance). Repair: keep the blocks in a list and concatenate them once, when the
    metrics read them (``DataStruct.__getitem__``/``get``, and ``Collector.get_data_struct``
    before it moves them to the CPU). Same tensors, same order, same device; the same
    ``ValueError`` for a key that holds no tensor.
    """
    import torch

    data_struct = collector.DataStruct

    def update_tensor(self: Any, name: str, value: torch.Tensor) -> None:
        held = self._data_dict.get(name)
        if held is not None and not isinstance(held, (torch.Tensor, _Blocks)):
            raise ValueError(f"{name} is not a tensor.")
        value = value.clone().detach()
        if held is None:
            self._data_dict[name] = value
        elif isinstance(held, _Blocks):
            held.append(value)
        else:
            self._data_dict[name] = _Blocks([held, value])

    def __getitem__(self: Any, name: str) -> Any:  # noqa: N807 - the method it replaces
        held = self._data_dict[name]
        if isinstance(held, _Blocks):
            held = self._data_dict[name] = torch.cat(held, dim=0)
        return held

    original_get_data_struct = collector.Collector.get_data_struct

    def get_data_struct(self: Any) -> Any:
        for name in list(self.data_struct._data_dict):
            self.data_struct[name]  # concatenates the blocks of each key once
        return original_get_data_struct(self)

    data_struct.update_tensor = update_tensor
    data_struct.__getitem__ = __getitem__
    collector.Collector.get_data_struct = get_data_struct
