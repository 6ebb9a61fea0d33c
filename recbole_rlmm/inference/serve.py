"""``recbole-rlmm serve``: a trained model over HTTP (FastAPI + uvicorn), and a page to look at it.

The checkpoint is loaded once, by the same safe loader and data-fingerprint check as
``recommend`` (:class:`~recbole_rlmm.inference.recommender.Recommender`). Endpoints (JSON in
and out; the schema is at ``/openapi.json``):

* ``GET /users/{user}/recommendations?k=20&exclude_valid=false``: a known user's top K, the
  lists of ``recommend`` (training items excluded, with ``exclude_valid`` validation items too);
* ``POST /recommendations`` ``{"items": [...], "k": 20}``: a user who was not in training, folded
  in from their items (:mod:`~recbole_rlmm.inference.foldin`); their own items are excluded;
* ``GET /items/{item}/similar?k=20``: the items whose vectors are closest in cosine;
* ``GET /health``, ``GET /model``; and for the page ``GET /users``, ``GET /users/{user}/history``,
  ``GET /items`` (title search), ``GET /items/{item}/image``, ``GET /`` (the page itself).

Every list answers ``{"items": [...], "scores": [...]}`` (and with ``details=true`` each item's
title, picture, gate shares and training interactions). A mistake in a request (unknown user or
item, empty or oversized history, k out of range, malformed JSON, a wrong field) is one 4xx
answer ``{"detail": "<one sentence naming the field, the value and the fix>"}``; nothing is
ever written.

**Batches.** Scoring runs in one worker thread. Requests that arrive while a batch is being
scored wait and are scored together in the next one (one matrix product and top-K for all of
them), so a busy server does fewer, larger products and an idle one answers at once.

**Models.** Dot-product models: recbole-rlmm's and RecBole's LightGCN, BPR, NGCF, SGL, NCL, DGCF,
SpectralCF, LINE, ENMF, NCEPLRec, SimpleX (those of ``export``). Other models are refused at start
with a message. Similar items use the item vectors without RLMultimodalRec's cold-offset column;
items without training interactions take part only in models that give them a vector from their
content (recbole-rlmm's multimodal models, for the items that have content).
"""

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recbole_rlmm import __version__
from recbole_rlmm.errors import UserError
from recbole_rlmm.inference.catalog import IMAGE_TYPES, check_folder, load_catalog
from recbole_rlmm.inference.errors import InferenceError
from recbole_rlmm.inference.foldin import FoldIn, top_items
from recbole_rlmm.inference.gates import NoGateError, gate_table, item_shares, popularity_table
from recbole_rlmm.inference.recommender import Recommender, quoted
from recbole_rlmm.inference.vectors import NotDotProductError

SERVE_EXTRA = 'pip install "recbole-rlmm[serve]"'
#: The page's files (index.html, app.js, style.css).
WEB = Path(__file__).with_name("web")
#: Requests scored together at most.
MAX_BATCH = 64
#: Largest request body accepted (bytes).
MAX_BODY = 1 << 20
SHOWN = 5


class ServeError(UserError):
    """The server cannot start (the message says why and what to do)."""


class RequestError(Exception):
    """A request the server refuses: HTTP ``status`` and one-sentence ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_installed() -> None:
    """FastAPI and uvicorn are an extra: say how to get them."""
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise ServeError(f"serve needs {' and '.join(missing)}: {SERVE_EXTRA}")


# ---------------------------------------------------------------------------- options
@dataclass
class ServeOptions:
    max_k: int = 1000
    max_history: int = 1000
    images: str | None = None
    batch: int = MAX_BATCH

    def check(self) -> None:
        for name, value in (("--max-k", self.max_k), ("--max-history", self.max_history)):
            if value < 1:
                raise ServeError(f"{name} must be at least 1; got {value}.")


# ---------------------------------------------------------------------------- batching
@dataclass
class Job:
    """One list to compute: ``kind`` known / new / similar; ``key`` the user, history or item
    (internal ids); ``k`` its length."""

    kind: str
    key: Any
    k: int
    exclude_valid: bool = False
    future: asyncio.Future | None = field(default=None, repr=False)


class Batcher:
    """Scores the requests waiting at the same time in one call of ``score(jobs)`` (in one worker
    thread); see the module docstring."""

    def __init__(self, score: Callable[[list[Job]], list[Any]], max_batch: int = MAX_BATCH) -> None:
        self.score = score
        self.max_batch = max_batch
        self.waiting: list[Job] = []
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rlmm-score")
        self.wakeup: asyncio.Event | None = None
        self.task: asyncio.Task | None = None
        self.batches = 0
        self.scored = 0

    async def submit(self, job: Job) -> Any:
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done():
            self.wakeup = asyncio.Event()
            self.task = loop.create_task(self._run())
        job.future = loop.create_future()
        self.waiting.append(job)
        self.wakeup.set()
        return await job.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.waiting:
                jobs, self.waiting = self.waiting[: self.max_batch], self.waiting[self.max_batch :]
                try:
                    results = await loop.run_in_executor(self.executor, self.score, jobs)
                except Exception as exc:  # noqa: BLE001 - handed to every request of the batch
                    for job in jobs:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                self.batches += 1
                self.scored += len(jobs)
                for job, result in zip(jobs, results):
                    if not job.future.done():
                        job.future.set_result(result)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------------------- the model
def _round(value: float) -> float:
    return float(format(float(value), ".9g"))  # as `recommend --format json`


def _plain(value: Any) -> Any:
    """A JSON value: floats rounded (NaN: null), numpy scalars as Python's."""
    if isinstance(value, (float, np.floating)):
        return _round(value) if np.isfinite(value) else None
    return value.item() if isinstance(value, np.generic) else value


class Service:
    """Everything the app serves, loaded once from a :class:`Recommender`."""

    def __init__(self, rec: Any, options: ServeOptions | None = None) -> None:
        self.rec = rec
        self.options = options or ServeOptions()
        self.options.check()
        try:
            self.foldin = FoldIn(rec)
        except NotDotProductError as exc:
            raise ServeError(
                f"serve needs a model whose scores are dot products of user and item vectors "
                f"(recbole-rlmm's models; RecBole's LightGCN, BPR, NGCF, SGL, NCL, ...): {exc}"
            ) from None
        self.model_name = rec.model_name
        self.dataset_name = str(rec.config["dataset"])
        self.max_k = min(self.options.max_k, rec.n_items)
        self.max_history = self.options.max_history
        self.item_tokens: list[str] = rec.item_tokens
        self.user_tokens: list[str] = rec.user_tokens
        self.item_index = {t: j + 1 for j, t in enumerate(self.item_tokens)}
        self.user_index = {t: j + 1 for j, t in enumerate(self.user_tokens)}
        self.degree = rec.item_degree()
        self.train = rec.seen_matrix(False)
        # cosine similarity: the item vectors without the cold-offset column, unit length
        plain = self.foldin.item_vectors[:, : self.foldin.dim].astype(np.float32)
        norms = np.linalg.norm(plain, axis=1, keepdims=True)
        self.item_unit = torch.from_numpy(plain / np.maximum(norms, 1e-12))
        # items with a meaningful vector: trained (warm), or given one from content; an ID-only
        # model's cold items keep their untrained initialisation
        self.content = self._content_items()
        self.has_vector = (self.degree > 0) | self.content
        self.has_vector[0] = False
        self.no_vector = torch.from_numpy(~self.has_vector)
        self.shares, self.gate_summary = self._gates()
        self.catalog = load_catalog(rec.config, self.item_tokens, self.options.images)
        self.lowered = {t: title.lower() for t, title in self.catalog.titles.items()}
        self.batcher = Batcher(self.score_jobs, self.options.batch)

    # ------------------------------------------------------------------ set-up
    def _content_items(self) -> np.ndarray:
        """Items the model gives a content-based vector (recbole-rlmm's multimodal models: the
        items with at least one modality it uses), by internal id."""
        model = self.rec.model
        out = np.zeros(self.rec.item_num, dtype=bool)
        encoders = getattr(model, "encoders", None)
        used = getattr(model, "modalities", None)
        if type(model).__module__.startswith("recbole_rlmm.") and encoders is not None and used:
            for m in used:
                if m in encoders:
                    out |= encoders[m].mask.cpu().numpy().astype(bool)
        return out

    def _gates(self) -> tuple[dict[str, np.ndarray] | None, dict[str, Any] | None]:
        try:
            shares, has = item_shares(self.rec)
        except NoGateError:
            return None, None
        for m in shares:
            shares[m] = np.where(has[m], shares[m], 0.0)
        table = gate_table(self.rec)
        complete = table[table["modalities"] == "+".join(shares)]
        summary = {
            "modalities": list(shares),
            "items_with_all": len(complete),
            "mean_share": {m: _round(complete[f"share_{m}"].mean()) if len(complete) else None for m in shares},
            "by_training_interactions": [
                {k: _plain(v) for k, v in row.items()} for row in popularity_table(table).to_dict("records")
            ],
        }
        return shares, summary

    # ------------------------------------------------------------------ requests
    def check_k(self, k: Any, name: str = "k") -> int:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.max_k:
            raise RequestError(
                422,
                f"{name}={k!r} is out of range: give an integer from 1 to {self.max_k} (the "
                f"dataset's {self.rec.n_items} items, at most --max-k {self.options.max_k}).",
            )
        return k

    def user_id(self, token: str) -> int:
        uid = self.user_index.get(token)
        if uid is None:
            raise RequestError(
                404,
                f"unknown user {token!r}: the model's dataset has {self.rec.n_users} users, e.g. "
                f"{quoted(self.user_tokens[:2])} (GET /users?q=... lists them); for a user who was "
                "not in training, POST their items to /recommendations.",
            )
        return uid

    def item_id(self, token: str) -> int:
        iid = self.item_index.get(token)
        if iid is None:
            raise RequestError(
                404,
                f"unknown item {token!r}: the model's dataset has {self.rec.n_items} items, e.g. "
                f"{quoted(self.item_tokens[:2])} (GET /items?q=... searches them).",
            )
        return iid

    def history_ids(self, items: Sequence[Any]) -> np.ndarray:
        if not len(items):
            raise RequestError(
                422,
                "items is empty: give the items the new user interacted with, e.g. "
                f'{{"items": [{", ".join(repr(t).replace(chr(39), chr(34)) for t in self.item_tokens[:2])}], "k": 20}}.',
            )
        tokens = list(dict.fromkeys(str(t) for t in items))
        if len(tokens) > self.max_history:
            raise RequestError(
                422,
                f"items holds {len(tokens)} distinct items; at most {self.max_history} are "
                "accepted (--max-history): send the user's most recent ones.",
            )
        unknown = [t for t in tokens if t not in self.item_index]
        if unknown:
            shown = quoted(unknown[:SHOWN]) + (
                f" (first {SHOWN} of {len(unknown)})" if len(unknown) > SHOWN else ""
            )
            raise RequestError(
                422,
                f"unknown item token(s) {shown} in items: the model's dataset has "
                f"{self.rec.n_items} items, e.g. {quoted(self.item_tokens[:2])} (GET /items?q=... "
                "searches them).",
            )
        ids = np.fromiter((self.item_index[t] for t in tokens), dtype=np.int64, count=len(tokens))
        if not self.has_vector[ids].any():
            raise RequestError(
                422,
                f"none of the items {quoted(tokens[:SHOWN])} has training interactions, and "
                f"{self.model_name} gives such items no vector from content, so there is nothing to "
                "fold in; add items the model was trained on.",
            )
        return ids

    def similar_check(self, iid: int, token: str) -> None:
        if not self.has_vector[iid]:
            raise RequestError(
                422,
                f"item {token!r} has no training interactions and {self.model_name} gives it no "
                "vector from content, so it has no similar items; ask for an item with "
                "training interactions.",
            )

    # ------------------------------------------------------------------ scoring (worker thread)
    @torch.no_grad()
    def score_jobs(self, jobs: list[Job]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(internal item ids, scores)`` of every job, the jobs of a kind scored together."""
        results: list[Any] = [None] * len(jobs)
        groups: dict[tuple[str, bool], list[int]] = {}
        for n, job in enumerate(jobs):
            groups.setdefault((job.kind, job.exclude_valid), []).append(n)
        for (kind, exclude_valid), members in groups.items():
            part = [jobs[n] for n in members]
            kmax = max(job.k for job in part)
            if kind == "known":
                items, values = self.rec.topk_ids(
                    np.array([job.key for job in part], dtype=np.int64), kmax, exclude_valid
                )
            elif kind == "new":
                items, values = self._new_users([job.key for job in part], kmax)
            else:
                items, values = self._similar(np.array([job.key for job in part]), kmax)
            for row, (n, job) in enumerate(zip(members, part)):
                keep = items[row, : job.k] >= 0
                results[n] = (items[row, : job.k][keep], values[row, : job.k][keep])
        return results

    def _new_users(self, histories: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Folded in from the items the model has a vector for; every history item excluded."""
        used = [h[self.has_vector[h]] for h in histories]
        return self.foldin.topk(
            self.foldin.history_matrix(used), k, exclude=self.foldin.history_matrix(histories)
        )

    def _similar(self, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        ids = torch.from_numpy(items.astype(np.int64))
        scores = self.item_unit[ids] @ self.item_unit.T
        scores[:, self.no_vector] = -torch.inf
        scores[torch.arange(len(items)), ids] = -torch.inf
        return top_items(scores, k)

    # ------------------------------------------------------------------ answers
    def detail(self, iid: int) -> dict[str, Any]:
        token = self.item_tokens[iid - 1]
        shares = None
        if self.shares is not None:
            shares = {m: _round(v[iid]) for m, v in self.shares.items()}
        return {
            "item": token,
            "title": self.catalog.title(token),
            "image": f"/items/{token}/image" if self.catalog.image(token) is not None else None,
            "shares": shares,
            "train_interactions": int(self.degree[iid]),
        }

    def ranked(self, ids: np.ndarray, values: np.ndarray | None, details: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"items": [self.item_tokens[i - 1] for i in ids.tolist()]}
        if values is not None:
            out["scores"] = [_round(v) for v in values.tolist()]
        if details:
            out["details"] = [self.detail(i) for i in ids.tolist()]
        return out

    def model_info(self) -> dict[str, Any]:
        rec, state = self.rec, self.rec.loaded.checkpoint
        model = rec.model
        modalities = list(getattr(model, "modalities", None) or [])
        summary = model.content_summary() if hasattr(model, "content_summary") else None
        best = state.get("best_valid_result") or {}
        return {
            "model": self.model_name,
            "dataset": self.dataset_name,
            "checkpoint": str(rec.path),
            "users": rec.n_users,
            "items": rec.n_items,
            "data_fingerprint": state.get("data") or {},
            "modalities": modalities,
            "content": summary,
            "gate": self.gate_summary,
            "metrics": {
                "split": "validation, best epoch (the checkpoint holds no test metrics)",
                "epoch": state.get("epoch"),
                "best_valid_score": state.get("best_valid_score"),
                "best_valid_result": {str(k): _round(v) for k, v in best.items()},
            },
            "fold_in": self.foldin.describe(),
            "similar_items": "cosine of the item vectors"
            + (" (cold-offset column left out)" if self.foldin.cold_column else ""),
            "catalog": self.catalog.describe(),
            "limits": {"max_k": self.max_k, "max_history": self.max_history},
        }

    def search_items(self, query: str, limit: int) -> list[int]:
        """Items whose title (or token) contains ``query`` (case-insensitive): title prefix
        matches first, then by training interactions."""
        q = query.strip().lower()
        if not q:
            order = np.argsort(-self.degree[1:], kind="stable")[:limit] + 1
            return order.tolist()
        hits = []
        for j, token in enumerate(self.item_tokens):
            title = self.lowered.get(token, "")
            if q in title or q == token.lower():
                hits.append((0 if title.startswith(q) or q == token.lower() else 1, -int(self.degree[j + 1]), j + 1))
        hits.sort()
        return [h[2] for h in hits[:limit]]

    def search_users(self, query: str, limit: int) -> list[str]:
        q = query.strip()
        return [t for t in self.user_tokens if t.startswith(q)][:limit]


# ---------------------------------------------------------------------------- the app
def _validation_message(errors: Sequence[dict[str, Any]], max_k: int, max_history: int) -> str:
    """One sentence for pydantic's first validation error: the field, the value, the fix."""
    hints = {
        "k": f"give an integer from 1 to {max_k}",
        "limit": "give a positive integer (at most 100; 10000 for a history)",
        "items": f"give a JSON list of 1 to {max_history} item tokens (strings)",
        "exclude_valid": "give true or false",
        "details": "give true or false",
    }
    # an unknown field says more than the missing one it stands for
    error = sorted(errors, key=lambda e: e.get("type") != "extra_forbidden")[0]
    loc = [p for p in error.get("loc", ()) if p not in ("body", "query", "path")]
    if len(loc) > 2 and isinstance(loc[1], int):
        loc = loc[:2]  # items.3.str (a union member's tag) -> items[3]
    name = str(loc[0]) if loc else "body"
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "the request body"
    kind = error.get("type", "")
    if kind == "json_invalid":
        return (
            "the request body is not valid JSON "
            f"({error.get('ctx', {}).get('error', 'syntax error')}); send e.g. "
            '{"items": ["i1", "i2"], "k": 20} with Content-Type: application/json.'
        )
    if kind == "missing":
        example = 'send a JSON object such as {"items": ["i1", "i2"], "k": 20}'
        return f"{where} is missing; {hints.get(name, example)}."
    if kind == "extra_forbidden":
        return f"unknown field {name!r} in the request body; it takes items, k and details."
    if name == "body":
        return 'the request body must be a JSON object such as {"items": ["i1", "i2"], "k": 20}.'
    value = error.get("input")
    if error.get("loc", ("",))[0] in ("query", "path"):
        shown = str(value)  # as typed in the URL
    elif isinstance(value, (dict, list)) and len(str(value)) > 60:
        shown = f"a {type(value).__name__}"
    else:
        shown = json.dumps(value)
    return f"{where}={shown}: {error.get('msg', 'invalid value')}; {hints.get(name, 'see /openapi.json')}."


class _Requests:
    """ASGI middleware: a request body above ``limit`` bytes is refused with 413 (read before the
    app sees it, chunked or not), and a body is read as JSON whatever Content-Type the client
    sent (``curl -d`` sends a form type)."""

    def __init__(self, app: Any, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"content-type"]
        scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > self.limit:
                from starlette.responses import JSONResponse

                response = JSONResponse(
                    {"detail": f"the request body is larger than {self.limit} bytes; send at most "
                     "the accepted number of item tokens (GET /model: limits.max_history)."},
                    status_code=413,
                )
                await response(scope, receive, send)
                return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)




def create_app(service: Service) -> Any:
    """The FastAPI application of ``service``. (This module has no ``from __future__ import
    annotations``: FastAPI reads the endpoints' annotations, which name local classes.)"""
    from typing import Annotated

    from fastapi import FastAPI, Query, Request
    from fastapi import Path as PathParam
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
    from starlette.exceptions import HTTPException as StarletteHTTPException

    max_k, max_history = service.max_k, service.max_history

    class ItemDetail(BaseModel):
        item: str
        title: str | None = Field(description="from the dataset's .item file")
        image: str | None = Field(description="URL of the item's picture")
        shares: dict[str, float] | None = Field(description="the gate's share of each modality")
        train_interactions: int

    class RankedList(BaseModel):
        items: list[str] = Field(description="item tokens, best first")
        scores: list[float] = Field(description="the model's scores (cosine for similar items)")
        details: list[ItemDetail] | None = Field(None, description="with details=true")

    class UserList(RankedList):
        user: str
        k: int
        excluded: str

    class NewUserList(RankedList):
        history: list[str] = Field(description="the history's items, each once (all left out of the list)")
        unused: list[str] = Field(description="history items the model has no vector for (cold items of an ID-only model), not folded in")
        k: int
        fold_in: str

    class SimilarList(RankedList):
        item: str
        k: int

    class NewUser(BaseModel):
        model_config = ConfigDict(extra="forbid")
        items: list[StrictStr | StrictInt] = Field(
            description=f"item tokens the new user interacted with (1 to {max_history})"
        )
        k: StrictInt = Field(20, description=f"length of the list, 1 to {max_k}")
        details: bool = Field(False, description="add titles, pictures and gate shares")

    class Error(BaseModel):
        detail: str

    errors = {404: {"model": Error}, 422: {"model": Error}}
    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        service.batcher.close()

    app = FastAPI(
        title=f"recbole-rlmm: {service.model_name} on {service.dataset_name}",
        description="Recommendations of a trained recbole-rlmm checkpoint. Every error is "
        '`{"detail": "..."}` with a 4xx status.',
        version=_version(),
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(_Requests)

    @app.exception_handler(RequestError)
    async def _refused(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(InferenceError)
    async def _inference(_: Request, exc: InferenceError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc.errors(), max_k, max_history)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such endpoint; see /openapi.json (or /docs) for the API."
        elif exc.status_code == 405:
            detail = "this endpoint does not take that method; see /openapi.json for the API."
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    K = Annotated[int, Query(ge=1, le=max_k, description=f"list length, 1 to {max_k}")]
    Details = Annotated[bool, Query(description="add titles, pictures and gate shares")]

    @app.get("/health", summary="Liveness, and how many lists were scored in how many batches")
    async def health() -> dict[str, Any]:
        batcher = service.batcher
        return {"status": "ok", "model": service.model_name, "dataset": service.dataset_name,
                "scored": batcher.scored, "batches": batcher.batches}

    @app.get("/model", summary="The model, its data, content, gate and metrics at training")
    async def model() -> dict[str, Any]:
        return service.model_info()

    @app.get("/users/{user}/recommendations", response_model=UserList, responses=errors,
             summary="Top K for a user seen in training")
    async def user_recommendations(
        user: Annotated[str, PathParam(description="raw user token")],
        k: K = 20,
        exclude_valid: Annotated[bool, Query(description="also leave out validation items")] = False,
        details: Details = False,
    ) -> JSONResponse:
        uid = service.user_id(user)
        ids, values = await service.batcher.submit(Job("known", uid, k, exclude_valid))
        excluded = "training and validation items" if exclude_valid else "training items"
        return JSONResponse({"user": user, "k": k, "excluded": excluded, **service.ranked(ids, values, details)})

    @app.post("/recommendations", response_model=NewUserList, responses=errors,
              summary="Top K for a user not in training, folded in from their items")
    async def new_user_recommendations(body: NewUser) -> JSONResponse:
        k = service.check_k(body.k)
        history = service.history_ids(body.items)
        ids, values = await service.batcher.submit(Job("new", history, k))
        tokens = [service.item_tokens[i - 1] for i in history.tolist()]
        return JSONResponse({
            "history": tokens,
            "unused": [t for t, i in zip(tokens, history.tolist()) if not service.has_vector[i]],
            "k": k,
            "fold_in": service.foldin.method,
            **service.ranked(ids, values, body.details),
        })

    @app.get("/items/{item}/similar", response_model=SimilarList, responses=errors,
             summary="Items closest to an item (cosine of the item vectors)")
    async def similar(
        item: Annotated[str, PathParam(description="raw item token")], k: K = 20, details: Details = False
    ) -> JSONResponse:
        iid = service.item_id(item)
        service.similar_check(iid, item)
        ids, values = await service.batcher.submit(Job("similar", iid, k))
        return JSONResponse({"item": item, "k": k, **service.ranked(ids, values, details)})

    Limit = Annotated[int, Query(ge=1, le=100, description="at most this many, 1 to 100")]

    @app.get("/users", summary="User tokens starting with q (for the page)")
    async def users(q: str = "", limit: Limit = 20) -> dict[str, Any]:
        return {"users": service.search_users(q, limit), "total": service.rec.n_users}

    @app.get("/users/{user}/history", responses=errors, summary="A known user's training items")
    async def history(user: str, limit: Annotated[int, Query(ge=1, le=10000)] = 50,
                      details: Details = False) -> JSONResponse:
        uid = service.user_id(user)
        row = service.train[uid]
        ids = row.indices[:limit].astype(np.int64)
        return JSONResponse({"user": user, "total": int(row.nnz), **service.ranked(ids, None, details)})

    @app.get("/items", summary="Search items by title (for the page)")
    async def items(q: str = "", limit: Limit = 20, details: Details = True) -> JSONResponse:
        ids = np.asarray(service.search_items(q, limit), dtype=np.int64)
        return JSONResponse(service.ranked(ids, None, details))

    @app.get("/items/{item}", responses=errors, summary="One item's title, picture and gate shares")
    async def item_detail(item: str) -> dict[str, Any]:
        return service.detail(service.item_id(item))

    @app.get("/items/{item}/image", responses=errors, summary="The item's picture")
    async def image(item: str) -> FileResponse:
        service.item_id(item)
        path = service.catalog.image(item)
        if path is None:
            raise RequestError(404, f"item {item!r} has no picture in the images folder.")
        return FileResponse(path, media_type=IMAGE_TYPES[path.suffix.lower()],
                            headers={"Cache-Control": "max-age=3600"})

    @app.get("/", include_in_schema=False)
    async def page() -> RedirectResponse:
        return RedirectResponse("/web/index.html")

    app.mount("/web", StaticFiles(directory=WEB), name="web")
    return app


def _print(line: str) -> None:
    print(line, flush=True)


def _version() -> str:
    return str(__version__)


# ---------------------------------------------------------------------------- running
def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), or a :class:`ServeError`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"--host {host!r} is not an address of this machine ({exc.strerror}).") from None
    family, kind, proto, _, address = infos[0]
    # proto IPPROTO_TCP: asyncio turns Nagle's algorithm off only on TCP sockets that say so;
    # without it every answer on a kept-alive connection waited about 40 ms for a delayed ACK
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = "is in use" if exc.errno == 98 else f"cannot be used ({exc.strerror})"
        raise ServeError(
            f"port {port} on {host} {reason}; choose another with --port (0: any free port)."
        ) from None
    sock.listen(2048)  # clients that connect while the model loads wait in the backlog
    return sock


def serve(
    checkpoint: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    options: ServeOptions | None = None,
    trust_checkpoint: bool = False,
    changed_data: str = "error",
    device: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> int:
    """Load ``checkpoint`` and serve it until interrupted (the ``serve`` command)."""
    check_installed()
    options = options or ServeOptions()
    options.check()
    if not 0 <= port <= 65535:
        raise ServeError(f"--port {port} is not a port number; give 0 to 65535 (0: any free port).")
    if options.images is not None:  # before the slow load
        check_folder(Path(options.images), "--images")
    sock = bind(host, port)  # before the slow load: a taken port fails at once
    try:
        return _load_and_run(sock, checkpoint, host, options, trust_checkpoint, changed_data, device, echo)
    except KeyboardInterrupt:
        print("recbole-rlmm serve: interrupted while loading the model; nothing was served.", file=sys.stderr)
        return 130
    finally:
        sock.close()


def _load_and_run(
    sock: socket.socket,
    checkpoint: str | os.PathLike[str],
    host: str,
    options: ServeOptions,
    trust_checkpoint: bool,
    changed_data: str,
    device: str | None,
    echo: Callable[[str], None] | None,
) -> int:
    import uvicorn

    rec = Recommender.from_checkpoint(
        checkpoint, trust_checkpoint=trust_checkpoint, changed_data=changed_data, device=device
    )
    service = Service(rec, options)
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), log_level="warning", access_log=False, lifespan="on")
    )
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{sock.getsockname()[1]}"
    (echo or _print)(
        f"serving {service.model_name} on {service.dataset_name} ({rec.n_users} users, "
        f"{rec.n_items} items; fold-in: {service.foldin.method}) at {url}  (page: {url}/, "
        f"API: {url}/docs); Ctrl-C stops"
    )
    server.run(sockets=[sock])  # uvicorn stops gracefully on Ctrl-C
    return 0
