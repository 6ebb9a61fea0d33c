"""The one base class of every expected failure (bad input, a refused request).

The command line prints such an error as one line, ``recbole-rlmm: error: ...``, and exits
with status 2 (``--debug`` shows the traceback); anything else is a bug and keeps its
traceback. Each subclass lives with the code that raises it: ``FeatureFileError`` (feature
files), ``PrepareError`` (``prepare``), ``ExperimentError`` (``compare``/``tune``),
``DatasetNotFoundError`` (config), ``MissingExtraError`` (optional packages).
"""

from __future__ import annotations

from contextvars import ContextVar


class UserError(ValueError):
    """A problem with the user's input or request; the message names it and the fix."""


#: How the caller lets a pickled checkpoint load, for refusal messages: an argument or setting
#: that exists where the refusal is raised (the command line sets ``--trust-checkpoint``).
DEFAULT_TRUST_HINT = "load it inside `with recbole_rlmm.checkpoint.trusted_checkpoints():`"
TRUST_HINT: ContextVar[str] = ContextVar("recbole_rlmm_trust_hint", default=DEFAULT_TRUST_HINT)


class ConfigError(UserError):
    """A config key has a value that cannot work; the message names the key and the fix."""
