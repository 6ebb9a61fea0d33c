"""Several processes of one run (RecBole's distributed data parallel): values shared from rank 0,
and a clean exit from the process group."""

from __future__ import annotations

import gc
from typing import Any

import torch.distributed as dist


def shared_value(config: Any, value: Any) -> Any:
    """``value`` as rank 0 has it, in every process of a distributed run (``value`` itself in
    a single process): the ranks agree on one checkpoint name, which rank 0 writes and every
    rank reads back for the test evaluation (``checkpoint_dir`` must be a folder every machine
    sees, as in RecBole)."""
    if config["single_spec"]:
        return value

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]

def leave_process_group() -> None:
    """End this rank's part in a distributed run so that the process can exit cleanly.

    The ranks first wait for each other (no rank tears its connections down while another
    still talks to it), then the last references to the process group (the trainer's
    ``DistributedDataParallel`` wrapper and its reducer, which sit in reference cycles) are
    collected and the group destroyed while the interpreter is fully alive. Left to the
    interpreter's exit, gloo's worker threads were destroyed during finalisation and the
    process aborted (``terminate called without an active exception``, SIGABRT) at random.
    """

    import torch.distributed as dist

    dist.barrier()
    gc.collect()  # the DDP wrapper's cycles hold the group
    dist.destroy_process_group()
