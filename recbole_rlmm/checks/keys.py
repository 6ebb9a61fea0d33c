"""The configuration keys: one table of type, range, default, meaning and readers per key.

:data:`OVERALL_KEYS` are read by every run (ours and RecBole's; RecBole's common keys that
commonly break are included); :data:`MODEL_KEYS` holds each plugin model's own keys. Defaults
are not repeated here: they are read from ``properties/`` (our overall and model yaml, then
RecBole's overall yaml), so the table and the files cannot disagree.

* :func:`check_values` validates every key of the table that a configuration holds (called
  while the configuration is built, before RecBole's own checks, so RecBole never raises on
  a value the table knows); :func:`check_model_keys` does it for one model class (called by
  the models themselves, for users of RecBole's own ``Config``);
* :func:`unread_key_warnings` names keys a user set that no part of the run reads, with the
  closest known key;
* ``python -m recbole_rlmm.checks.keys --markdown [overall|MODEL]`` prints a key table as
  Markdown; ``--write`` regenerates the tables in README.md and docs/CHECKS.md (between
  ``<!-- keys:NAME -->`` and ``<!-- /keys:NAME -->``), which ``tests/test_keys.py`` compares.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recbole_rlmm.config import ConfigError, properties_dir, read_yaml

# choices shared with the models (they import them from here)
FUSIONS: tuple[str, ...] = ("gate", "sum", "concat", "image", "text", "none")
FUSION_STAGES: tuple[str, ...] = ("early", "late")
GATE_TYPES: tuple[str, ...] = ("vector", "scalar")
FEATURE_NORMS: tuple[str, ...] = ("none", "l2", "standard")
AGGREGATIONS: tuple[str, ...] = ("mean", "add")
LEARNERS: tuple[str, ...] = ("adam", "adamw", "sgd", "adagrad", "rmsprop", "sparse_adam")
STATES: tuple[str, ...] = ("info", "debug", "warning", "error", "critical")
REDUCTIONS: tuple[str, ...] = ("pca", "svd")
FEATURE_DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")
KNN_BACKENDS: tuple[str, ...] = ("torch", "faiss", "auto")


@dataclass(frozen=True)
class Key:
    """One configuration key: its kind, allowed values and one-line meaning.

    ``kind``: ``int``, ``float``, ``bool``, ``str``, ``choice``, ``path``, ``off_path`` (a
    folder, or ``~``/``None``/``false`` for off), ``ints`` (an int or a list of ints),
    ``strs`` (a list of strings), ``mapping``, ``metrics``, ``valid_metric``, ``eval_args``,
    ``neg_sample_args``, ``load_col``. ``low``/``high`` bound numbers (``*_open``: strict).
    """

    name: str
    kind: str
    meaning: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False
    ignore_case: bool = False
    default_text: str | None = None

    # ------------------------------------------------------------------ description
    def bounds(self) -> str:
        """``>= 1``, ``> 0``, ``in [0, 1)``; empty without bounds."""
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {_num(self.high)}"
        return ""

    def describe(self) -> str:
        """What the value must be, as a phrase: ``an integer >= 1``, ``one of gate, sum``."""
        bounds = f" {self.bounds()}" if self.bounds() else ""
        text = {
            "int": f"an integer{bounds}",
            "float": f"a number{bounds}",
            "auto_float": f"auto or a number{bounds}",
            "bool": "true or false",
            "str": "a non-empty string",
            "sep": "a non-empty string",
            "choice": "one of " + ", ".join(self.choices),
            "path": "a folder or file path",
            "off_path": "a folder, or ~ (None) for off",
            "ints": f"an integer{bounds} or a list of them",
            "strs": "a list of names",
            "mapping": "a mapping",
            "modalities": "a mapping of modality names to files, e.g. {image: data.image.npy, text: data.text.npy}",
            "metrics": "RecBole metric names, e.g. [Recall, NDCG]",
            "valid_metric": "one of the computed metrics, e.g. Recall@20 (a cut-off of topk)",
            "eval_args": "RecBole's eval_args mapping (split, order, group_by, mode)",
            "neg_sample_args": "a mapping {distribution: uniform|popularity, sample_num: N, ...} or ~",
            "load_col": "a mapping {inter: [columns], item: [...], ...} or ~ (all columns)",
        }[self.kind]
        return text + (" (or ~)" if self.nullable and self.kind not in ("off_path", "neg_sample_args", "load_col") else "")

    def type_text(self) -> str:
        """The "allowed" column of the Markdown tables."""
        short = {
            "int": "int",
            "float": "float",
            "auto_float": "`auto` or float",
            "bool": "bool",
            "str": "str",
            "sep": "str",
            "path": "path",
            "off_path": "path or ~",
            "ints": "int or list of int",
            "strs": "list of str",
            "mapping": "mapping",
            "modalities": "mapping or ~",
            "metrics": "list of metric names",
            "valid_metric": "metric@k among metrics/topk",
            "eval_args": "mapping (RecBole)",
            "neg_sample_args": "mapping or ~",
            "load_col": "mapping or ~",
        }
        if self.kind == "choice":
            text = " \\| ".join(f"`{c}`" for c in self.choices)
        else:
            text = short[self.kind] + (f" {self.bounds()}" if self.bounds() else "")
        return text + (" or ~" if self.nullable and self.kind in ("int", "float", "str", "strs", "mapping", "path") else "")

    # ------------------------------------------------------------------ checking
    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed (None when it is). Keys that depend on other keys
        (``valid_metric``) are checked by :func:`check_values`."""
        if value is None:
            return None if self.nullable or self.kind in ("off_path", "neg_sample_args", "load_col") else "it is not set"
        kind = self.kind
        if kind == "int":
            return self._out_of_bounds(value) if _is_int(value) else "it is not an integer"
        if kind == "float":
            if not _is_number(value):
                return "it is not a number"
            if not math.isfinite(float(value)):
                return "it is not a finite number"
            return self._out_of_bounds(float(value))
        if kind == "auto_float":
            if value == "auto":
                return None
            if not _is_number(value):
                return "it is neither auto nor a number"
            return self._out_of_bounds(float(value))
        if kind == "bool":
            return None if isinstance(value, bool) else "it is not true or false"
        if kind == "str":
            return None if isinstance(value, str) and value.strip() else "it is not a non-empty string"
        if kind == "sep":
            return None if isinstance(value, str) and value else "it is not a non-empty string"
        if kind == "choice":
            text = str(value).lower() if self.ignore_case and isinstance(value, str) else value
            return None if text in self.choices else "it is not one of the choices"
        if kind == "path":
            return None if isinstance(value, str) and value.strip() else "it is not a path"
        if kind == "off_path":
            return None if isinstance(value, (str, bool)) else "it is not a path"
        if kind == "ints":
            values = value if isinstance(value, list) else [value]
            if not values:
                return "the list is empty"
            for v in values:
                if not _is_int(v):
                    return f"{v!r} is not an integer"
                if self._out_of_bounds(v):
                    return f"{v!r} is not {self.bounds()}"
            return None
        if kind == "strs":
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                return "it is not a non-empty list of names"
            return None
        if kind == "mapping":
            return None if isinstance(value, Mapping) else "it is not a mapping"
        if kind == "modalities":
            return None if isinstance(value, Mapping) else "it must map modality names to files"
        if kind == "metrics":
            return _metrics_problem(value)
        if kind == "eval_args":
            return _eval_args_problem(value)
        if kind == "neg_sample_args":
            return _neg_sample_problem(value)
        if kind == "load_col":
            return _load_col_problem(value)
        return None  # valid_metric: needs metrics and topk, see check_values

    def _out_of_bounds(self, value: float) -> str | None:
        low_bad = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        high_bad = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        return f"it is not {self.bounds()}" if low_bad or high_bad else None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- RecBole's metrics


@functools.lru_cache(maxsize=1)
def recbole_metrics() -> dict[str, tuple[str, bool]]:
    """RecBole's metrics: lower-case name -> (class name, reported per cut-off ``@k``)."""
    from recbole.evaluator import metric_types
    from recbole.evaluator.register import metrics_dict
    from recbole.utils import EvaluatorType

    return {
        name: (cls.__name__, metric_types[name] == EvaluatorType.RANKING and name != "gauc")
        for name, cls in metrics_dict.items()
    }


def _metric_suggestion(name: str) -> str:
    known = recbole_metrics()
    close = difflib.get_close_matches(str(name).lower(), list(known), n=1, cutoff=0.6)
    return f" (did you mean {known[close[0]][0]}?)" if close else ""


def _metrics_problem(value: Any) -> str | None:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        return "it is not a list of metric names"
    from recbole.evaluator import metric_types

    known = recbole_metrics()
    for name in names:
        if not isinstance(name, str) or name.lower() not in known:
            return (
                f"RecBole has no metric {name!r}{_metric_suggestion(name)}; its metrics are "
                + ", ".join(cls for cls, _ in known.values())
            )
    if len({metric_types[n.lower()] for n in names}) > 1:
        return "it mixes ranking metrics (Recall, NDCG, ...) with value metrics (AUC, LogLoss, ...), which RecBole cannot evaluate together"
    return None


def valid_metric_problem(valid_metric: Any, metrics: Any, topk: Any) -> str | None:
    """Why ``valid_metric`` is not among the metrics the evaluator computes (None if it is)."""
    if not isinstance(valid_metric, str) or not valid_metric:
        return "it is not a metric name"
    name, at, k = valid_metric.partition("@")
    known = recbole_metrics()
    computed = [m.lower() for m in ([metrics] if isinstance(metrics, str) else metrics or []) if isinstance(m, str)]
    if name.lower() not in known:
        return f"RecBole has no metric {name!r}{_metric_suggestion(name)}"
    if name.lower() not in computed:
        return f"{known[name.lower()][0]} is not in metrics ({', '.join(map(str, computed))}); add it there or pick one of them"
    cutoffs = topk if isinstance(topk, list) else [topk]
    if known[name.lower()][1]:
        if not at or not k.isdigit():
            return f"{known[name.lower()][0]} is reported per cut-off: write it as {known[name.lower()][0]}@k with k in topk {cutoffs}"
        if int(k) not in cutoffs:
            return f"cut-off {k} is not in topk {cutoffs}; add {k} to topk or pick one of its cut-offs"
    elif at:
        return f"{known[name.lower()][0]} has no cut-off; write it without @{k}"
    return None


# --------------------------------------------------------------------------- structured values

_EVAL_ARGS = ("split", "order", "group_by", "mode")
_MODE = re.compile(r"^(full|labeled|uni\d+|pop\d+)$")


def _eval_args_problem(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return "it is not a mapping"
    for entry in value:
        if entry not in _EVAL_ARGS:
            close = difflib.get_close_matches(str(entry), _EVAL_ARGS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"it has an unknown entry {entry!r}{hint}; its entries are {', '.join(_EVAL_ARGS)}"
    mode = value.get("mode", "full")
    modes = mode.values() if isinstance(mode, Mapping) else [mode]
    if isinstance(mode, Mapping) and set(mode) - {"valid", "test"}:
        return f"mode {mode!r} may only have the entries valid and test"
    for m in modes:
        if not isinstance(m, str) or not _MODE.match(m):
            return f"mode {m!r} is not one of full, labeled, uniN, popN (e.g. uni100)"
    if value.get("order", "RO") not in ("RO", "TO"):
        return f"order {value.get('order')!r} is not RO (random) or TO (by time)"
    if value.get("group_by", "user") not in ("user", "none", None):
        return f"group_by {value.get('group_by')!r} is not user or none"
    split = value.get("split", {"RS": [0.8, 0.1, 0.1]})
    if split is not None:
        if not isinstance(split, Mapping) or len(split) != 1:
            return f"split {split!r} must be one of {{RS: [0.8, 0.1, 0.1]}}, {{LS: valid_and_test}}"
        (how, arg), = split.items()
        if how == "RS":
            if not isinstance(arg, list) or not arg or not all(_is_number(x) and x >= 0 for x in arg) or sum(arg) <= 0:
                return f"split RS {arg!r} must be a list of non-negative ratios, e.g. [0.8, 0.1, 0.1]"
        elif how == "LS":
            if arg not in ("valid_and_test", "test_only"):
                return f"split LS {arg!r} must be valid_and_test or test_only"
        elif how != "benchmark_filename":
            return f"split {how!r} is not RS (ratios) or LS (leave one out)"
    return None


_NEG_SAMPLE = ("distribution", "sample_num", "alpha", "dynamic", "candidate_num")


def _neg_sample_problem(value: Any) -> str | None:
    if value is None or value == "None":
        return None
    if not isinstance(value, Mapping):
        return "it is not a mapping"
    for entry in value:
        if entry not in _NEG_SAMPLE:
            close = difflib.get_close_matches(str(entry), _NEG_SAMPLE, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"it has an unknown entry {entry!r}{hint}; its entries are {', '.join(_NEG_SAMPLE)}"
    distribution = value.get("distribution", "uniform")
    if distribution not in ("uniform", "popularity", "none", "None", None):
        return f"distribution {distribution!r} is not uniform, popularity or none"
    if distribution in ("uniform", "popularity"):
        num = value.get("sample_num", 1)
        if not _is_int(num) or num < 1:
            return f"sample_num {num!r} is not an integer >= 1"
    return None


def _load_col_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return "it is not a mapping such as {inter: [user_id, item_id]}"
    for source, columns in value.items():
        if columns == "*":
            continue
        if not isinstance(columns, list) or not all(isinstance(c, str) and c for c in columns):
            return f"load_col.{source} {columns!r} is not a list of column names (or '*')"
    return None


# --------------------------------------------------------------------------- the table

#: Keys every run reads (ours and RecBole's common keys), in the README's order.
OVERALL_KEYS: tuple[Key, ...] = (
    # data
    Key("data_path", "path", "datasets live in `<data_path>/<dataset>/`"),
    Key("USER_ID_FIELD", "str", "user column of the atomic files", nullable=True),
    Key("ITEM_ID_FIELD", "str", "item column of the atomic files", nullable=True),
    Key("load_col", "load_col", "columns read per atomic file (`~`: every column)"),
    Key("benchmark_filename", "strs", "predefined split files `<dataset>.<name>.inter` (train, valid, test)", nullable=True),
    Key("field_separator", "sep", "column separator of the atomic files"),
    Key("seq_separator", "sep", "separator inside `token_seq`/`float_seq` cells"),
    Key("modalities", "modalities", "modality name -> feature file (see *Feature files*); set per dataset", nullable=True),
    Key("item_index_file", "str", "row order of the feature files (default `<dataset>.item_index`)", nullable=True),
    Key(
        "max_unknown_feature_rows", "float",
        "largest share of a feature file's rows whose item is not in the dataset before the run stops (1: never)",
        low=0.0, high=1.0,
    ),
    # cost of content (docs/RESULTS.md, "Performance")
    Key(
        "feature_dim", "int",
        "reduce every modality wider than this to its first `feature_dim` principal components at load time "
        "(computed once, cached); `~`: raw features",
        low=1, nullable=True,
    ),
    Key(
        "feature_reduction", "choice",
        "`pca`: PCA of the standardised features; `svd`: truncated SVD of the raw features (keeps their cosine geometry)",
        choices=REDUCTIONS,
    ),
    Key(
        "feature_cache_dir", "path",
        "where reduced features are cached (`~`: `<data_path>/<dataset>/_cache/features`)",
        nullable=True,
    ),
    Key(
        "feature_dtype", "choice",
        "precision the features are kept in; `float16`/`bfloat16` halve their memory (float16 is widened block by "
        "block for the projection; bfloat16 is projected in bfloat16)",
        choices=FEATURE_DTYPES,
    ),
    Key(
        "knn_backend", "choice",
        "frozen kNN item graphs: `torch` (blocked cosine matmul), `faiss` (exact inner-product index; same "
        "neighbours up to ties), `auto` (faiss when installed)",
        choices=KNN_BACKENDS,
    ),
    # training
    Key("epochs", "int", "epoch budget (early stopping usually ends sooner)", low=1),
    Key("train_batch_size", "int", "interactions per training batch", low=1),
    Key("learner", "choice", "optimizer", choices=LEARNERS, ignore_case=True),
    Key("learning_rate", "float", "optimizer step size", low=0.0, low_open=True),
    Key("weight_decay", "float", "optimizer L2 penalty", low=0.0),
    Key("train_neg_sample_args", "neg_sample_args", "RecBole's training negative sampler", default_text="uniform, 1 negative"),
    Key("cold_items_as_negatives", "bool", "`false`: items only in valid/test (cold items) are never training negatives"),
    Key("eval_step", "int", "evaluate on validation every this many epochs", low=1),
    Key("stopping_step", "int", "patience, in evaluations without improvement of `valid_metric`", low=1),
    Key("seed", "int", "random seed"),
    Key("reproducibility", "bool", "deterministic torch kernels"),
    Key("state", "choice", "log level", choices=STATES, ignore_case=True),
    Key("show_progress", "bool", "RecBole's progress bars (the command line turns them on in a terminal)"),
    Key("checkpoint_dir", "path", "best model of each run (must be a writable folder)"),
    Key("log_dir", "off_path", "run logs `<log_dir>/<model>/<run>.log`; `~`: console only"),
    Key("tensorboard_dir", "off_path", "tensorboard events, one folder per run; `~`: none"),
    # evaluation
    Key(
        "eval_args", "eval_args", "RecBole's split, order, grouping and ranking mode",
        default_text="full ranking, per-user random 8:1:1 unless `benchmark_filename`",
    ),
    Key("metrics", "metrics", "metrics computed on validation and test"),
    Key("topk", "ints", "cut-offs of the ranking metrics (at most the number of items for full ranking)", low=1),
    Key("valid_metric", "valid_metric", "metric that picks the best epoch and stops early"),
    Key(
        "eval_batch_size", "int",
        "scores per evaluation batch; full ranking scores users x items, so below the number of items it is one user per batch: for large catalogues set e.g. 16777216",
        low=1,
    ),
)

_EMB = Key("embedding_size", "int", "d: size of the ID embeddings", low=1)
_NORM = Key("feature_norm", "choice", "per-modality scaling of the raw features", choices=FEATURE_NORMS)

#: Each plugin model's own keys (defaults: ``properties/model/<Model>.yaml``).
MODEL_KEYS: dict[str, tuple[Key, ...]] = {
    "RLMultimodalRec": (
        Key("embedding_size", "int", "d: ID embeddings and every modality projection", low=1),
        Key("n_layers", "int", "LightGCN propagation steps", low=0),
        Key("reg_weight", "float", "L2 on the batch's layer-0 embeddings (as RecBole's LightGCN)", low=0.0),
        Key(
            "fusion", "choice",
            "`gate`, `sum`, `concat`, `image`, `text` (one modality), `none` (ID only; with "
            "`edge_dropout: 0` it is RecBole's LightGCN exactly)",
            choices=FUSIONS,
        ),
        Key("gate_type", "choice", "`vector`: one gate value per dimension; `scalar`: one per item", choices=GATE_TYPES),
        Key(
            "fusion_stage", "choice",
            "`early`: content added to the item's layer-0 embedding and propagated; `late`: added to "
            "the propagated embedding",
            choices=FUSION_STAGES,
        ),
        Key("feature_norm", "choice", "per modality: `standard` (per-dimension standardisation, then unit rows), `l2`, `none`", choices=FEATURE_NORMS),
        Key(
            "feature_dim", "int",
            "modalities wider than this are reduced at load time to their first `feature_dim` principal components "
            "(`feature_reduction`; computed once, cached); `~`: raw features",
            low=1, nullable=True,
        ),
        Key("content_scale", "float", "weight of the fused content next to the ID embedding", low=0.0),
        Key(
            "item_graph_k", "int",
            "extension: >0 adds a frozen kNN item-item graph per modality; each item mixes its "
            "modalities' neighbourhoods with its own gate shares",
            low=0,
        ),
        Key("item_graph_weight", "float", "weight of that graph's smoothed item embeddings", low=0.0),
        Key(
            "edge_dropout", "float",
            "extension: FREEDOM's degree-sensitive pruning of this share of user-item edges, resampled every epoch",
            low=0.0, high=1.0, high_open=True,
        ),
        Key("align_weight", "float", "extension: InfoNCE aligning each batch item's gated content with its final vector (0: off)", low=0.0),
        Key("align_temperature", "float", "temperature of that InfoNCE", low=0.0, low_open=True),
        Key(
            "content_check", "bool",
            "do no harm: before training, drop every modality whose content does not predict held-out "
            "(validation) interactions better than chance (docs/MODELS.md)",
        ),
        Key(
            "cold_borrow_k", "int",
            "cold items (no training interaction): each borrows the mean final vector of its k most "
            "content-similar warm items per modality, mixed by its gate shares, plus its own content (0: no borrowing; "
            "a cold item keeps what the graph gives it)",
            low=0,
        ),
        Key(
            "cold_offset", "auto_float",
            "score offset of cold items against warm ones; `auto`: chosen on validation by our runner at every "
            "evaluation (best `valid_metric`); until then (and in RecBole's own trainer) cold items rank last",
        ),
    ),
    "VBPR": (
        Key("embedding_size", "int", "d: size of the ID part and of the projected content part (2d in all)", low=1),
        Key("reg_weight", "float", "EmbLoss weight on the batch's user/item vectors", low=0.0),
        _NORM,
    ),
    "MMGCN": (
        Key("embedding_size", "int", "d: ID embedding and output size of every layer", low=1),
        Key("n_layers", "int", "graph-convolution layers per modality branch", low=1),
        Key("reg_weight", "float", "weight of the squared ID embeddings and user preferences", low=0.0),
        Key("dim_latent", "int", "MLP size applied to the features before layer 0 (0: raw features)", low=0),
        Key("concat", "bool", "combine layer as LeakyReLU(G [h ; x_hat]) (false: h + x_hat)"),
        Key("aggr", "choice", "neighbour aggregation", choices=AGGREGATIONS),
        _NORM,
    ),
    "LATTICE": (
        _EMB,
        Key("feat_embed_dim", "int", "projection size for the learned item graph", low=1),
        Key("knn_k", "int", "neighbours kept per item in every kNN graph (itself included)", low=1),
        Key("lambda_coeff", "float", "weight of the frozen raw-feature graph next to the learned one", low=0.0, high=1.0),
        Key("n_layers", "int", "item-graph propagation steps", low=0),
        Key("n_ui_layers", "int", "LightGCN steps on the user-item graph", low=0),
        Key("reg_weight", "float", "L2 on the batch's final vectors", low=0.0),
        _NORM,
    ),
    "FREEDOM": (
        Key("embedding_size", "int", "d of the ID embeddings and of the feature projections", low=1),
        Key("knn_k", "int", "neighbours per item in the frozen kNN graph (itself included)", low=1),
        Key("mm_image_weight", "float", "weight of the image kNN graph; the other modalities share the rest", low=0.0, high=1.0),
        Key("n_mm_layers", "int", "propagation steps on the frozen item-item graph", low=0),
        Key("n_ui_layers", "int", "LightGCN steps on the (pruned) user-item graph", low=0),
        Key("dropout", "float", "share of user-item edges pruned each epoch (degree-sensitive)", low=0.0, high=1.0, high_open=True),
        Key("reg_weight", "float", "weight of the auxiliary BPR loss on projected raw features (0: off)", low=0.0),
        _NORM,
    ),
}
del _EMB

#: Keys that RLMultimodalRec once had; a run that sets one is told it is ignored and why.
REMOVED_KEYS: dict[str, str] = {
    "id_dropout": "cold-start training (it lost on calibrated validation across cold shares; docs/RESULTS.md, Cold shares)",
    **dict.fromkeys(("user_graph_k", "user_graph_weight"), "the DRAGON user graph"),
    **dict.fromkeys(("cl_weight", "cl_noise"), "the XSimGCL contrast"),
    "cl_temperature": "the XSimGCL contrast; the alignment loss's temperature is now align_temperature",
    "item_graph_layers": "deeper item graphs",
    "item_graph_degree_power": "the degree-aware item-graph weight",
    "learn_content_scale": "the learned content scale",
    "content_bpr_weight": "the auxiliary content BPR",
    "modality_dropout": "modality dropout",
    "proj_reg_weight": "the projection L2",
}

#: Keys RecBole 1.2.1's code reads that none of its yaml files or argument lists names
#: (``tests/test_keys.py`` checks this list against the installed RecBole's source).
RECBOLE_CODE_KEYS: frozenset[str] = frozenset(
    {
        "CROP_ITEM_SEQ", "CROP_ITEM_SEQ_LEN", "INVERSE_ITEM_SEQ", "MASK_INDEX", "MASK_ITEM_SEQ",
        "MODEL_INPUT_TYPE", "MODEL_TYPE", "NEG_ITEMS", "POS_ITEMS", "REORDER_ITEM_SEQ", "cin",
        "contrast", "dataset", "device", "encoding", "eta", "eval_type", "feature_num",
        "has_residual", "local_rank", "model", "norm", "sim", "single_spec", "tail_ratio",
        "test_neg_sample_args", "token_num_threshold", "use_filter", "valid_neg_sample_args",
        "world_size", "xgb_early_stopping_rounds", "nproc", "ip", "port", "offset", "config_files",
    }
)

#: Keys our own code reads besides the table's (``tests/test_keys.py`` checks our source).
OUR_CODE_KEYS: frozenset[str] = frozenset({"train_stage", "pretrain_epochs", "save_step", "verbose"})


def model_keys(model: str) -> tuple[Key, ...]:
    """The table's keys of plugin model ``model`` (empty for RecBole's built-ins)."""
    return MODEL_KEYS.get(model, ())


def table(model: str | None = None) -> dict[str, Key]:
    """Key name -> :class:`Key`: the overall keys, plus ``model``'s own (which win)."""
    keys = {k.name: k for k in OVERALL_KEYS}
    if model:
        keys.update({k.name: k for k in model_keys(model)})
    return keys


# --------------------------------------------------------------------------- defaults


@functools.lru_cache(maxsize=1)
def _recbole_properties() -> Path:
    import recbole

    return Path(recbole.__file__).parent / "properties"


def default_of(key: str, model: str | None = None) -> Any:
    """The default of ``key``: our model yaml, our overall yaml, then RecBole's overall yaml."""
    from recbole_rlmm.config import model_defaults

    for values in (
        model_defaults(model) if model else {},
        read_yaml(properties_dir() / "overall.yaml"),
        read_yaml(_recbole_properties() / "overall.yaml"),
        read_yaml(_recbole_properties() / "dataset" / "sample.yaml"),
    ):
        if key in values:
            return values[key]
    return None


def format_value(value: Any) -> str:
    """A value as written in yaml: ``~``, ``true``, ``0.0001``, ``[10, 20, 50]``, ``{inter: [user_id]}``."""
    if value is None:
        return "~"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _num(value) if value.is_integer() else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and (not value.strip() or value != value.strip()):
        return repr(value).replace("'", '"')  # a separator: "\t", " "
    return str(value)


# --------------------------------------------------------------------------- value checks


def check_values(
    values: Mapping[str, Any],
    model: str | None = None,
    source: Callable[[str], str] | None = None,
    keys: Iterable[str] | None = None,
) -> None:
    """Raise :class:`~recbole_rlmm.config.ConfigError` for the first key of the table (overall
    plus ``model``'s own) whose value in ``values`` is not allowed; keys ``values`` lacks are
    skipped. ``source(key)`` says where a value came from (``the command line``, a file...).
    ``keys`` limits the check to those keys."""
    spec = table(model)
    names = [k for k in (keys if keys is not None else spec) if k in spec and k in values]
    for name in names:
        key = spec[name]
        value = values[name]
        why = key.problem(value)
        if why is None and key.kind == "valid_metric" and value is not None:
            why = valid_metric_problem(value, values.get("metrics"), values.get("topk"))
        if why is not None:
            raise ConfigError(_message(key, value, why, model, source))


def _message(key: Key, value: Any, why: str, model: str | None, source: Callable[[str], str] | None) -> str:
    where = f" ({source(key.name)})" if source else ""
    owner = model if model and any(k.name == key.name for k in model_keys(model)) else None
    meaning = (f"{owner}: " if owner else "") + key.meaning.replace("`", "")
    default = default_of(key.name, owner)
    hint = f"; default {format_value(default)}" if default is not None and key.default_text is None else ""
    return (
        f"config key {key.name}={value!r}{where} is invalid: {why}. Set {key.name} to "
        f"{key.describe()} ({meaning}{hint})."
    )


def check_model_keys(config: Any, model_class: type | str) -> None:
    """Validate ``model_class``'s own keys (the table's) in ``config`` (any RecBole ``Config``
    or mapping). Models call this in ``__init__``, so RecBole's own ``Config`` gets the same
    messages as our runner."""
    name = model_class if isinstance(model_class, str) else model_class.__name__
    names = [k.name for k in model_keys(name)]
    values = {k: config[k] for k in names if k in config}
    check_values(values, name, keys=names)


# --------------------------------------------------------------------------- unread keys


@functools.lru_cache(maxsize=1)
def _recbole_key_sets() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """(keys every RecBole run may read, {RecBole model: keys of its yaml})."""
    from recbole.utils import argument_list

    root = _recbole_properties()
    general: set[str] = set(RECBOLE_CODE_KEYS)
    for name in ("general_arguments", "training_arguments", "evaluation_arguments", "dataset_arguments"):
        general |= set(getattr(argument_list, name, []))
    for path in [root / "overall.yaml", *sorted((root / "dataset").glob("*.yaml")), *sorted((root / "quick_start_config").glob("*.yaml"))]:
        values = read_yaml(path)
        if path.name not in ("url.yaml", "kg_url.yaml"):  # those list dataset names, not keys
            general |= set(values)
    per_model = {path.stem: frozenset(read_yaml(path)) for path in sorted((root / "model").glob("*.yaml"))}
    return frozenset(general), per_model


@functools.lru_cache(maxsize=1)
def _our_key_sets() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    root = properties_dir()
    general = set(read_yaml(root / "overall.yaml")) | {k.name for k in OVERALL_KEYS} | OUR_CODE_KEYS
    for path in sorted((root / "dataset").glob("*.yaml")):
        general |= set(read_yaml(path))
    per_model = {
        name: frozenset({k.name for k in keys} | set(read_yaml(root / "model" / f"{name}.yaml")))
        for name, keys in MODEL_KEYS.items()
    }
    return frozenset(general), per_model


def general_keys() -> frozenset[str]:
    """Keys any run may read, whatever the model."""
    return _recbole_key_sets()[0] | _our_key_sets()[0]


def keys_of(model: str) -> frozenset[str]:
    """Keys read by ``model`` besides the general ones (its table entries / yaml)."""
    return _our_key_sets()[1].get(model) or _recbole_key_sets()[1].get(model) or frozenset()


def readers_of(key: str) -> list[str]:
    """Models (ours first, then RecBole's) whose own keys include ``key``."""
    ours = [m for m, keys in _our_key_sets()[1].items() if key in keys]
    theirs = [m for m, keys in _recbole_key_sets()[1].items() if key in keys]
    return ours + theirs


def closest_key(key: str, model: str | None = None) -> str | None:
    """The known key ``key`` most probably means (case-insensitive equal first), or None."""
    candidates = sorted(general_keys() | (keys_of(model) if model else frozenset()))
    everything = sorted(set(candidates) | {k for m in _our_key_sets()[1].values() for k in m})
    for pool in (candidates, everything):
        for known in pool:
            if known.lower() == key.lower():
                return known
    for pool in (candidates, everything):
        close = difflib.get_close_matches(key, pool, n=1, cutoff=0.75)
        if close:
            return close[0]
    return None


def unread_key_warnings(user_keys: Mapping[str, str], model: str) -> list[str]:
    """One warning per key the user set (``{key: where}``) that no part of a run of
    ``model`` reads: removed options, other models' keys, and unknown keys with the closest
    known key."""
    lines = []
    general = general_keys()
    own = keys_of(model)
    for key, where in user_keys.items():
        if key in general or key in own:
            continue
        if key in REMOVED_KEYS:
            lines.append(
                f"config key {key!r} ({where}) is ignored: {REMOVED_KEYS[key]} was removed from "
                "RLMultimodalRec (docs/MODELS.md, 'Removed options')."
            )
            continue
        readers = readers_of(key)
        if readers:
            shown = ", ".join(readers[:4]) + (", ..." if len(readers) > 4 else "")
            lines.append(f"config key {key!r} ({where}) is not read by {model} (it is a key of {shown}); it is ignored.")
            continue
        close = closest_key(key, model)
        hint = f" Did you mean {close!r}?" if close else ""
        lines.append(
            f"config key {key!r} ({where}) is not read by any part of the run (neither "
            f"recbole-rlmm nor RecBole knows it); it is ignored.{hint}"
        )
    return lines


def user_key_sources(
    config_file_list: Sequence[str] | None,
    config_dict: Mapping[str, Any] | None,
    dataset_yaml: str | Path | None = None,
) -> dict[str, str]:
    """Every key the user set -> where: the dataset folder's yaml, a config file, config_dict
    or the command line (the last one that sets a key wins, as in RecBole)."""
    from recbole_rlmm.config import _command_line

    out: dict[str, str] = {}
    if dataset_yaml is not None and Path(dataset_yaml).is_file():
        out.update(dict.fromkeys(read_yaml(dataset_yaml), str(dataset_yaml)))
    for file in config_file_list or []:
        out.update(dict.fromkeys(read_yaml(file), str(file)))
    out.update(dict.fromkeys(config_dict or {}, "config_dict/--set"))
    out.update(dict.fromkeys(_command_line(), "command line"))
    return out


# --------------------------------------------------------------------------- Markdown


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
    return "\n".join(lines) + "\n"


#: Files holding generated tables, relative to the repository root.
GENERATED_IN: tuple[str, ...] = ("README.md", "docs/CHECKS.md")
_BLOCK = re.compile(r"(<!-- keys:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /keys:(?P=name) -->)", re.S)


def regenerate(text: str) -> str:
    """``text`` with every ``<!-- keys:NAME -->`` block replaced by :func:`markdown` (NAME)."""
    return _BLOCK.sub(lambda m: m.group(1) + markdown(m.group("name")) + m.group(4), text)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m recbole_rlmm.checks.keys", description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", nargs="?", const="overall", metavar="TABLE", help="print a table: overall or a model")
    parser.add_argument("--write", action="store_true", help=f"regenerate the tables in {', '.join(GENERATED_IN)}")
    args = parser.parse_args(argv)
    if args.write:
        root = Path(__file__).resolve().parents[2]
        for rel in GENERATED_IN:
            path = root / rel
            path.write_text(regenerate(path.read_text(encoding="utf-8")), encoding="utf-8")
            print(f"regenerated the key tables in {path}")
    if args.markdown or not args.write:
        sys.stdout.write(markdown(args.markdown or "overall"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
