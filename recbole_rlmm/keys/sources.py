"""Where a run's keys come from: yaml files (read with RecBole's loader), ``config_dict``, and
``--key=value`` on the command line, merged as RecBole merges them."""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from recbole_rlmm.errors import ConfigError


def yaml_loader() -> Any:
    """RecBole's yaml loader (``1e-3`` is a float, as RecBole reads config files)."""
    from recbole.config import (
        Config,  # lazy: RecBole imports torch; the command line's --help must not
    )

    return Config._build_yaml_loader(None)


def parse_value(text: str) -> Any:
    """Turn the text of an override into a value: a Python literal, else YAML, else the text.

    ``5`` -> 5, ``1e-3`` -> 0.001, ``[10,20]`` -> [10, 20], ``true`` -> True,
    ``{RS: [0.8, 0.1, 0.1]}`` -> a dict, ``late`` -> "late".
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return yaml.load(text, Loader=yaml_loader())
    except yaml.YAMLError:
        return text


def read_yaml(path: str | os.PathLike[str], what: str = "config file", fix: str = "check the path given to --config_files") -> dict[str, Any]:
    """A yaml file read with RecBole's loader (``1e-3`` is a float); {} for an empty file.

    A file that is missing, a folder, not UTF-8, not valid YAML or not a mapping of keys is a
    :class:`ConfigError` naming the file (and the line, for a syntax error).
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist; {fix}.") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder; pass the yaml file inside it.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path}: byte {exc.start} is not UTF-8; save the file as UTF-8."
        ) from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}.") from None
    try:
        data = yaml.load(text, Loader=yaml_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{what} {path} is not valid YAML ({where.strip(' :') or 'syntax'}: {problem}); "
            "write one `key: value` per line."
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{what} {path} holds a {type(data).__name__}, not a mapping of keys; write one "
            "`key: value` per line (e.g. `epochs: 50`)."
        )
    return data


def command_line_values() -> dict[str, Any]:
    """``--key=value`` from ``sys.argv`` as RecBole's ``Config._load_cmd_line`` reads them."""
    values: dict[str, Any] = {}
    if "ipykernel_launcher" not in sys.argv[0]:
        for arg in sys.argv[1:]:
            if arg.startswith("--") and len(arg[2:].split("=")) == 2:
                key, value = arg[2:].split("=")
                values[key] = value
    from recbole.config import (
        Config,  # lazy: RecBole imports torch; the command line's --help must not
    )

    return Config._convert_config_dict(None, values)


def external_values(
    config_file_list: Sequence[str] | None, config_dict: dict[str, Any] | None
) -> dict[str, Any]:
    """The user's layers merged as RecBole merges them: files < ``config_dict`` < command line."""
    merged: dict[str, Any] = {}
    for file in config_file_list or []:
        merged.update(read_yaml(file))
    merged.update(config_dict or {})
    merged.update(command_line_values())
    return merged


def user_key_sources(
    config_file_list: Sequence[str] | None,
    config_dict: Mapping[str, Any] | None,
    dataset_yaml: str | Path | None = None,
) -> dict[str, str]:
    """Every key the user set -> where: the dataset folder's yaml, a config file, config_dict
    or the command line (the last one that sets a key wins, as in RecBole)."""
    out: dict[str, str] = {}
    if dataset_yaml is not None and Path(dataset_yaml).is_file():
        out.update(dict.fromkeys(read_yaml(dataset_yaml), str(dataset_yaml)))
    for file in config_file_list or []:
        out.update(dict.fromkeys(read_yaml(file), str(file)))
    out.update(dict.fromkeys(config_dict or {}, "config_dict/--set"))
    out.update(dict.fromkeys(command_line_values(), "command line"))
    return out


def split_config_files(items: Iterable[str] | str | None, must_exist: bool = True) -> list[str]:
    """Config files from ``--config_files``: each item may hold several space-separated paths.

    With ``must_exist`` every file must exist (checked here, before any training).
    """
    if items is None:
        return []
    if isinstance(items, (str, os.PathLike)):
        items = [str(items)]
    files = [part for item in items for part in str(item).split()]
    missing = [f for f in files if must_exist and not Path(f).is_file()]
    if missing:
        raise ConfigError(f"config file(s) not found: {', '.join(missing)}")
    return files
