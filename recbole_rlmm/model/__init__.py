"""The plugin models and their building blocks.

``abstract`` (the model contract), ``layers`` (shared modules and losses), ``graph`` (user-item
and kNN item graphs), and one module per model.
"""

from recbole_rlmm.model.freedom import FREEDOM
from recbole_rlmm.model.lattice import LATTICE
from recbole_rlmm.model.mmgcn import MMGCN
from recbole_rlmm.model.rlmultimodalrec import RLMultimodalRec
from recbole_rlmm.model.vbpr import VBPR

__all__ = ["FREEDOM", "LATTICE", "MMGCN", "RLMultimodalRec", "VBPR"]
