"""Configuration: RecBole's ``Config`` with our property files layered in.

Priority, lowest first: RecBole's defaults < ``properties/overall.yaml`` <
``properties/model/<Model>.yaml`` < ``properties/dataset/<dataset>.yaml`` < the user's
``config_file_list`` < ``config_dict`` < ``--key=value`` on the command line. RecBole's own
model yaml (for its built-ins) sits with RecBole's defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recbole.config import Config

from recbole_rlmm.registry import get_model


def properties_dir() -> Path:
    """The properties folder: inside the installed wheel, or at the checkout's root."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "properties", here.parent / "properties"):
        if (candidate / "overall.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"recbole_rlmm's properties/overall.yaml was found neither in {here} nor in {here.parent}; "
        "reinstall the package."
    )


def default_config_files(model_name: str, dataset: str | None) -> list[str]:
    """Our property files that apply to ``model_name`` on ``dataset``, lowest priority first."""
    root = properties_dir()
    files = [root / "overall.yaml", root / "model" / f"{model_name}.yaml"]
    if dataset:
        files.append(root / "dataset" / f"{dataset}.yaml")
    return [str(f) for f in files if f.is_file()]


def create_config(
    model: str | type | None = None,
    dataset: str | None = None,
    config_file_list: Sequence[str] | None = None,
    config_dict: dict[str, Any] | None = None,
) -> Config:
    """Build a RecBole ``Config`` for one of our models or any RecBole built-in.

    ``model`` and ``dataset`` fall back to ``config_dict``, then ``--model=``/``--dataset=``
    on the command line, then ``RLMultimodalRec`` on ``amazon``.
    """
    config_dict = dict(config_dict or {})
    cmd = _command_line_values()
    model = cmd.get("model") or model or config_dict.get("model") or "RLMultimodalRec"
    dataset = cmd.get("dataset") or dataset or config_dict.get("dataset") or "amazon"
    model_class = get_model(model) if isinstance(model, str) else model
    files = default_config_files(model_class.__name__, dataset) + list(config_file_list or [])
    return Config(model=model_class, dataset=dataset, config_file_list=files, config_dict=config_dict)


def _command_line_values() -> dict[str, str]:
    """``--model=X`` / ``--dataset=Y`` as RecBole's own parser reads them from ``sys.argv``."""
    import sys

    values: dict[str, str] = {}
    for arg in sys.argv[1:]:
        if arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            if key in ("model", "dataset"):
                values[key] = value
    return values
