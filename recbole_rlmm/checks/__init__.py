"""Checks that run before training, so that bad input ends in one clear line.

Every check raises a :class:`~recbole_rlmm.errors.UserError` subclass whose message names the
file, field or key, the value and the fix (``recbole-rlmm`` prints it as one line and exits
with status 2). docs/CHECKS.md lists them all.

* :mod:`.keys`: the table of configuration keys (type, range, default, meaning, which models
  read them), value checks, and warnings for keys no part of the run reads;
* :mod:`.data`: the dataset folder and its atomic files, read before RecBole parses them;
* :mod:`.features`: feature and item index files (called by the feature loader);
* :mod:`.run`: what :func:`recbole_rlmm.quick_start.run_recbole_rlmm` calls, in order
  (:func:`~.run.validate_before_dataset`, :func:`~.run.validate_dataset`), and the writable
  folders.
"""

from __future__ import annotations
