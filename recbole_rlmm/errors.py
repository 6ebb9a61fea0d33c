"""The one base class of every expected failure (bad input, a refused request).

The command line prints such an error as one line, ``recbole-rlmm: error: ...``, and exits
with status 2 (``--debug`` shows the traceback); anything else is a bug and keeps its
traceback. Each subclass lives with the code that raises it: ``FeatureFileError`` (feature
files), ``PrepareError`` (``prepare``), ``ExperimentError`` (``compare``/``tune``),
``DatasetNotFoundError`` (config), ``MissingExtraError`` (optional packages).
"""

from __future__ import annotations


class UserError(ValueError):
    """A problem with the user's input or request; the message names it and the fix."""
