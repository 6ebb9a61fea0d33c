"""What tuning did for each model of a tuned comparison (issue 22's table, docs/RESULTS.md).

Reads the studies' trial tables written by ``recbole-rlmm tune`` (``<Model>-<dataset>-trials.csv``
in a ``tuned/`` folder, e.g. ``bench/tuned-table/scientific/tuned``) and prints, per model, the
validation score of the untuned configuration (the study's first trial, ``--first-trial
config``), the selected trial's score and its gain over the untuned one, how many trials were
pruned, the hours the study took (the trials' own seconds) and the chosen values.

    python bench/tuning_summary.py bench/tuned-table/scientific/tuned [--out FILE.md]

Selection used validation only; the test columns of the csv are not read here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from recbole_rlmm.data.io import write_text_atomic
from recbole_rlmm.experiment.tune import TRIAL_COLUMNS


def _value(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def summarise(folder: Path) -> str:
    files = sorted(folder.glob("*-trials.csv"))
    if not files:
        raise SystemExit(f"bench/tuning_summary.py: no *-trials.csv in {folder}; run bench/tuned_table.sh first")
    lines = [
        "| Model | Trials (pruned) | Untuned valid (trial 0) | Selected trial | Selected valid | Gain | Study hours | Chosen values |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for path in files:
        model = path.name.split("-", 1)[0]
        table = pd.read_csv(path)
        chosen = table[table["selected"]].iloc[0]
        start = table[table["starting_config"]] if "starting_config" in table else table.iloc[0:0]
        untuned = float(start["valid_score"].iloc[0]) if len(start) else None  # None: trial 0 drawn
        gain = "–" if untuned is None else f"{100 * (chosen['valid_score'] / untuned - 1):+.1f}%"
        params = [c for c in table.columns if c not in TRIAL_COLUMNS and not c.startswith(("valid_", "test_"))]
        lines.append(
            f"| {model} | {len(table)} ({int((table['state'] == 'pruned').sum())}) | "
            + ("– (drawn)" if untuned is None else f"{untuned:.4f}")
            + f" | {int(chosen['trial'])}{' (untuned)' if chosen.get('starting_config', False) else ''}"
            f" | {chosen['valid_score']:.4f} | {gain} | {table['seconds'].sum() / 3600:.2f} | "
            + ", ".join(f"{p}={_value(chosen[p])}" for p in params)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the tuned/ folder of a tuned comparison")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    text = summarise(args.folder)
    sys.stdout.write(text)
    if args.out is not None:
        write_text_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
