"""``python -m recbole_rlmm.prepare {mmrec,table,amazon} ...`` (same as ``recbole-rlmm prepare``)."""

from . import main

raise SystemExit(main())
