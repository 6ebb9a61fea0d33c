"""recbole-rlmm: multimodal recommendation for RecBole.

Importing the package applies the small RecBole 1.2.1 compatibility patches of
:mod:`recbole_rlmm.compat` (numpy 2, pandas 3, scipy >= 1.12, torch >= 2.6).
"""

from recbole_rlmm import compat as _compat

_compat.apply()

from recbole_rlmm.quick_start import run_recbole_rlmm  # noqa: E402
from recbole_rlmm.registry import get_model  # noqa: E402

__version__ = "0.1.0"
__all__ = ["get_model", "run_recbole_rlmm", "__version__"]
