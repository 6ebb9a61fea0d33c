"""``python -m recbole_rlmm.cli`` is ``recbole-rlmm``."""

import sys

from recbole_rlmm.cli import main

sys.exit(main())
