"""``recbole-rlmm serve``: the server started on a free local port and called over HTTP, every
error case included; fold-in (recbole_rlmm/inference/foldin.py); the page's data; start-up
refusals; ``bench/foldin.py`` and ``bench/serve_load.py`` on tiny data."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datagen import base_config, make_cold_dataset
from serve_helpers import write_catalog

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from recbole_rlmm import run_recbole_rlmm  # noqa: E402
from recbole_rlmm.inference.errors import InferenceError  # noqa: E402
from recbole_rlmm.inference.foldin import FoldIn, ridge_fit  # noqa: E402
from recbole_rlmm.inference.recommender import Recommender  # noqa: E402
from recbole_rlmm.inference.serve import Job  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from serve_process import ServerProcess  # noqa: E402

NAME = "cold"
COLD = (30, 31, 32, 33, 34)  # items only in test: RLMultimodalRec scores them from content
MODELS = ["RLMultimodalRec", "LightGCN", "BPR", "FREEDOM", "SGL", "NCL", "Pop", "RLMultimodalRec+side"]
EXTRA = {
    "NCL": {"num_clusters": 10},  # RecBole's default 1000 clusters exceed the 60 users
    # users also add their items' item-graph vectors: fold-in must rebuild that term too
    "RLMultimodalRec+side": {"item_graph_users": True, "item_graph_purify": True},
}
MAX_HISTORY = 6


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve") / "data"
    write_catalog(make_cold_dataset(root, name=NAME, cold=COLD, missing={"image": [3, 4], "text": [4, 5]}), NAME)
    return root


@pytest.fixture(scope="module")
def checkpoints(data_root: Path) -> dict[str, Path]:
    cwd, argv = os.getcwd(), sys.argv
    os.chdir(data_root.parent)
    sys.argv = ["pytest"]
    try:
        return {
            m: Path(
                run_recbole_rlmm(
                    m.split("+")[0], config_dict=base_config(data_root, name=NAME, epochs=2, **EXTRA.get(m, {}))
                )["checkpoint"]
            )
            for m in MODELS
        }
    finally:
        os.chdir(cwd)
        sys.argv = argv


@pytest.fixture(scope="module")
def recommenders(checkpoints: dict[str, Path]) -> dict[str, Recommender]:
    return {m: Recommender.from_checkpoint(p) for m, p in checkpoints.items() if m != "Pop"}


@pytest.fixture(scope="module")
def server(checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """RLMultimodalRec served from an empty working directory (to see that nothing is written)."""
    cwd = tmp_path_factory.mktemp("serve-cwd")
    with ServerProcess(checkpoints["RLMultimodalRec"], "--max-history", str(MAX_HISTORY), cwd=cwd) as running:
        running.cwd_path = cwd
        with httpx.Client(base_url=running.url, timeout=60) as client:
            yield running, client


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------- the four requests
def test_health_and_model(server, checkpoints: dict[str, Path]) -> None:
    import torch

    _, client = server
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/model").json()
    stored = torch.load(checkpoints["RLMultimodalRec"], weights_only=True)
    assert info["model"] == "RLMultimodalRec" and info["dataset"] == NAME
    assert info["data_fingerprint"] == stored["data"] and f"{NAME}.item" in info["data_fingerprint"]
    assert info["modalities"] == ["image", "text"]
    assert set(info["gate"]["mean_share"]) == {"image", "text"}
    assert abs(sum(info["gate"]["mean_share"].values()) - 1) < 1e-6
    assert info["metrics"]["best_valid_result"] == pytest.approx(dict(stored["best_valid_result"]), rel=1e-6)
    assert info["fold_in"]["method"] == "propagation"
    assert info["catalog"]["titled_items"] == 40 and info["catalog"]["pictured_items"] == 20
    assert info["limits"] == {"max_k": 40, "max_history": MAX_HISTORY}
    schema = client.get("/openapi.json").json()
    assert {"/users/{user}/recommendations", "/recommendations", "/items/{item}/similar", "/health", "/model"} <= set(schema["paths"])


@pytest.mark.parametrize("exclude_valid", [False, True])
def test_known_users_get_the_lists_of_recommend(server, recommenders, exclude_valid: bool) -> None:
    _, client = server
    rec = recommenders["RLMultimodalRec"]
    users = rec.user_tokens[:12]
    expected = rec.recommend(users, k=7, exclude_valid=exclude_valid)
    for user in users:
        got = client.get(f"/users/{user}/recommendations", params={"k": 7, "exclude_valid": exclude_valid}).json()
        rows = expected[expected["user"] == user]
        assert got["items"] == list(rows["item"]) and got["user"] == user
        assert got["scores"] == pytest.approx(list(rows["score"]), rel=1e-6, abs=1e-7)
        seen = rec.seen_matrix(exclude_valid)[rec.user_ids([user])[0]].indices
        assert not set(got["items"]) & {rec.item_tokens[i - 1] for i in seen}


def test_new_user_is_folded_in_from_their_items(server, recommenders) -> None:
    _, client = server
    rec = recommenders["RLMultimodalRec"]
    history = ["i1", "i7", "i12", "i7"]  # a repeat counts once
    got = client.post("/recommendations", json={"items": history, "k": 10}).json()
    assert got["history"] == ["i1", "i7", "i12"] and got["fold_in"] == "propagation" and got["unused"] == []
    assert len(got["items"]) == 10 and not set(got["items"]) & set(history)
    fold_in = FoldIn(rec)
    ids = [rec.item_tokens.index(t) + 1 for t in ["i1", "i7", "i12"]]
    items, values = fold_in.topk(fold_in.history_matrix([ids]), 10)
    assert got["items"] == [rec.item_tokens[i - 1] for i in items[0]]
    assert got["scores"] == pytest.approx(values[0].tolist(), rel=1e-5)
    # numbers are tokens too (JSON clients send numeric ids as numbers)
    assert client.post("/recommendations", json={"items": [1, "i2"], "k": 3}).status_code == 422  # no token "1"


def test_similar_items_include_cold_items_through_their_content(server, recommenders) -> None:
    _, client = server
    rec = recommenders["RLMultimodalRec"]
    got = client.get("/items/i30/similar", params={"k": 39}).json()  # i30: cold, has content
    assert "i30" not in got["items"] and got["scores"] == sorted(got["scores"], reverse=True)
    assert {f"i{c}" for c in COLD[1:]} <= set(got["items"])
    users, items = rec.vectors()
    plain = items[:, :-1] if np.all(users[:, -1] == 1) else items
    unit = plain / np.linalg.norm(plain, axis=1, keepdims=True)
    j = rec.item_tokens.index("i30")
    cosine = unit @ unit[j]
    assert got["scores"][0] == pytest.approx(float(np.delete(cosine, j).max()), rel=1e-5)


def test_an_id_only_model_leaves_cold_items_out_of_similar_items(recommenders) -> None:
    from recbole_rlmm.inference.serve import RequestError, Service

    service = Service(recommenders["LightGCN"])
    cold = {service.item_index[f"i{c}"] for c in COLD}
    items, _ = service.score_jobs([Job("similar", service.item_index["i1"], 30)])[0]
    assert len(items) == 30 and not cold & set(items.tolist())
    with pytest.raises(RequestError, match="no training interactions") as refused:
        service.similar_check(service.item_index["i30"], "i30")
    assert refused.value.status == 422
    assert service.foldin.method == "propagation" and service.shares is None
    # a new user's cold items are not folded in (no vector), yet left out of their list
    history = service.history_ids(["i1", "i2", "i31"])
    items, _ = service.score_jobs([Job("new", history, 20)])[0]
    plain, _ = service.score_jobs([Job("new", history[:2], 21)])[0]
    assert service.item_index["i31"] not in items.tolist()
    assert items.tolist() == [i for i in plain.tolist() if i != service.item_index["i31"]][:20]
    with pytest.raises(RequestError, match="nothing to fold in"):
        service.history_ids(["i30", "i31"])


def test_details_give_titles_pictures_and_gate_shares(server) -> None:
    _, client = server
    got = client.get("/users/u0/recommendations", params={"k": 40, "details": True}).json()
    details = {d["item"]: d for d in got["details"]}
    assert [d["item"] for d in got["details"]] == got["items"]
    for item, d in details.items():
        k = int(item[1:])
        assert d["title"].startswith(f"Movie number {k} ")
        assert (d["image"] is not None) == (k < 20)
        assert abs(sum(d["shares"].values()) - 1) < 1e-6 or k == 4  # i4 has no content at all
    picture = client.get("/items/i3/image")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content[:4] == b"\x89PNG"
    assert client.get("/items/i25/image").status_code == 404
    found = client.get("/items", params={"q": "number 1 al"}).json()
    assert found["items"] == ["i1"]
    assert {d["item"] for d in client.get("/items", params={"q": "beta", "limit": 100}).json()["details"]} == {
        f"i{k}" for k in range(0, 40, 2)
    }
    history = client.get("/users/u0/history").json()
    assert history["total"] == len(history["items"]) > 0
    assert client.get("/users", params={"q": "u1"}).json()["users"][:2] == ["u1", "u10"]
    page = client.get("/", follow_redirects=True)
    assert page.status_code == 200 and "app.js" in page.text
    assert "recommendUser" in client.get("/web/app.js").text


def test_concurrent_requests_get_their_own_answers(server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    _, client = server
    users = [f"u{k}" for k in range(30)]
    alone = {u: client.get(f"/users/{u}/recommendations", params={"k": 5}).json()["items"] for u in users}
    new = {u: client.post("/recommendations", json={"items": [f"i{k}" for k in range(int(u[1:]) % 5 + 1)], "k": 4}).json()["items"] for u in users}

    def both(user: str) -> tuple[list, list]:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as own:
            a = own.get(f"/users/{user}/recommendations", params={"k": 5}).json()["items"]
            b = own.post("/recommendations", json={"items": [f"i{k}" for k in range(int(user[1:]) % 5 + 1)], "k": 4}).json()["items"]
        return a, b

    with ThreadPoolExecutor(16) as pool:
        for user, (a, b) in zip(users, pool.map(both, users)):
            assert a == alone[user] and b == new[user]


def test_requests_waiting_together_are_scored_in_one_batch() -> None:
    from recbole_rlmm.inference.serve import Batcher

    calls: list[list[int]] = []

    def score(jobs: list[Job]) -> list[int]:
        calls.append([job.key for job in jobs])
        return [job.key * 10 for job in jobs]

    async def run() -> list[int]:
        batcher = Batcher(score, max_batch=4)
        try:
            return await asyncio.gather(*(batcher.submit(Job("known", n, 1)) for n in range(10)))
        finally:
            batcher.close()

    assert asyncio.run(run()) == [n * 10 for n in range(10)]
    assert calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


# ---------------------------------------------------------------------------- every error case
BIG = "x" * ((1 << 20) + 1)
ERRORS = [
    ("GET", "/users/nobody/recommendations", None, 404, "unknown user 'nobody'"),
    ("GET", "/users/u1/recommendations?k=0", None, 422, "k=0"),
    ("GET", "/users/u1/recommendations?k=41", None, 422, "from 1 to 40"),
    ("GET", "/users/u1/recommendations?k=abc", None, 422, "k=abc"),
    ("GET", "/users/u1/recommendations?k=2.5", None, 422, "k=2.5"),
    ("GET", "/users/u1/recommendations?exclude_valid=maybe", None, 422, "give true or false"),
    ("GET", "/users/u1/history?limit=0", None, 422, "limit=0"),
    ("GET", "/users/nobody/history", None, 404, "unknown user"),
    ("GET", "/items/nothing/similar", None, 404, "unknown item 'nothing'"),
    ("GET", "/items/i1/similar?k=-3", None, 422, "k=-3"),
    ("GET", "/items/nothing/image", None, 404, "unknown item"),
    ("GET", "/items?limit=1000", None, 422, "limit=1000"),
    ("POST", "/recommendations", {"items": [], "k": 5}, 422, "items is empty"),
    ("POST", "/recommendations", {"items": [f"i{k}" for k in range(MAX_HISTORY + 1)]}, 422, f"at most {MAX_HISTORY}"),
    ("POST", "/recommendations", {"items": ["i1", "zz", "yy"]}, 422, "unknown item token(s) 'zz', 'yy'"),
    ("POST", "/recommendations", {"items": ["i1"], "k": 0}, 422, "k=0 is out of range"),
    ("POST", "/recommendations", {"items": ["i1"], "k": 41}, 422, "from 1 to 40"),
    ("POST", "/recommendations", {"items": ["i1"], "k": "5"}, 422, 'k="5"'),
    ("POST", "/recommendations", {"items": ["i1"], "k": True}, 422, "k=true"),
    ("POST", "/recommendations", {"items": "i1"}, 422, 'items="i1"'),
    ("POST", "/recommendations", {"items": ["i1", None]}, 422, "items[1]=null"),
    ("POST", "/recommendations", {"items": ["i1"], "K": 5}, 422, "unknown field 'K'"),
    ("POST", "/recommendations", {"k": 5}, 422, "items is missing"),
    ("POST", "/recommendations", [1, 2], 422, "must be a JSON object"),
    ("POST", "/recommendations", b'{"items": ["i1"', 422, "not valid JSON"),
    ("POST", "/recommendations", b"", 422, "body is missing"),
    ("POST", "/recommendations", BIG.encode(), 413, "larger than"),
    ("GET", "/recommendations", None, 405, "does not take that method"),
    ("DELETE", "/users/u1/recommendations", None, 405, "does not take that method"),
    ("GET", "/no/such/thing", None, 404, "no such endpoint"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "fragment"), ERRORS, ids=[f"{e[0]} {e[1][:40]} {e[3]}" for e in ERRORS])
def test_every_mistake_is_one_clear_4xx(server, method: str, path: str, body, status: int, fragment: str) -> None:
    _, client = server
    if isinstance(body, bytes):
        response = client.request(method, path, content=body)
    else:
        response = client.request(method, path, json=body) if body is not None else client.request(method, path)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and fragment in detail, detail


def test_chunked_oversized_bodies_are_refused(server) -> None:
    _, client = server
    response = client.post("/recommendations", content=iter([b"[" + b"1," * 300_000, b"1]"] * 3))
    assert response.status_code == 413


def test_the_server_writes_nothing(server, data_root: Path) -> None:
    running, client = server
    before = tree(data_root / NAME)
    for method, path, body, _, _ in ERRORS:
        client.request(method, path, json=body if not isinstance(body, bytes) else None)
    client.post("/recommendations", json={"items": ["i1"], "k": 3})
    assert tree(data_root / NAME) == before
    assert list(running.cwd_path.iterdir()) == []
    assert client.get("/health").status_code == 200  # still serving


# ---------------------------------------------------------------------------- start-up
def refusal(args: list[str], capsys: pytest.CaptureFixture) -> str:
    """``recbole-rlmm serve ARGS`` (in this process): exit status 2 and one line."""
    from recbole_rlmm.cli import main

    code = main(["serve", "--port", "0", *args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("recbole-rlmm: error: "), lines
    return lines[0]


def test_a_checkpoint_whose_data_changed_is_refused_at_start(checkpoints, data_root: Path, capsys) -> None:
    valid = data_root / NAME / f"{NAME}.valid.inter"
    original = valid.read_bytes()
    try:
        valid.write_bytes(original + b"u0\ti39\n")
        line = refusal(["--checkpoint", str(checkpoints["RLMultimodalRec"])], capsys)
        assert f"{NAME}.valid.inter changed since" in line and "--changed-data=recompute" in line
    finally:
        valid.write_bytes(original)


def test_other_refusals_at_start(checkpoints, tmp_path: Path, capsys) -> None:
    line = refusal(["--checkpoint", str(checkpoints["Pop"])], capsys)
    assert "dot products" in line and "Pop" in line
    line = refusal(["--checkpoint", str(checkpoints["BPR"]), "--images", "nowhere"], capsys)
    assert "images folder nowhere (from --images) not found" in line
    line = refusal(["--checkpoint", str(checkpoints["BPR"]), "--max-k", "0"], capsys)
    assert "--max-k must be at least 1" in line
    line = refusal(["--checkpoint", str(tmp_path / "missing.pth")], capsys)
    assert "missing.pth" in line
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = refusal(["--checkpoint", str(checkpoints["BPR"]), "--port", str(port)], capsys)
        assert f"port {port} on 127.0.0.1 is in use" in line


def test_kept_alive_connections_send_without_nagle_delay() -> None:
    """The listening socket is a TCP one, so asyncio turns Nagle's algorithm off on every
    connection; otherwise an answer on a kept-alive connection waits ~40 ms for a delayed ACK."""
    import socket as sockets

    from recbole_rlmm.inference.serve import bind

    async def accepted_nodelay() -> int:
        seen: list[int] = []

        async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            raw = writer.get_extra_info("socket")
            seen.append(raw.getsockopt(sockets.IPPROTO_TCP, sockets.TCP_NODELAY))
            writer.close()

        listening = bind("127.0.0.1", 0)
        server = await asyncio.start_server(handle, sock=listening)
        async with server:
            _, writer = await asyncio.open_connection(*listening.getsockname()[:2])
            while not seen:
                await asyncio.sleep(0.01)
            writer.close()
        return seen[0]

    assert asyncio.run(accepted_nodelay()) != 0


def test_serve_without_its_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from recbole_rlmm.inference.serve import ServeError, check_installed

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(ServeError, match=r'serve needs uvicorn: pip install "recbole-rlmm\[serve\]"'):
        check_installed()


# ---------------------------------------------------------------------------- fold-in
@pytest.mark.parametrize("model", ["RLMultimodalRec", "RLMultimodalRec+side", "LightGCN", "FREEDOM", "SGL", "NCL"])
def test_propagation_rebuilds_trained_users_from_their_own_layer_zero(recommenders, model: str) -> None:
    fold_in = FoldIn(recommenders[model])
    assert fold_in.method == "propagation" and not fold_in.note
    check = fold_in.check_propagation(count=1000)
    assert check.users == recommenders[model].n_users and check.ok, check


def test_fold_in_vectors_carry_the_cold_column(recommenders) -> None:
    fold_in = FoldIn(recommenders["RLMultimodalRec"])
    assert fold_in.cold_column and fold_in.dim == fold_in.item_vectors.shape[1] - 1
    vectors = fold_in.user_vectors([[1, 2, 3], [31]])  # the second: one cold item alone
    assert np.all(vectors[:, -1] == 1) and np.isfinite(vectors).all()
    assert not FoldIn(recommenders["LightGCN"]).cold_column


def test_linear_fold_in_is_the_fitted_map_of_the_item_mean(recommenders) -> None:
    rec = recommenders["BPR"]
    fold_in = FoldIn(rec)
    assert fold_in.method == "linear"
    history = [3, 9, 9, 14]
    mean = fold_in.item_vectors[[3, 9, 14]].astype(np.float64).mean(axis=0)
    assert fold_in.user_vectors([history])[0] == pytest.approx((mean @ fold_in.map).astype(np.float32), rel=1e-5)
    with pytest.raises(InferenceError, match="not a LightGCN-style model"):
        FoldIn(rec, method="propagation")


def test_ridge_fit_recovers_a_linear_map() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(500, 6)), rng.normal(size=(6, 4))
    assert ridge_fit(x, x @ w, ridge=1e-9) == pytest.approx(w, abs=1e-6)


# ---------------------------------------------------------------------------- the benches
def test_foldin_bench_reports_both_methods(checkpoints, tmp_path: Path) -> None:
    out = tmp_path / "foldin.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "foldin.py"), str(checkpoints["RLMultimodalRec"]), str(checkpoints["BPR"]), "--out", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [(r["model"], r["method"]) for r in rows] == [("RLMultimodalRec", "propagation"), ("RLMultimodalRec", "linear"), ("BPR", "linear")]
    for r in rows:
        assert r["test_users"] == 60 and 0 < r["trained_recall"] <= 1 and 0 <= r["foldin_recall"] <= 1
    assert "| cold | RLMultimodalRec | 60 |" in result.stdout


@pytest.mark.slow
def test_load_bench_runs_bounded(checkpoints, tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "serve_load.py"), str(checkpoints["RLMultimodalRec"]),
         "--clients", "1", "3", "--requests", "15", "--seconds", "5", "--users", "10", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())
    kinds = {(r["path"], r["users"], r["clients"]) for r in rows}
    assert {("http", "known", 1), ("http", "new", 3), ("in-process", "known", 1), ("in-process", "new", 1)} <= kinds
    assert all(r["requests"] > 0 and r["errors"] == 0 for r in rows)
    assert all(r["p99_ms"] >= r["p50_ms"] > 0 for r in rows if r["path"] != "in-process, one call")


# ---------------------------------------------------------------------------- the embedded dataset
def test_embedded_movielens_mm_has_titles_and_thumbnails() -> None:
    """What the page shows for dataset/movielens-mm (bench/build_movielens_mm.py, step 4), within
    the size budget of dataset/ (about 40 MB in all)."""
    from PIL import Image
    from test_prepare_movielens_mm import MISSING_POSTERS

    from recbole_rlmm.inference.catalog import load_catalog

    folder = REPO / "dataset" / "movielens-mm"
    tokens = (folder / "movielens-mm.item_index").read_text().split()
    config = {"data_path": str(folder), "dataset": "movielens-mm", "item_images": None}
    catalog = load_catalog(config, tokens)
    assert catalog.title_source == "movielens-mm.item:title" and set(catalog.titles) == set(tokens)
    assert catalog.titles["40"] == "Toy Story (1995)"
    assert catalog.images_dir == folder / "images"
    assert set(catalog.images) == {t for t in tokens if int(t) not in MISSING_POSTERS}
    for token in tokens[:: 97]:
        if token in catalog.images:
            with Image.open(catalog.images[token]) as image:
                assert image.format == "JPEG" and image.width == 100
    tracked = subprocess.run(["git", "ls-files", "-z", "dataset"], cwd=REPO, capture_output=True, check=True).stdout
    files = [REPO / name for name in tracked.decode().split("\0") if name]
    if files and all(f.is_file() for f in files):  # a git checkout
        assert sum(f.stat().st_size for f in files) < 40e6
