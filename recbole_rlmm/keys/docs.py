"""The key tables and property files, generated from the declarations.

    python -m recbole_rlmm.keys.docs --markdown [overall|MODEL]   # print a table
    python -m recbole_rlmm.keys.docs --write                      # regenerate them all

``--write`` rewrites ``properties/overall.yaml`` and ``properties/model/<Model>.yaml`` from
:mod:`recbole_rlmm.keys.schema` and the tables between ``<!-- keys:NAME -->`` and
``<!-- /keys:NAME -->`` in docs/CONFIG.md, docs/RLMULTIMODALREC.md and docs/CHECKS.md;
``tests/test_keys.py`` fails when any of them differs from what this module writes.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from recbole_rlmm.keys.schema import (
    MODEL_KEYS,
    MODEL_OVERRIDES,
    OVERALL_KEYS,
    RECBOLE,
    Key,
    default_of,
    format_value,
)

#: The repository (or installed package) root holding ``properties/``, README.md and docs/.
ROOT = Path(__file__).resolve().parents[2]


def markdown(name: str = "overall") -> str:
    """The key table ``name`` (``overall`` or a plugin model) as Markdown."""
    if name == "overall":
        keys, model = OVERALL_KEYS, None
    elif name in MODEL_KEYS:
        keys, model = MODEL_KEYS[name], name
    else:
        raise SystemExit(f"no key table {name!r}; tables: overall, {', '.join(MODEL_KEYS)}")
    lines = ["| key | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for key in keys:
        default = key.default_text or f"`{format_value(default_of(key.name, model))}`"
        lines.append(f"| `{key.name}` | {default} | {key.type_text()} | {key.meaning} |")
    overall = {k.name: k for k in OVERALL_KEYS}
    for key_name, value in MODEL_OVERRIDES.get(model, {}).items() if model else ():
        key = overall[key_name]
        lines.append(f"| `{key_name}` | `{format_value(value)}` | {key.type_text()} | (overall key, {model}'s default) {key.meaning} |")
    return "\n".join(lines) + "\n"


#: Files holding generated tables, relative to the repository root.
GENERATED_IN: tuple[str, ...] = ("docs/CONFIG.md", "docs/RLMULTIMODALREC.md", "docs/CHECKS.md")
_BLOCK = re.compile(r"(<!-- keys:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /keys:(?P=name) -->)", re.S)


def regenerate(text: str) -> str:
    """``text`` with every ``<!-- keys:NAME -->`` block replaced by :func:`markdown` (NAME)."""
    return _BLOCK.sub(lambda m: m.group(1) + markdown(m.group("name")) + m.group(4), text)


def _yaml_value(value: object) -> str:
    """A default as a yaml scalar or flow collection (``format_value``, which writes yaml)."""
    text = format_value(value)
    return "'" + text + "'" if text in ("", "~", "null") and value is not None else text


def properties_yaml(name: str = "overall") -> str:
    """``properties/overall.yaml`` (``name`` overall) or ``properties/model/<name>.yaml``: every
    key we set, with its meaning as a comment."""
    keys: tuple[Key, ...] = OVERALL_KEYS if name == "overall" else MODEL_KEYS[name]
    what = "recbole-rlmm's defaults for every run" if name == "overall" else f"{name}'s defaults"
    lines = [
        f"# {what}, written by `python -m recbole_rlmm.keys.docs --write` from the declarations in",
        "# recbole_rlmm/keys/schema.py (edit those, not this file; tests/test_keys.py checks they agree).",
    ]
    if name == "overall":
        lines.append("# Keys not listed keep RecBole's defaults. Priority, lowest first: RecBole < this file")
        lines.append("# < properties/model/<Model>.yaml < the dataset's yaml < --config_files < config_dict < --key=value.")
    for key in keys:
        if key.default is RECBOLE:
            continue
        lines.append(f"{key.name}: {_yaml_value(key.default)}")
        lines.append("  # " + key.meaning.replace("\n", " "))
    overall = {k.name: k for k in OVERALL_KEYS}
    for key_name, value in (MODEL_OVERRIDES.get(name, {}) if name != "overall" else {}).items():
        lines.append(f"{key_name}: {_yaml_value(value)}")
        lines.append(f"  # (overall key, this model's default) {overall[key_name].meaning}")
    return "\n".join(lines) + "\n"


def property_files() -> dict[Path, str]:
    """Every generated property file and its content."""
    files = {ROOT / "properties" / "overall.yaml": properties_yaml("overall")}
    for name in MODEL_KEYS:
        files[ROOT / "properties" / "model" / f"{name}.yaml"] = properties_yaml(name)
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recbole_rlmm.keys.docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", nargs="?", const="overall", metavar="TABLE", help="print a table: overall or a model")
    parser.add_argument(
        "--write", action="store_true", help=f"regenerate properties/*.yaml and the tables in {', '.join(GENERATED_IN)}"
    )
    args = parser.parse_args(argv)
    if args.write:
        for path, text in property_files().items():
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
        for rel in GENERATED_IN:
            path = ROOT / rel
            path.write_text(regenerate(path.read_text(encoding="utf-8")), encoding="utf-8")
            print(f"regenerated the key tables in {path}")
    if args.markdown or not args.write:
        sys.stdout.write(markdown(args.markdown or "overall"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
