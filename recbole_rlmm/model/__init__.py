"""The plugin models and their building blocks.

``abstract`` (the model contract), ``layers`` (shared modules and losses), and one module per
model; the graphs they propagate on live in :mod:`recbole_rlmm.graph`.
"""

from recbole_rlmm.model.bm3 import BM3
from recbole_rlmm.model.freedom import FREEDOM
from recbole_rlmm.model.lattice import LATTICE
from recbole_rlmm.model.lgmrec import LGMRec
from recbole_rlmm.model.mentor import MENTOR
from recbole_rlmm.model.mgcn import MGCN
from recbole_rlmm.model.mmgcn import MMGCN
from recbole_rlmm.model.rlmultimodalrec import RLMultimodalRec
from recbole_rlmm.model.smore import SMORE
from recbole_rlmm.model.vbpr import VBPR

__all__ = ["BM3", "FREEDOM", "LATTICE", "LGMRec", "MENTOR", "MGCN", "MMGCN", "RLMultimodalRec", "SMORE", "VBPR"]
