"""The ``recommend``, ``export``, ``gates`` and ``serve`` command lines (light: torch and
RecBole are imported when a command runs, after the cheap checks of its arguments)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from recbole_rlmm.data.io import write_text_atomic
from recbole_rlmm.errors import UserError
from recbole_rlmm.inference.outputs import check_out_dir, check_out_file

RECOMMEND_EXAMPLES = """examples:
  recbole-rlmm recommend --checkpoint saved/RLMultimodalRec-....pth --users u1 u2 --topk 10
  recbole-rlmm recommend --checkpoint CKPT --users-file users.txt --topk 20 --format json --out recs.json
"""


def _checkpoint_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("checkpoint")
    group.add_argument(
        "--checkpoint", required=True, metavar="PATH", help="a best-model .pth of `run`/`compare`"
    )
    group.add_argument(
        "--trust-checkpoint",
        dest="trust_checkpoint",
        action="store_true",
        help="allow RecBole's own pickled checkpoints (runs code stored in the file)",
    )
    group.add_argument(
        "--changed-data",
        dest="changed_data",
        choices=("error", "recompute"),
        default="error",
        help="when the data files changed since training: stop, or score today's files with the weights",
    )
    group.add_argument(
        "--device",
        default=None,
        help="cpu, cuda, cuda:1, ... (default: as trained if available, else cpu)",
    )


def register_recommend(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    """Add the ``recommend`` subcommand."""
    p = subparsers.add_parser(
        "recommend",
        help="top-K items for raw user tokens from a checkpoint (training items excluded)",
        description="Top-K items per user, scored by the model's own full-ranking scores; items "
        "the user interacted with in training (with --exclude-valid, validation too) are left "
        "out. Equal scores are ranked by the dataset's item order. Output: CSV columns user, "
        "rank, item, score (or JSON), to stdout unless --out.",
        formatter_class=formatter,
        epilog=RECOMMEND_EXAMPLES,
    )
    _checkpoint_args(p)
    users = p.add_mutually_exclusive_group(required=True)
    users.add_argument("--users", nargs="+", metavar="TOKEN", help="raw user tokens")
    users.add_argument(
        "--users-file",
        dest="users_file",
        metavar="FILE",
        help="user tokens, one per line ('-': stdin)",
    )
    p.add_argument("--topk", type=int, default=20, metavar="K", help="items per user")
    p.add_argument(
        "--exclude-valid",
        dest="exclude_valid",
        action="store_true",
        help="also leave out validation items",
    )
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="output format")
    p.add_argument("--out", default=None, metavar="FILE", help="write here instead of stdout")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument(
        "--batch-size",
        dest="batch_size",
        type=int,
        default=None,
        metavar="N",
        help="users scored at once (default: about 4M scores per batch)",
    )
    p.set_defaults(func=_recommend)


def _output_folder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (new or empty)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty --out, replacing files of the same names",
    )


def register_export(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="write the final user/item vectors (.npy) for an ANN index (dot-product models)",
        description="Write users.npy and items.npy (float32, row j = line j of users.txt / "
        "items.txt), the token lists and scoring.json (score = dot product) into --out; "
        "--index adds a faiss IndexFlatIP (items.faiss). Only for models whose scores are dot "
        "products (ours, LightGCN, BPR, NGCF, SGL, ...).",
        formatter_class=formatter,
        epilog="example:\n  recbole-rlmm export --checkpoint saved/RLMultimodalRec-....pth --out vectors/ --index",
    )
    _checkpoint_args(p)
    _output_folder_args(p)
    p.add_argument(
        "--index",
        action="store_true",
        help='also write a faiss index (pip install "recbole-rlmm[faiss]")',
    )
    p.set_defaults(func=_export)


def register_gates(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    """Add the ``gates`` subcommand."""
    p = subparsers.add_parser(
        "gates",
        help="RLMultimodalRec's per-item modality shares: CSV, histogram, by popularity",
        description="Write gates.csv (each item's share per modality and training degree), "
        "gates_by_popularity.csv (mean shares by item-degree bucket, also printed) and gates.png "
        "(histogram; needs the plot extra) into --out.",
        formatter_class=formatter,
        epilog="example:\n  recbole-rlmm gates --checkpoint saved/RLMultimodalRec-....pth --out gates/",
    )
    _checkpoint_args(p)
    _output_folder_args(p)
    p.set_defaults(func=_gates)


def register_serve(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    """Add the ``serve`` subcommand (recbole_rlmm/inference/serve.py)."""
    p = subparsers.add_parser(
        "serve",
        help="serve a checkpoint over HTTP: recommendations, new users, similar items, a page",
        description="Load a checkpoint once and answer JSON requests (FastAPI + uvicorn): "
        "GET /users/{user}/recommendations, POST /recommendations (a new user's items), GET "
        "/items/{item}/similar, GET /health, GET /model; a page at / and the API schema at "
        '/openapi.json. Needs the serve extra (pip install "recbole-rlmm[serve]"); '
        "docs/SERVE.md has the details.",
        formatter_class=formatter,
        epilog="example:\n  recbole-rlmm serve --checkpoint saved/RLMultimodalRec-....pth --port 8000",
    )
    _checkpoint_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    p.add_argument(
        "--images",
        default=None,
        metavar="DIR",
        help="folder of <item token>.jpg pictures for the page (default: item_images of the "
        "dataset's yaml, else none)",
    )
    p.add_argument("--max-k", dest="max_k", type=int, default=1000, help="longest list served")
    p.add_argument(
        "--max-history",
        dest="max_history",
        type=int,
        default=1000,
        help="most items accepted in a new user's history",
    )
    p.set_defaults(func=_serve)


# ---------------------------------------------------------------------------- running
def _load(args: argparse.Namespace) -> Any:
    from recbole_rlmm.inference.recommender import (
        Recommender,  # lazy: torch and RecBole load when the command runs
    )

    return Recommender.from_checkpoint(
        args.checkpoint,
        trust_checkpoint=args.trust_checkpoint,
        changed_data=args.changed_data,
        device=args.device,
    )


def read_users_file(name: str) -> list[str]:
    """Tokens of a users file: one per line, surrounding blanks and empty lines ignored."""
    if name == "-":
        text = sys.stdin.read()
    else:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"users file {path} {'is a folder' if path.is_dir() else 'not found'}.")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"users file {path} cannot be read ({exc}).") from exc
    tokens = [line.strip() for line in text.splitlines() if line.strip()]
    if not tokens:
        raise UserError(f"users file {name} holds no user tokens (one per line).")
    return tokens


def _score(value: float) -> str:
    return format(float(value), ".9g")  # float32 scores round-trip; fewer noise digits


def format_recommendations(frame: Any, fmt: str, meta: dict[str, Any], users: list[str]) -> str:
    """CSV (``user,rank,item,score``) or JSON (``meta`` and one ``{user, items, scores}`` per
    user of ``users``, in that order) text."""
    if fmt == "json":
        import json

        lists: dict[str, dict[str, list[Any]]] = {
            user: {"items": [], "scores": []} for user in users
        }
        for user, item, score in zip(frame["user"], frame["item"], frame["score"]):
            lists[user]["items"].append(str(item))
            lists[user]["scores"].append(float(_score(score)))
        records = [{"user": user, **lists[user]} for user in users]
        return json.dumps({**meta, "recommendations": records}, indent=1) + "\n"
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["user", "rank", "item", "score"])
    for user, rank, item, score in zip(frame["user"], frame["rank"], frame["item"], frame["score"]):
        writer.writerow([user, int(rank), item, _score(score)])
    return buffer.getvalue()


def _recommend(args: argparse.Namespace) -> int:

    if args.topk < 1:
        raise UserError(f"--topk must be at least 1; got {args.topk}.")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1; got {args.batch_size}.")
    if args.out is not None:
        check_out_file(args.out, args.overwrite)
    if args.users_file is not None:
        tokens, source = read_users_file(args.users_file), f"--users-file {args.users_file}"
    else:
        tokens, source = list(args.users), "--users"
    rec = _load(args)
    if args.topk > rec.n_items:
        raise UserError(
            f"--topk {args.topk} exceeds the {rec.n_items} items of the checkpoint's dataset."
        )
    frame = rec.recommend(
        tokens,
        args.topk,
        exclude_valid=args.exclude_valid,
        batch_size=args.batch_size,
        source=source,
    )
    meta = {
        "model": rec.model_name,
        "dataset": str(rec.config["dataset"]),
        "checkpoint": str(args.checkpoint),
        "topk": args.topk,
        "excluded": "training and validation items" if args.exclude_valid else "training items",
    }
    users = list(dict.fromkeys(tokens))
    text = format_recommendations(frame, args.format, meta, users)
    if args.out is None:
        sys.stdout.write(text)
    else:

        write_text_atomic(args.out, text)
        print(f"wrote {len(frame)} recommendations for {len(users)} users to {args.out}")
    return 0


def _export(args: argparse.Namespace) -> int:

    check_out_dir(args.out, args.overwrite)
    if args.index:
        from recbole_rlmm.inference.export import (
            check_faiss,  # lazy: torch and RecBole load when the command runs
        )

        check_faiss()
    rec = _load(args)
    from recbole_rlmm.inference.export import (
        export_embeddings,  # lazy: torch and RecBole load when the command runs
    )

    scoring = export_embeddings(rec, args.out, index=args.index, overwrite=True)
    files = ["users.npy", "items.npy", "users.txt", "items.txt", "scoring.json"]
    if scoring["index"]:
        files.append(scoring["index"]["file"])
    print(
        f"{scoring['model']}: {scoring['n_users']} user and {scoring['n_items']} item vectors of "
        f"{scoring['dims']} dims (score = dot product) -> {args.out}: {', '.join(files)}"
    )
    return 0


def _gates(args: argparse.Namespace) -> int:

    check_out_dir(args.out, args.overwrite)
    rec = _load(args)
    from recbole_rlmm.inference.gates import (
        write_gates,  # lazy: torch and RecBole load when the command runs
    )

    result = write_gates(rec, args.out, overwrite=True)
    print(
        f"mean modality share by the item's training interactions ({rec.model_name} on {rec.config['dataset']}):"
    )
    print(
        result["popularity"].to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
    )
    print(f"wrote {', '.join(p.name for p in result['files'])} to {args.out}")
    if result["skipped"]:
        print(result["skipped"])
    return 0


def _serve(args: argparse.Namespace) -> int:
    from recbole_rlmm.inference.serve import (  # lazy: torch, RecBole and FastAPI load when the command runs
        ServeOptions,
        serve,
    )

    options = ServeOptions(max_k=args.max_k, max_history=args.max_history, images=args.images)
    return serve(
        args.checkpoint,
        host=args.host,
        port=args.port,
        options=options,
        trust_checkpoint=args.trust_checkpoint,
        changed_data=args.changed_data,
        device=args.device,
    )
