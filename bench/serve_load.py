"""Load and latency of ``recbole-rlmm serve``, on loopback only, against ``Recommender`` in-process.

    python bench/serve_load.py CHECKPOINT [--clients 1 8 32] [--requests 2000] [--seconds 30]
                               [--k 20] [--users 500] [--out load.json]

The server runs in a child process on a free port of 127.0.0.1 (``bench/serve_process.py``);
nothing leaves the machine. For each kind of request and each number of concurrent clients, the
clients (asyncio, one keep-alive HTTP/1.1 connection each, in this process) send requests back
to back until ``--requests`` have been answered or ``--seconds`` have passed (whichever first;
the first 2 x clients answers are a warm-up and not counted):

* **known**: ``GET /users/{user}/recommendations?k=K`` for test users of the checkpoint;
* **new**: ``POST /recommendations {"items": <that user's training items>, "k": K}`` (fold-in).

Reported per row: answered requests, errors (any status but 200), requests per second (answers
/ wall time of the timed part), p50 and p99 latency (send to full answer, milliseconds) and the
mean batch the server scored together (from ``/health``). The in-process rows call the same
users one at a time in this process with the server idle: ``Recommender.recommend([user], k)``
(known) and ``FoldIn.topk`` (new, the fold-in that ``POST /recommendations`` runs); and once for
all the users in one call (``Recommender.recommend(users, k)``, batch throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


# ---------------------------------------------------------------------------- a lean client
async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> tuple[int, bytes]:
    """Send one prepared HTTP/1.1 request on a keep-alive connection; (status, body)."""
    writer.write(raw)
    await writer.drain()
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return status, await reader.readexactly(length)


def prepare(host: str, port: int, method: str, path: str, body: Any = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: keep-alive\r\n"
    if body is None:
        return (head + "\r\n").encode()
    data = json.dumps(body).encode()
    return (head + f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


async def run_clients(host: str, port: int, requests: list[bytes], clients: int, total: int, seconds: float) -> dict[str, Any]:
    """``clients`` connections sending ``requests`` back to back; see the module docstring."""
    warmup = 2 * clients
    latencies: list[float] = []
    errors = answered = 0
    timed_from: float | None = None
    last = 0.0

    async def client(n: int) -> None:
        nonlocal errors, answered, timed_from, last
        reader, writer = await asyncio.open_connection(host, port)
        index = n
        try:
            while len(latencies) < total and (timed_from is None or time.perf_counter() - timed_from < seconds):
                begin = time.perf_counter()
                status, body = await _request(reader, writer, requests[index % len(requests)])
                end = time.perf_counter()
                index += clients
                answered += 1
                if answered <= warmup:
                    timed_from = end if answered == warmup else None
                    continue
                latencies.append(end - begin)
                last = max(last, end)
                errors += status != 200 or not body.startswith(b"{")
        finally:
            writer.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    wall = last - timed_from if timed_from is not None and latencies else float("nan")
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": int(errors),
        "seconds": round(wall, 3),
        "rps": len(latencies) / wall if latencies else float("nan"),
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
        "p99_ms": float(np.percentile(ms, 99)) if len(ms) else float("nan"),
    }


def health(host: str, port: int) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=60) as answer:
        return json.loads(answer.read())


# ---------------------------------------------------------------------------- in-process
def in_process(rec: Any, users: list[str], histories: list[list[int]], k: int, total: int, seconds: float) -> list[dict[str, Any]]:
    from recbole_rlmm.inference.foldin import FoldIn

    fold_in = FoldIn(rec)
    calls = {
        "known": lambda n: rec.recommend([users[n % len(users)]], k=k),
        "new": lambda n: fold_in.topk(fold_in.history_matrix([histories[n % len(histories)]]), k),
    }
    rows = []
    for kind, call in calls.items():
        for n in range(2):
            call(n)  # warm-up (the first call computes the model's vectors)
        latencies = []
        begin = time.perf_counter()
        while len(latencies) < total and time.perf_counter() - begin < seconds:
            start = time.perf_counter()
            call(len(latencies))
            latencies.append(time.perf_counter() - start)
        wall = time.perf_counter() - begin
        ms = np.array(latencies) * 1000
        rows.append({
            "path": "in-process", "users": kind, "clients": 1, "requests": len(latencies), "errors": 0,
            "seconds": round(wall, 3), "rps": len(latencies) / wall,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "batch": 1.0,
        })
    start = time.perf_counter()
    rec.recommend(users, k=k)
    wall = time.perf_counter() - start
    rows.append({
        "path": "in-process, one call", "users": "known", "clients": 1, "requests": len(users), "errors": 0,
        "seconds": round(wall, 3), "rps": len(users) / wall, "p50_ms": float("nan"), "p99_ms": float("nan"),
        "batch": float(len(users)),
    })
    return rows


# ---------------------------------------------------------------------------- main
def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| dataset (items) | path | users | clients | requests | errors | requests/s | p50 ms | p99 ms | mean batch |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        p50 = "-" if np.isnan(r["p50_ms"]) else f"{r['p50_ms']:.1f}"
        p99 = "-" if np.isnan(r["p99_ms"]) else f"{r['p99_ms']:.1f}"
        lines.append(
            f"| {r['dataset']} ({r['items']:,}) | {r['path']} | {r['users']} | {r['clients']} | {r['requests']:,} "
            f"| {r['errors']} | {r['rps']:,.0f} | {p50} | {p99} | {r['batch']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="concurrent clients")
    parser.add_argument("--requests", type=int, default=2000, help="answers per row at most")
    parser.add_argument("--seconds", type=float, default=30.0, help="timed seconds per row at most")
    parser.add_argument("--k", type=int, default=20, help="list length")
    parser.add_argument("--users", type=int, default=500, help="test users the requests cycle through")
    parser.add_argument("--changed-data", dest="changed_data", default="error", choices=("error", "recompute"))
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if min(args.clients) < 1 or args.requests < 1 or args.seconds <= 0:
        parser.error("--clients, --requests and --seconds must be positive")
    sys.path.insert(0, str(REPO))
    from report_rows import finish
    from serve_process import ServerProcess

    from recbole_rlmm.inference.recommender import Recommender

    rec = Recommender.from_checkpoint(args.checkpoint, changed_data=args.changed_data)
    test = rec.loaded.test_data._dataset
    test_users = np.unique(test.inter_feat[test.uid_field].numpy())
    chosen = np.random.default_rng(0).permutation(test_users)[: args.users]
    train = rec.seen_matrix(False)
    users = [rec.user_tokens[u - 1] for u in chosen.tolist()]
    histories = [train[u].indices[:1000].tolist() for u in chosen.tolist()]
    tokens = rec.item_tokens
    base = {"dataset": str(rec.config["dataset"]), "model": rec.model_name, "items": rec.n_items, "k": args.k}
    rows = [{**base, **row} for row in in_process(rec, users, histories, args.k, args.requests, args.seconds)]
    del rec
    extra = ["--changed-data", args.changed_data]
    with ServerProcess(args.checkpoint, *extra) as server:
        host, port = server.url.split("//")[1].split(":")
        port = int(port)
        known = [prepare(host, port, "GET", f"/users/{u}/recommendations?k={args.k}") for u in users]
        new = [
            prepare(host, port, "POST", "/recommendations", {"items": [tokens[i - 1] for i in h], "k": args.k})
            for h in histories
        ]
        for kind, requests in (("known", known), ("new", new)):
            for clients in args.clients:
                before = health(host, port)
                result = asyncio.run(run_clients(host, port, requests, clients, args.requests, args.seconds))
                after = health(host, port)
                batches = after["batches"] - before["batches"]
                result["batch"] = (after["scored"] - before["scored"]) / batches if batches else float("nan")
                rows.append({**base, "path": "http", "users": kind, "clients": clients, **result})
                print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    return finish(rows, markdown, args.out, f"{base['model']} on {base['dataset']}, top-{args.k}:")


if __name__ == "__main__":
    sys.exit(main())
