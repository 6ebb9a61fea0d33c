"""Writing a prepared dataset: RecBole atomic files, item index, feature files and YAML.

Everything that the three ``prepare`` paths share lives here: the error type whose
message is shown to the user, the human-readable :class:`Report`, k-core filtering, the
per-user random ratio split and the mapping of a split column, and
:func:`write_dataset`, which writes the dataset folder defined in :mod:`recbole_rlmm.data.format` (atomic files,
item index, one ``.npy`` per modality, the dataset yaml) plus ``NAME.report.txt``.

Interactions are passed around as a :class:`pandas.DataFrame` with the canonical columns
``user_id``, ``item_id`` (strings), optional ``rating`` and ``timestamp`` (floats) and
``split`` (one of :data:`SPLITS`).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from recbole_rlmm.data.format import (
    MODALITIES_KEY,
    SPLITS,
    config_file,
    feature_file,
    inter_file,
    item_index_file,
    present_rows,
    report_file,
)
from recbole_rlmm.data.io import save_npy_atomic, write_text_atomic
from recbole_rlmm.errors import UserError

USER: str = "user_id"
ITEM: str = "item_id"
RATING: str = "rating"
TIME: str = "timestamp"
SPLIT: str = "split"



class PrepareError(UserError):
    """Bad input or a refused operation; the message names the file, the value and the fix."""


class Report:
    """Collects the human-readable report of one ``prepare`` run.

    Lines are printed as they are added when ``echo`` is true, and the whole text is
    written next to the dataset as ``NAME.report.txt``.
    """

    def __init__(self, echo: bool = True) -> None:
        self.lines: list[str] = []
        self.echo = echo

    def add(self, line: str = "") -> None:
        """Append one line (and print it when echoing)."""
        self.lines.append(line)
        if self.echo:
            print(line, flush=True)

    def listing(
        self, title: str, entries: Mapping[str, str] | Sequence[str], limit: int = 10
    ) -> None:
        """Add ``title (N): first few entries ...`` for a list of ids or id -> reason."""
        if not entries:
            return
        if isinstance(entries, Mapping):
            shown = [f"{key} ({value})" for key, value in list(entries.items())[:limit]]
        else:
            shown = [str(key) for key in list(entries)[:limit]]
        more = f", ... ({len(entries) - limit} more)" if len(entries) > limit else ""
        self.add(f"  {title} ({len(entries)}): {', '.join(shown)}{more}")

    def text(self) -> str:
        """The whole report."""
        return "\n".join(self.lines) + "\n"


def command_line() -> str:
    """The command that is running, for the provenance header of the written files."""
    if not sys.argv or sys.argv[0] in ("", "-c", "-m"):
        return "recbole_rlmm.prepare Python API"
    program = Path(sys.argv[0]).name
    if program == "__main__.py":
        program = "python -m recbole_rlmm.cli"
    return " ".join([program, shlex.join(sys.argv[1:])]).strip()


def natural_sorted(tokens: Iterable[str]) -> list[str]:
    """Sort ids numerically when all of them are integers, else as strings."""
    tokens = list(tokens)
    if tokens and all(t.isdigit() for t in tokens):
        return sorted(tokens, key=lambda t: (int(t), t))
    return sorted(tokens)


def check_tokens(values: Iterable[str], what: str, source: str) -> None:
    """Refuse ids that cannot be written to a tab-separated atomic file."""
    for value in values:
        if value == "" or any(c in value for c in "\t\n\r"):
            raise PrepareError(
                f"{source}: {what} {value!r} is empty or contains a tab or line break, which "
                "RecBole's tab-separated atomic files cannot hold; clean the id column first."
            )


def kcore_filter(inter: pd.DataFrame, k: int) -> pd.DataFrame:
    """Keep the largest subset where every user and every item has at least ``k`` interactions.

    Users and items below ``k`` are removed repeatedly until nothing changes (the usual
    "k-core" of recommendation data sets, e.g. Amazon 5-core). ``k <= 1`` returns the input.
    """
    if k <= 1:
        return inter
    current = inter
    while True:
        user_deg = current[USER].map(current[USER].value_counts())
        item_deg = current[ITEM].map(current[ITEM].value_counts())
        keep = (user_deg >= k) & (item_deg >= k)
        if keep.all():
            return current
        current = current[keep]


def split_counts(n: int, ratios: Sequence[float]) -> tuple[int, int, int]:
    """Numbers of train/valid/test interactions of a user with ``n`` interactions.

    MMRec's rule: valid and test get ``max(1, floor(n * ratio))`` each (when their ratio is
    positive), train the rest; a user with too few interactions keeps at least one in
    train, giving up valid first, then test.
    """
    total = float(sum(ratios))
    r_valid, r_test = ratios[1] / total, ratios[2] / total
    n_valid = max(1, math.floor(n * r_valid + 1e-9)) if r_valid > 0 else 0
    n_test = max(1, math.floor(n * r_test + 1e-9)) if r_test > 0 else 0
    while n - n_valid - n_test < 1 and (n_valid or n_test):
        if n_valid:
            n_valid -= 1
        else:
            n_test -= 1
    return n - n_valid - n_test, n_valid, n_test


def ratio_split(inter: pd.DataFrame, ratios: Sequence[float], seed: int) -> pd.Series:
    """Seeded per-user random split; returns a ``split`` label for every row of ``inter``.

    Each user's interactions are shuffled with ``numpy.random.default_rng(seed)`` (rows are
    first ordered by user, item so the result does not depend on the input row order) and
    cut by :func:`split_counts`.
    """
    if len(ratios) != 3 or any(r < 0 for r in ratios) or ratios[0] <= 0:
        raise PrepareError(
            f"--split-ratio {' '.join(map(str, ratios))}: give three non-negative numbers for "
            "train, valid and test with a positive train share, e.g. --split-ratio 0.8 0.1 0.1."
        )
    order = inter[[USER, ITEM]].sort_values([USER, ITEM], kind="stable").index
    frame = pd.DataFrame({USER: inter.loc[order, USER].to_numpy()}, index=order)
    rng = np.random.default_rng(seed)
    frame["_key"] = rng.random(len(frame))
    frame = frame.sort_values([USER, "_key"], kind="stable")
    rank = frame.groupby(USER, sort=False).cumcount().to_numpy()
    size = frame.groupby(USER, sort=False)[USER].transform("size").to_numpy()
    cuts = {n: split_counts(n, ratios) for n in np.unique(size)}
    n_train = np.array([cuts[n][0] for n in size])
    n_valid = np.array([cuts[n][1] for n in size])
    labels = np.where(rank < n_train, "train", np.where(rank < n_train + n_valid, "valid", "test"))
    return pd.Series(labels, index=frame.index).reindex(inter.index)


def map_split_column(
    values: pd.Series, names: Sequence[str], source: str, column: str
) -> pd.Series:
    """Translate a split column whose values are ``names`` (train, valid, test) to SPLITS."""
    lookup = {str(name): split for name, split in zip(names, SPLITS, strict=True)}
    text = values.astype(str).str.strip()
    unknown = sorted(set(text.unique()) - set(lookup))
    if unknown:
        first = int(np.flatnonzero(~text.isin(list(lookup)))[0])
        raise PrepareError(
            f"{source}: column {column!r} has values {unknown[:10]} (first on data row "
            f"{first + 1}); expected only {list(lookup)} for train/valid/test. Fix the values "
            "or map yours with --split-values TRAIN VALID TEST."
        )
    return text.map(lookup)


def ensure_writable(out_dir: Path, name: str, overwrite: bool) -> None:
    """Refuse to overwrite an existing prepared dataset unless ``overwrite`` is set."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise PrepareError(
            f"--name {name!r}: use letters, digits, '.', '_' or '-' (it becomes file names and "
            "RecBole's dataset name)."
        )
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise PrepareError(f"{out_dir} exists and is not a folder; choose another --out or --name.")
    existing = sorted(
        p.name for p in out_dir.iterdir() if p.is_file() and p.name.startswith(f"{name}.")
    )
    if existing and not overwrite:
        shown = ", ".join(existing[:5]) + (", ..." if len(existing) > 5 else "")
        raise PrepareError(
            f"{out_dir} already holds a prepared dataset ({shown}); pass --overwrite to "
            "replace its files, or choose another --name/--out."
        )


def _format_float(values: pd.Series) -> pd.Series:
    """Write integral floats (timestamps, star ratings) without a trailing ``.0``."""
    arr = values.to_numpy(dtype=np.float64)
    if (
        np.all(np.isfinite(arr))
        and np.all(arr == np.round(arr))
        and np.abs(arr).max(initial=0) < 2**53
    ):
        return pd.Series(arr.astype(np.int64).astype(str), index=values.index)
    return pd.Series([repr(float(v)) for v in arr], index=values.index)


def write_inter(path: Path, inter: pd.DataFrame) -> None:
    """Write one atomic ``.inter`` file: ``user_id:token item_id:token [rating:float] [timestamp:float]``."""
    columns = [USER, ITEM] + [c for c in (RATING, TIME) if c in inter.columns]
    header = [f"{USER}:token", f"{ITEM}:token"] + [f"{c}:float" for c in columns[2:]]
    frame = inter[columns].copy()
    for col in columns[2:]:
        frame[col] = _format_float(frame[col])
    lines = ["\t".join(header)]
    lines.extend("\t".join(row) for row in frame.astype(str).itertuples(index=False, name=None))
    write_text_atomic(path, "\n".join(lines) + "\n")


def split_table(inter: pd.DataFrame, items: Sequence[str]) -> list[tuple[str, int, int, int]]:
    """(split, users, items, interactions) rows for the report, plus an ``all`` row."""
    rows = []
    for split in SPLITS:
        part = inter[inter[SPLIT] == split]
        rows.append((split, part[USER].nunique(), part[ITEM].nunique(), len(part)))
    rows.append(("all", inter[USER].nunique(), len(items), len(inter)))
    return rows


def report_splits(report: Report, inter: pd.DataFrame, items: Sequence[str]) -> None:
    """Add the users/items/interactions table per split."""
    report.add(f"  {'split':<6} {'users':>9} {'items':>9} {'interactions':>13}")
    for split, n_users, n_items, n_inter in split_table(inter, items):
        report.add(f"  {split:<6} {n_users:>9,} {n_items:>9,} {n_inter:>13,}")
    no_train = sorted(set(inter[USER]) - set(inter.loc[inter[SPLIT] == "train", USER]))
    if no_train:
        report.listing("users without a train interaction", no_train)
    empty = [s for s in SPLITS if not (inter[SPLIT] == s).any()]
    if empty:
        report.add(f"  warning: split(s) {', '.join(empty)} are empty")


def report_coverage(
    report: Report, features: Mapping[str, np.ndarray], sources: Mapping[str, str]
) -> None:
    """Add ``modality: covered/total items (pct), dim, encoder`` lines."""
    for modality, matrix in features.items():
        present = int(present_rows(matrix).sum()) if matrix.size else 0
        total = matrix.shape[0]
        pct = 100.0 * present / total if total else 0.0
        source = f", {sources[modality]}" if modality in sources else ""
        report.add(
            f"  {modality:<6} {present:,}/{total:,} items ({pct:.1f}%), dim {matrix.shape[1]}{source}"
        )


def yaml_text(
    name: str,
    modalities: Sequence[str],
    command: str,
    kind: str,
    data_path: str | None = None,
) -> str:
    """The ``NAME.yaml`` RecBole config of a prepared dataset."""
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")

    def scalar(value: str) -> str:
        return yaml.safe_dump(value, default_style=None).removesuffix("\n...\n").strip()

    lines = [
        f"# written by recbole-rlmm prepare {kind} ({stamp}, {command})",
        f"USER_ID_FIELD: {USER}",
        f"ITEM_ID_FIELD: {ITEM}",
        f"load_col: {{inter: [{USER}, {ITEM}]}}",
        f"benchmark_filename: [{', '.join(SPLITS)}]",
    ]
    if data_path is not None:
        lines.append(f"data_path: {scalar(data_path)}")
    if modalities:
        lines.append(f"{MODALITIES_KEY}:")
        lines.extend(f"  {m}: {scalar(feature_file(name, m))}" for m in sorted(modalities))
    else:
        lines.append(f"{MODALITIES_KEY}: {{}}")
    return "\n".join(lines) + "\n"


def write_dataset(
    out_dir: Path,
    name: str,
    inter: pd.DataFrame,
    items: Sequence[str],
    features: Mapping[str, np.ndarray],
    *,
    float16: bool,
    kind: str,
    report: Report,
    overwrite: bool = False,
    data_path: str | None = None,
    command: str | None = None,
) -> list[Path]:
    """Write every output file of a prepared dataset; returns the written paths.

    ``inter`` must hold the canonical columns with a ``split`` label on every row, ``items``
    the item tokens in feature-row order (it must contain every item of ``inter``) and
    ``features`` one ``(len(items), dim)`` matrix per modality (all-zero row = missing).
    Files are written to a temporary file first and renamed (:mod:`recbole_rlmm.data.io`),
    so an interrupted run never leaves half a file under its final name. With ``overwrite`` the feature files of
    modalities that this run does not write (``NAME.<m>.npy``) are removed.
    """
    ensure_writable(out_dir, name, overwrite)
    items = list(items)
    if len(set(items)) != len(items):
        raise PrepareError(f"internal error: duplicated item tokens in the item index of {name}")
    unknown = set(inter[ITEM]) - set(items)
    if unknown:
        raise PrepareError(
            f"internal error: {len(unknown)} interaction items are not in the item index"
        )
    bad = set(inter[SPLIT].unique()) - set(SPLITS)
    if bad:
        raise PrepareError(f"internal error: unknown split labels {sorted(bad)}")
    dtype = np.float16 if float16 else np.float32
    matrices: dict[str, np.ndarray] = {}
    for modality, matrix in features.items():
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != len(items):
            raise PrepareError(
                f"internal error: {modality} features have shape {matrix.shape}, "
                f"expected ({len(items)}, dim)"
            )
        with np.errstate(over="ignore", under="ignore"):
            cast = matrix.astype(dtype)
        if not np.all(np.isfinite(cast)):
            raise PrepareError(
                f"{modality} features are not finite after conversion to {np.dtype(dtype).name}"
                + (" (values beyond float16's range); drop --float16." if float16 else ".")
            )
        # a non-zero vector must not become all-zero (= "missing") by rounding to float16
        lost = present_rows(matrix) & ~present_rows(cast)
        if lost.any():
            raise PrepareError(
                f"{modality} features of {int(lost.sum())} items underflow to all-zero rows in "
                f"{np.dtype(dtype).name}; drop --float16."
            )
        matrices[modality] = cast

    out_dir.mkdir(parents=True, exist_ok=True)
    command = command or command_line()
    written: list[Path] = []
    order = inter.sort_values([SPLIT, USER], kind="stable")
    for split in SPLITS:
        path = out_dir / inter_file(name, split)
        write_inter(path, order[order[SPLIT] == split])
        written.append(path)
    index_path = out_dir / item_index_file(name)
    write_text_atomic(index_path, "\n".join(items) + "\n")
    written.append(index_path)
    for modality, matrix in matrices.items():
        path = save_npy_atomic(out_dir / feature_file(name, modality), matrix)
        written.append(path)
    yaml_path = out_dir / config_file(name)
    write_text_atomic(yaml_path, yaml_text(name, list(matrices), command, kind, data_path))
    written.append(yaml_path)
    report_path = out_dir / report_file(name)
    written.append(report_path)
    for stale in out_dir.glob(feature_file(name, "*")):  # a modality of an earlier run
        if stale.is_file() and stale not in written:
            stale.unlink()
    report.add(f"  files: {', '.join(p.name for p in written)} in {out_dir}")
    write_text_atomic(report_path, report.text())
    return written


def data_path_for(out: Path) -> str | None:
    """The ``data_path`` to write into NAME.yaml: none for the default ``dataset/`` folder."""
    if out.resolve() == Path("dataset").resolve():
        return None
    return str(out) if out.is_absolute() else str(out) + "/"
