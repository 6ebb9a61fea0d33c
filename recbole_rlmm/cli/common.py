"""What the commands share: the help formatter and ``--config_files``."""

from __future__ import annotations

import argparse
from typing import Any


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps the examples' line breaks."""


def add_config_files(parser: Any, help_text: str) -> None:
    """``--config_files a.yaml b.yaml`` (a quoted ``"a.yaml b.yaml"`` works too), as in every
    command; read back with :func:`recbole_rlmm.keys.sources.split_config_files`."""
    parser.add_argument("--config_files", nargs="+", default=None, metavar="YAML", help=help_text)
