"""The error of using a trained model (a checkpoint, a user or item token, a request)."""

from __future__ import annotations

from recbole_rlmm.errors import UserError


class InferenceError(UserError):
    """A request this checkpoint or model cannot serve (the message says why)."""
