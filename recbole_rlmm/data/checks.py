"""The dataset folder and its atomic files, read before RecBole parses them.

RecBole's atomic files are tab-separated (``field_separator``) with a header of
``name:type`` columns, ``type`` one of ``token``, ``token_seq``, ``float``, ``float_seq``.
RecBole reads them with pandas and fails late and vaguely on a malformed file (a
``KeyError`` on a missing column, ``num_samples=0`` on an empty split), so
:func:`check_dataset_files` reads every file RecBole will read first and stops with a
:class:`DataFileError` naming the file, the line, the column and the fix.

What RecBole reads, we read: a file is refused only where RecBole would crash on it or misread
it. Where RecBole's reading is still correct but the file is not what its header says (a line
with fields beyond the header, which pandas drops; a line that lacks a field other than an id,
which RecBole fills as it fills any missing value), the check returns a warning naming the
file and the lines, and the run goes on. RecBole's own test data has such a line
(``tests/test_data/test/test.inter`` line 6018).

Each file is read once per process (results are cached by path, size and modification time),
so ``compare`` checks a dataset once however many runs it plans.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recbole_rlmm.errors import UserError

#: RecBole's field types (``recbole.utils.FeatureType`` values).
ATOMIC_TYPES: tuple[str, ...] = ("token", "token_seq", "float", "float_seq")
#: Separators a header written for another tool might use, and their names.
_OTHER_SEPARATORS: tuple[tuple[str, str], ...] = ((",", "comma"), (";", "semicolon"), ("|", "pipe"), (" ", "space"))
#: The roles of the ``benchmark_filename`` files, by position (RecBole's order).
SPLIT_ROLES: tuple[str, ...] = ("training", "validation", "test")

#: Files checked so far (cache key -> the warnings the check gave).
_CHECKED: dict[tuple[Any, ...], list[str]] = {}


class DataFileError(UserError):
    """A dataset file cannot be read as RecBole's atomic format; the message names the file,
    the line or column, and the fix."""


def _listing(folder: Path, limit: int = 12) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir()) if folder.is_dir() else []
    if not names:
        return f"{folder} is empty"
    shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    return f"{folder} holds {shown}"


def _get(config: Any, key: str, default: Any = None) -> Any:
    value = config[key] if key in config else None  # noqa: SIM401 (Config has no .get)
    return default if value is None else value


def inter_files(config: Any) -> list[tuple[Path, str]]:
    """The interaction files RecBole will read, with their role (``training``, ...), after
    checking they exist (a :class:`DataFileError` names the expected and the present files)."""
    folder = Path(config["data_path"])
    name = str(config["dataset"])
    benchmark = _get(config, "benchmark_filename")
    if benchmark:
        paths = [folder / f"{name}.{split}.inter" for split in benchmark]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            expected = ", ".join(p.name for p in paths)
            raise DataFileError(
                f"dataset '{name}': benchmark_filename {list(benchmark)} needs {expected} in {folder}, but "
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing ({_listing(folder)}). "
                f"Add the file(s), fix benchmark_filename, or set benchmark_filename: ~ to split "
                f"{name}.inter by eval_args.split."
            )
        roles = [SPLIT_ROLES[i] if i < len(SPLIT_ROLES) else f"split {split!r}" for i, split in enumerate(benchmark)]
        return list(zip(paths, roles))
    path = folder / f"{name}.inter"
    if not path.is_file():
        order = {"train": 0, "valid": 1, "test": 2}
        parts = sorted(
            (p.name[len(name) + 1 : -len(".inter")] for p in folder.glob(f"{name}.*.inter")),
            key=lambda part: (order.get(part, 3), part),
        )
        splits = [f"{name}.{part}.inter" for part in parts]
        hint = (
            f" The folder has split files ({', '.join(splits)}): set benchmark_filename: "
            f"[{', '.join(parts)}] to use them."
            if splits
            else " Write the interactions there (`recbole-rlmm prepare` makes the files, docs/DATA.md)."
        )
        raise DataFileError(
            f"dataset '{name}': RecBole reads the interactions from {path}, which does not exist "
            f"({_listing(folder)}).{hint}"
        )
    return [(path, "training")]


def loaded_columns(config: Any, source: str, columns: Sequence[str]) -> list[str] | None:
    """The columns RecBole loads from a ``source`` file (``inter``, ``item``...) with these
    header columns, by ``load_col``/``unload_col`` (RecBole's rules); None when it skips the
    file."""
    load_col = _get(config, "load_col")
    unload_col = _get(config, "unload_col")
    if load_col is None:
        wanted = None
    elif source not in load_col:
        return None
    elif load_col[source] == "*":
        wanted = None
    else:
        wanted = set(load_col[source])
    dropped = set(unload_col[source]) if unload_col and source in unload_col else set()
    return [c for c in columns if (wanted is None or c in wanted) and c not in dropped]


def check_dataset_files(config: Any) -> list[str]:
    """Check every atomic file RecBole will read for ``config``'s dataset (see module doc);
    returns the warnings.

    Nothing is checked when the dataset folder does not exist (RecBole downloads it).
    """
    folder = Path(config["data_path"])
    if not folder.is_dir():
        return []
    name = str(config["dataset"])
    warnings: list[str] = []
    for path, role in inter_files(config):
        warnings += check_atomic_file(path, "inter", config, role)
    for source in ("user", "item"):
        path = folder / f"{name}.{source}"
        if path.is_file():
            warnings += check_atomic_file(path, source, config)
    for suffix in _get(config, "additional_feat_suffix", []) or []:
        path = folder / f"{name}.{suffix}"
        if not path.is_file():
            raise DataFileError(
                f"dataset '{name}': additional_feat_suffix lists {suffix!r}, but {path} does not exist "
                f"({_listing(folder)}). Add the file or remove {suffix!r} from additional_feat_suffix."
            )
    return warnings


def _header_columns(path: Path, header: str, sep: str) -> list[tuple[str, str]]:
    shown_sep = "tab" if sep == "\t" else repr(sep)
    if header.startswith("\ufeff"):
        raise DataFileError(
            f"{path}: the file starts with a byte-order mark (saved as 'UTF-8 with BOM'), which RecBole "
            "reads as part of the first column's name; save it as plain UTF-8."
        )
    if not header.strip():
        raise DataFileError(
            f"{path}: line 1 is empty; an atomic file starts with a header such as "
            "user_id:token<TAB>item_id:token."
        )
    fields = header.split(sep)
    if len(fields) == 1:
        for other, label in _OTHER_SEPARATORS:
            if other in header and header.count(":") > 1:
                raise DataFileError(
                    f"{path}: the header {header!r} is one column for the {shown_sep} separator but looks "
                    f"{label}-separated; RecBole's atomic files are {shown_sep}-separated (field_separator). "
                    f"Convert the file (e.g. `recbole-rlmm prepare table`) or set field_separator: {other!r}."
                )
    columns: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, field in enumerate(fields, start=1):
        name, colon, ftype = field.partition(":")
        if not colon:
            raise DataFileError(
                f"{path}: header column {number} {field!r} has no type; write it as {field or 'name'}:token "
                f"(RecBole's types: {', '.join(ATOMIC_TYPES)}; ids are token, numbers float)."
            )
        if not name.strip():
            raise DataFileError(f"{path}: header column {number} {field!r} has no name; write name:{ftype}.")
        if ftype not in ATOMIC_TYPES:
            raise DataFileError(
                f"{path}: header column {name!r} has type {ftype!r}, which RecBole does not know; use one of "
                f"{', '.join(ATOMIC_TYPES)} (ids: token, numbers: float)."
            )
        if name in seen:
            raise DataFileError(f"{path}: the header names column {name!r} twice; rename or drop one of them.")
        seen.add(name)
        columns.append((name, ftype))
    return columns


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFileError(
            f"{path}: byte {exc.start} (line {line}) is not valid {encoding}; save the file as "
            f"{encoding}, or set encoding to the file's encoding."
        ) from None
    except LookupError:
        raise DataFileError(f"config key encoding={encoding!r} is not an encoding Python knows (e.g. utf-8).") from None


def check_atomic_file(path: Path, source: str, config: Any, role: str | None = None) -> list[str]:
    """Check one atomic file: header, required and ``load_col`` columns, rows with more or
    fewer fields than the header, empty ids, unparsable numbers, empty splits. Returns the
    warnings (module docstring)."""
    sep = _get(config, "field_separator", "\t")
    seq_sep = _get(config, "seq_separator", " ")
    encoding = _get(config, "encoding", "utf-8")
    uid, iid = _get(config, "USER_ID_FIELD"), _get(config, "ITEM_ID_FIELD")
    stat = path.stat()
    cache_key = (
        str(path.resolve()), stat.st_size, stat.st_mtime_ns, sep, seq_sep, encoding, uid, iid, role,
        repr(_get(config, "load_col")), repr(_get(config, "unload_col")),
    )
    if cache_key in _CHECKED:
        return list(_CHECKED[cache_key])
    data = path.read_bytes()
    if not data.strip():
        raise DataFileError(
            f"{path} is empty ({stat.st_size} bytes); an atomic file holds a header line such as "
            "user_id:token<TAB>item_id:token and one line per row."
        )
    lines = _decode(path, data, encoding).split("\n")
    header = lines[0].rstrip("\r")
    columns = _header_columns(path, header, sep)
    names = [c for c, _ in columns]
    types = dict(columns)
    loaded = loaded_columns(config, source, names)
    if loaded is None:
        _CHECKED[cache_key] = []
        return []  # load_col leaves this file out: RecBole does not read it
    _check_columns(path, source, config, names, types, loaded, uid, iid)

    rows = [(number, line.rstrip("\r")) for number, line in enumerate(lines[1:], start=2) if line.rstrip("\r")]
    if not rows and source == "inter":
        _empty_split(path, config, role)
    ids = [c for c in (uid, iid) if c in loaded]
    warnings = _field_counts(path, rows, sep, names, loaded, ids)
    if not rows:
        _CHECKED[cache_key] = warnings
        return warnings
    # a missing trailing field reads as empty, as pandas reads it (NaN)
    split_rows = [(line.split(sep) + [""] * len(names))[: len(names)] for _, line in rows]
    for column in loaded:
        j = names.index(column)
        ftype = types[column]
        if column in ids:
            for (number, _), parts in zip(rows, split_rows):
                if not parts[j].strip():
                    raise DataFileError(
                        f"{path}: line {number} has an empty {column} (column {j + 1}); every row needs an id."
                    )
        if ftype == "float":
            _check_floats(path, column, j, rows, split_rows)
        elif ftype == "float_seq":
            for (number, _), parts in zip(rows, split_rows):
                for value in filter(None, parts[j].split(seq_sep)):
                    if not _is_float(value):
                        raise DataFileError(
                            f"{path}: line {number}, column {column} (float_seq): {value!r} is not a number; "
                            f"write numbers separated by {seq_sep!r}, or declare the column {column}:token_seq."
                        )
    _CHECKED[cache_key] = warnings
    return list(warnings)


def _lines_text(numbers: list[int], limit: int = 5) -> str:
    shown = ", ".join(map(str, numbers[:limit]))
    more = f" and {len(numbers) - limit} more" if len(numbers) > limit else ""
    return f"line{'s' if len(numbers) > 1 else ''} {shown}{more}"


def _field_counts(
    path: Path, rows: list[tuple[int, str]], sep: str, names: list[str], loaded: list[str], ids: list[str]
) -> list[str]:
    """Rows with more or fewer fields than the header: refused where RecBole would misread them,
    a warning where its reading is still correct (module docstring)."""
    width = len(names)
    shown_sep = "tabs" if sep == "\t" else repr(sep)
    header = ", ".join(names)
    longer = [(number, line.count(sep) + 1) for number, line in rows if line.count(sep) + 1 > width]
    shorter = [(number, line.count(sep) + 1) for number, line in rows if line.count(sep) + 1 < width]
    warnings: list[str] = []
    if longer:
        number, found = longer[0]
        if number == rows[0][0]:
            raise DataFileError(
                f"{path}: line {number}, the first row, has {found} fields but the header has {width} "
                f"({header}); pandas, which RecBole reads with, would then take the first column for "
                f"an index and shift every column of every row. Fix that line (fields are separated "
                f"by {shown_sep})."
            )
        warnings.append(
            f"{path}: {_lines_text([n for n, _ in longer])} {'have' if len(longer) > 1 else 'has'} more "
            f"fields than the header's {width} ({header}); RecBole reads the first {width} and drops "
            "the rest. Check those lines if the extra fields were meant to be read."
        )
    if shorter:
        lacking_ids = [
            (number, found) for number, found in shorter if any(names.index(c) >= found for c in ids)
        ]
        if lacking_ids:
            number, found = lacking_ids[0]
            missing = [c for c in ids if names.index(c) >= found]
            raise DataFileError(
                f"{path}: line {number} has {found} fields but the header has {width} ({header}): "
                f"{', '.join(missing)} {'are' if len(missing) > 1 else 'is'} missing, and every row needs "
                f"its ids. Fix that line (fields are separated by {shown_sep})."
            )
        absent = sorted({c for _, found in shorter for c in names[found:] if c in loaded}, key=names.index)
        what = f" ({', '.join(absent)})" if absent else ""
        warnings.append(
            f"{path}: {_lines_text([n for n, _ in shorter])} {'have' if len(shorter) > 1 else 'has'} "
            f"fewer fields than the header's {width}; RecBole reads the missing trailing field(s)"
            f"{what} as missing values and fills them as it fills any (a token: [PAD], a float: "
            "the column's mean, a sequence: empty). Complete those lines if that is not meant."
        )
    return warnings


def _check_columns(
    path: Path, source: str, config: Any, names: list[str], types: dict[str, str], loaded: list[str],
    uid: str | None, iid: str | None,
) -> None:
    header = ", ".join(f"{n}:{types[n]}" for n in names)
    required = {"inter": [("USER_ID_FIELD", uid), ("ITEM_ID_FIELD", iid)], "user": [("USER_ID_FIELD", uid)],
                "item": [("ITEM_ID_FIELD", iid)]}.get(source, [])
    for key, column in required:
        if column is None:
            continue
        if column not in names:
            others = [n for n in names if types[n] == "token" and n not in (uid, iid)]
            guess = f" set {key}: {others[0]}" if others else f" set {key} to the right column"
            raise DataFileError(
                f"{path}: no column {column!r} ({key}); the header has {header}. Rename the column to "
                f"{column} or{guess} (and list it in load_col)."
            )
        if column not in loaded:
            raise DataFileError(
                f"{path}: column {column!r} ({key}) is not loaded: load_col/unload_col leave it out for "
                f"'{source}'. Add {column} to load_col.{source}."
            )
        if types[column] != "token":
            raise DataFileError(
                f"{path}: column {column!r} ({key}) has type {types[column]}; ids must be token "
                f"(write {column}:token in the header)."
            )
    load_col = _get(config, "load_col")
    if load_col and source in load_col and load_col[source] != "*":
        absent = [c for c in load_col[source] if c not in names]
        if absent:
            raise DataFileError(
                f"{path}: load_col.{source} lists {', '.join(map(repr, absent))}, which the header lacks "
                f"(it has {header}). Fix load_col.{source} or the header."
            )


def _empty_split(path: Path, config: Any, role: str | None) -> None:
    if role in (None, "training"):
        raise DataFileError(
            f"{path} has a header but no interactions; training needs at least one line "
            "user<TAB>item under the header."
        )
    name = config["dataset"]
    raise DataFileError(
        f"{path} (the {role} split) has a header but no interactions, so {role} metrics would be "
        f"undefined. Put interactions in it, or set benchmark_filename: ~ to let RecBole split "
        f"{name}.inter by eval_args.split."
    )


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _check_floats(path: Path, column: str, j: int, rows: list[tuple[int, str]], split_rows: list[list[str]]) -> None:
    values = [parts[j] for parts in split_rows]
    try:
        np.asarray([v for v in values if v.strip()], dtype=np.float64)
        return
    except ValueError:
        pass
    for (number, _), value in zip(rows, values):
        if value.strip() and not _is_float(value):
            raise DataFileError(
                f"{path}: line {number}, column {column} (float): {value!r} is not a number. Fix the "
                f"value (a Unix time for a timestamp), or declare the column {column}:token, or leave it "
                f"out of load_col."
            )


def clear_cache() -> None:
    """Forget which files were checked (tests; files edited in place within a second)."""
    _CHECKED.clear()
