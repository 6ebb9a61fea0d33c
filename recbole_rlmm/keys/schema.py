"""The configuration keys, each declared once: type, allowed values, default and meaning.

:data:`OVERALL_KEYS` are read by every run (ours and RecBole's common keys; RecBole's own
defaults are kept where we have none: ``default=RECBOLE``); :data:`MODEL_KEYS` holds each plugin
model's own keys. Everything else is derived from these declarations: our runner's defaults
(:func:`our_defaults`, :func:`model_defaults`), the files ``properties/overall.yaml`` and
``properties/model/<Model>.yaml`` and the key tables of docs/ (written by
``python -m recbole_rlmm.keys.docs --write``; ``tests/test_keys.py`` fails when they drift), and
the value checks (:mod:`recbole_rlmm.keys.values`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recbole_rlmm.keys.choices import (
    AGGREGATIONS,
    FEATURE_DTYPES,
    FEATURE_NORMS,
    FUSION_STAGES,
    FUSIONS,
    GATE_TYPES,
    KNN_BACKENDS,
    LEARNERS,
    REDUCTIONS,
    STATES,
)
from recbole_rlmm.keys.sources import read_yaml


class _RecBoleDefault:
    """The default of a key we leave to RecBole (its ``properties/overall.yaml``)."""

    def __repr__(self) -> str:
        return "RECBOLE"


#: ``Key.default`` of a key we do not set: RecBole's default applies, or none (``modalities``: per dataset).
RECBOLE: Any = _RecBoleDefault()


@dataclass(frozen=True)
class Key:
    """One configuration key: its kind, allowed values and one-line meaning.

    ``kind``: ``int``, ``float``, ``bool``, ``str``, ``choice``, ``path``, ``off_path`` (a
    folder, or ``~``/``None``/``false`` for off), ``ints`` (an int or a list of ints),
    ``strs`` (a list of strings), ``mapping``, ``metrics``, ``valid_metric``, ``eval_args``,
    ``neg_sample_args``, ``load_col``. ``low``/``high`` bound numbers (``*_open``: strict).
    ``default``: our default (:data:`RECBOLE`: RecBole's); ``default_text`` replaces it in the
    tables where a value says too little.
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
    default: Any = RECBOLE

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
            "names": "a list of names (may be empty)",
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
            "names": "list of str",
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
        return text + (" or ~" if self.nullable and self.kind in ("int", "float", "str", "strs", "names", "mapping", "path") else "")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# --------------------------------------------------------------------------- the table

#: Keys every run reads (ours and RecBole's common keys), in the README's order.
OVERALL_KEYS: tuple[Key, ...] = (
    # data
    Key("data_path", "path", "datasets live in `<data_path>/<dataset>/`", default='dataset/'),
    Key("USER_ID_FIELD", "str", "user column of the atomic files", nullable=True, default='user_id'),
    Key("ITEM_ID_FIELD", "str", "item column of the atomic files", nullable=True, default='item_id'),
    Key("load_col", "load_col", "columns read per atomic file (`~`: every column)", default={'inter': ['user_id', 'item_id']}),
    Key("benchmark_filename", "strs", "predefined split files `<dataset>.<name>.inter` (train, valid, test)", nullable=True, default=RECBOLE),
    Key("field_separator", "sep", "column separator of the atomic files", default=RECBOLE),
    Key("seq_separator", "sep", "separator inside `token_seq`/`float_seq` cells", default=RECBOLE),
    Key("modalities", "modalities", "modality name -> feature file (see *Feature files*); set per dataset", nullable=True, default=RECBOLE),
    Key(
        "item_images", "path",
        "`serve`'s page: folder of `<item token>.jpg` pictures, relative to the dataset folder (`~`: none; "
        "`serve --images` overrides it)",
        nullable=True, default=None,
    ),
    Key("item_index_file", "str", "row order of the feature files (default `<dataset>.item_index`)", nullable=True, default=None),
    Key(
        "max_unknown_feature_rows", "float",
        "largest share of a feature file's rows whose item is not in the dataset before the run stops (1: never)",
        low=0.0, high=1.0, default=0.1,
    ),
    # cost of content (docs/RESULTS.md, "Performance")
    Key(
        "feature_dim", "int",
        "reduce every modality wider than this to its first `feature_dim` principal components at load time "
        "(computed once, cached); `~`: raw features",
        low=1, nullable=True, default=None,
    ),
    Key(
        "feature_reduction", "choice",
        "`pca`: PCA of the standardised features; `svd`: truncated SVD of the raw features (keeps their cosine geometry)",
        choices=REDUCTIONS, default='pca',
    ),
    Key(
        "feature_cache_dir", "path",
        "where reduced features are cached (`~`: `<data_path>/<dataset>/_cache/features`)",
        nullable=True, default=None,
    ),
    Key(
        "feature_dtype", "choice",
        "precision the features are kept in; `float16`/`bfloat16` halve their memory (float16 is widened block by "
        "block for the projection; bfloat16 is projected in bfloat16)",
        choices=FEATURE_DTYPES, default='float32',
    ),
    Key(
        "knn_backend", "choice",
        "frozen kNN item graphs: `torch` (blocked cosine matmul), `faiss` (exact inner-product index; same "
        "neighbours up to ties), `auto` (faiss when installed)",
        choices=KNN_BACKENDS, default='torch',
    ),
    # training
    Key("epochs", "int", "epoch budget (early stopping usually ends sooner)", low=1, default=300),
    Key("train_batch_size", "int", "interactions per training batch", low=1, default=2048),
    Key("learner", "choice", "optimizer", choices=LEARNERS, ignore_case=True, default='adam'),
    Key("learning_rate", "float", "optimizer step size", low=0.0, low_open=True, default=0.001),
    Key("weight_decay", "float", "optimizer L2 penalty", low=0.0, default=RECBOLE),
    Key("train_neg_sample_args", "neg_sample_args", "RecBole's training negative sampler", default_text="uniform, 1 negative", default={'distribution': 'uniform', 'sample_num': 1, 'alpha': 1.0, 'dynamic': False, 'candidate_num': 0}),
    Key("cold_items_as_negatives", "bool", "`false`: items only in valid/test (cold items) are never training negatives", default=False),
    Key("eval_step", "int", "evaluate on validation every this many epochs", low=1, default=1),
    Key("stopping_step", "int", "patience, in evaluations without improvement of `valid_metric`", low=1, default=20),
    Key("seed", "int", "random seed", default=RECBOLE),
    Key("reproducibility", "bool", "deterministic torch kernels", default=RECBOLE),
    Key("state", "choice", "log level", choices=STATES, ignore_case=True, default=RECBOLE),
    Key("show_progress", "bool", "RecBole's progress bars (the command line turns them on in a terminal)", default=False),
    Key("checkpoint_dir", "path", "best model of each run (must be a writable folder)", default='saved/'),
    Key("log_dir", "off_path", "run logs `<log_dir>/<model>/<run>.log`; `~`: console only", default='log/'),
    Key("tensorboard_dir", "off_path", "tensorboard events, one folder per run; `~`: none", default='log_tensorboard/'),
    # evaluation
    Key(
        "eval_args", "eval_args", "RecBole's split, order, grouping and ranking mode",
        default_text="full ranking, per-user random 8:1:1 unless `benchmark_filename`", default={'group_by': 'user', 'order': 'RO', 'split': {'RS': [0.8, 0.1, 0.1]}, 'mode': 'full'},
    ),
    Key("metrics", "metrics", "metrics computed on validation and test", default=['Recall', 'NDCG', 'Precision']),
    Key("topk", "ints", "cut-offs of the ranking metrics (at most the number of items for full ranking)", low=1, default=[10, 20, 50]),
    Key("valid_metric", "valid_metric", "metric that picks the best epoch and stops early", default='Recall@20'),
    Key(
        "eval_batch_size", "int",
        "scores per evaluation batch; full ranking scores users x items, so below the number of items it is one user per batch: for large catalogues set e.g. 16777216",
        low=1, default=4096,
    ),
)


#: The baselines' ``feature_norm``: raw features unless asked (MMRec scales none).
_RAW_FEATURE_NORM = Key("feature_norm", "choice", "per-modality scaling of the raw features", choices=FEATURE_NORMS, default='none')

#: Each plugin model's own keys (defaults: ``properties/model/<Model>.yaml``).
MODEL_KEYS: dict[str, tuple[Key, ...]] = {
    "RLMultimodalRec": (
        Key("embedding_size", "int", "d: ID embeddings and every modality projection", low=1, default=64),
        Key("n_layers", "int", "LightGCN propagation steps", low=0, default=2),
        Key("reg_weight", "float", "L2 on the batch's layer-0 embeddings (as RecBole's LightGCN)", low=0.0, default=0.0001),
        Key(
            "fusion", "choice",
            "`gate`, `sum`, `concat`, `image`, `text` (one modality), `none` (ID only; with "
            "`edge_dropout: 0` it is RecBole's LightGCN exactly)",
            choices=FUSIONS, default='gate',
        ),
        Key("gate_type", "choice", "`vector`: one gate value per dimension; `scalar`: one per item", choices=GATE_TYPES, default='vector'),
        Key(
            "fusion_stage", "choice",
            "`early`: content added to the item's layer-0 embedding and propagated; `late`: added to "
            "the propagated embedding",
            choices=FUSION_STAGES, default='early',
        ),
        Key("feature_norm", "choice", "per modality: `standard` (per-dimension standardisation, then unit rows), `l2`, `none`", choices=FEATURE_NORMS, default='standard'),
        Key("content_scale", "float", "weight of the fused content next to the ID embedding", low=0.0, default=0.1),
        Key(
            "item_graph_k", "int",
            "extension: >0 adds a frozen kNN item-item graph per modality; each item mixes its "
            "modalities' neighbourhoods with its own gate shares",
            low=0, default=10,
        ),
        Key("item_graph_weight", "float", "weight of that graph's smoothed item embeddings", low=0.0, default=0.5),
        Key(
            "item_graph_purify", "bool",
            "extension: the item graph smooths each modality's ID embeddings gated by its content, "
            "ID * sigmoid(W_m p_m + b_m) (MGCN's behaviour purifier), instead of the layer-0 vectors",
            default=False,
        ),
        Key(
            "item_graph_users", "bool",
            "extension: users also receive their items' item-graph vectors, weighted as LightGCN's "
            "first layer (MGCN's user side view)",
            default=False,
        ),
        Key(
            "edge_dropout", "float",
            "extension: FREEDOM's degree-sensitive pruning of this share of user-item edges, resampled every epoch",
            low=0.0, high=1.0, high_open=True, default=0.5,
        ),
        Key("align_weight", "float", "extension: InfoNCE aligning each batch item's gated content with its final vector (0: off)", low=0.0, default=0.0),
        Key("align_temperature", "float", "temperature of that InfoNCE", low=0.0, low_open=True, default=0.2),
        Key(
            "content_bpr_weight", "float",
            "extension: FREEDOM's auxiliary BPR, each modality's projection scoring the batch triples "
            "against the user's final vector, summed over modalities (0: off)",
            low=0.0, default=0.0,
        ),
        Key(
            "use_modalities", "names",
            "the configured modalities the model uses (`~`: all); with `content_check` our runner's plan sets it to "
            "the ones whose content predicts validation interactions",
            nullable=True, default=None,
        ),
        Key(
            "content_check", "bool",
            "do no harm: before training, drop every modality whose content does not predict held-out "
            "(validation) interactions better than chance (docs/MODELS.md)", default=True,
        ),
        Key(
            "cold_borrow_k", "int",
            "cold items (no training interaction): each borrows the mean final vector of its k most "
            "content-similar warm items per modality, mixed by its gate shares, plus its own content (0: no borrowing; "
            "a cold item keeps what the graph gives it)",
            low=0, default=10,
        ),
        Key(
            "cold_offset", "auto_float",
            "score offset of cold items against warm ones; `auto`: chosen on validation by our runner at every "
            "evaluation (best `valid_metric`); until then (and in RecBole's own trainer) cold items rank last", default='auto',
        ),
    ),
    "VBPR": (
        Key("embedding_size", "int", "d: size of the ID part and of the projected content part (2d in all)", low=1, default=64),
        Key("reg_weight", "float", "EmbLoss weight on the batch's user/item vectors", low=0.0, default=0.01),
        _RAW_FEATURE_NORM,
    ),
    "MMGCN": (
        Key("embedding_size", "int", "d: ID embedding and output size of every layer", low=1, default=64),
        Key("n_layers", "int", "graph-convolution layers per modality branch", low=1, default=3),
        Key("dim_latent", "int", "MLP size applied to the features before layer 0 (0: raw features)", low=0, default=256),
        Key("concat", "bool", "combine layer as LeakyReLU(G [h ; x_hat]) (false: h + x_hat)", default=True),
        Key("aggr", "choice", "neighbour aggregation", choices=AGGREGATIONS, default='mean'),
        _RAW_FEATURE_NORM,
    ),
    "LATTICE": (
        Key("embedding_size", "int", "d: size of the ID embeddings", low=1, default=64),
        Key("feat_embed_dim", "int", "projection size for the learned item graph", low=1, default=64),
        Key("knn_k", "int", "neighbours kept per item in every kNN graph (itself included)", low=1, default=10),
        Key("lambda_coeff", "float", "weight of the frozen raw-feature graph next to the learned one", low=0.0, high=1.0, default=0.9),
        Key("n_layers", "int", "item-graph propagation steps", low=0, default=1),
        Key("n_ui_layers", "int", "LightGCN steps on the user-item graph", low=0, default=2),
        Key("reg_weight", "float", "L2 on the batch's final vectors", low=0.0, default=1e-05),
        _RAW_FEATURE_NORM,
    ),
    "FREEDOM": (
        Key("embedding_size", "int", "d of the ID embeddings and of the feature projections", low=1, default=64),
        Key("knn_k", "int", "neighbours per item in the frozen kNN graph (itself included)", low=1, default=10),
        Key("mm_image_weight", "float", "weight of the image kNN graph; the other modalities share the rest", low=0.0, high=1.0, default=0.1),
        Key("n_mm_layers", "int", "propagation steps on the frozen item-item graph", low=0, default=1),
        Key("n_ui_layers", "int", "LightGCN steps on the (pruned) user-item graph", low=0, default=2),
        Key("dropout", "float", "share of user-item edges pruned each epoch (degree-sensitive)", low=0.0, high=1.0, high_open=True, default=0.8),
        Key("reg_weight", "float", "weight of the auxiliary BPR loss on projected raw features (0: off)", low=0.0, default=0.0001),
        _RAW_FEATURE_NORM,
    ),
    "BM3": (
        Key("embedding_size", "int", "d of the ID embeddings, the feature projections and the predictor", low=1, default=64),
        Key("n_layers", "int", "LightGCN steps of the online encoder (MMRec grid: 1, 2)", low=0, default=1),
        Key("dropout", "float", "dropout ratio that turns the online vectors into the target views (MMRec grid: 0.3, 0.5)", low=0.0, high=1.0, high_open=True, default=0.3),
        Key("reg_weight", "float", "EmbLoss weight on the full online user and item tables (MMRec grid: 0.1, 0.01)", low=0.0, default=0.1),
        Key("cl_weight", "float", "weight of the modality alignment terms (projected features vs item and feature targets)", low=0.0, default=2.0),
        _RAW_FEATURE_NORM,
    ),
    "MGCN": (
        Key("embedding_size", "int", "d of the ID embeddings and of the feature projections", low=1, default=64),
        Key("knn_k", "int", "neighbours per item in each frozen modality graph (itself included)", low=1, default=10),
        Key("n_layers", "int", "steps on the item-item graphs", low=0, default=1),
        Key("n_ui_layers", "int", "LightGCN steps on the user-item graph", low=0, default=2),
        Key("reg_weight", "float", "L2 on the batch's final vectors", low=0.0, default=0.0001),
        Key("cl_weight", "float", "weight of the InfoNCE between the fused side view and the ID view (MMRec: cl_loss; grid 0.001, 0.01, 0.1)", low=0.0, default=0.001),
        _RAW_FEATURE_NORM,
    ),
    "SMORE": (
        Key("embedding_size", "int", "d of the ID embeddings and of the feature projections", low=1, default=64),
        Key("image_knn_k", "int", "neighbours per item in the frozen `image` graph (itself included; authors' Baby value)", low=1, default=40),
        Key("text_knn_k", "int", "neighbours per item in the frozen `text` graph (itself included; authors' Baby value)", low=1, default=15),
        Key("knn_k", "int", "neighbours per item in the frozen graph of a modality of any other name", low=1, default=10),
        Key("n_layers", "int", "steps on the item-item graphs", low=0, default=1),
        Key("n_ui_layers", "int", "LightGCN steps on the user-item graph (authors' Baby value)", low=0, default=4),
        Key("reg_weight", "float", "L2 on the batch's final vectors", low=0.0, default=0.0001),
        Key("cl_weight", "float", "weight of the InfoNCE between the fused side view and the ID view (SMORE: cl_loss)", low=0.0, default=0.01),
        Key("dropout", "float", "dropout on the preference gates (SMORE: dropout_rate)", low=0.0, high=1.0, high_open=True, default=0.1),
        _RAW_FEATURE_NORM,
    ),
    "LGMRec": (
        Key("embedding_size", "int", "d of the ID embeddings and of the modality projections", low=1, default=64),
        Key("n_ui_layers", "int", "LightGCN steps of the collaborative graph embedding (0: MMRec's cf_model mf)", low=0, default=2),
        Key("n_mm_layers", "int", "steps of the modality graph embedding on the user-item graph", low=0, default=2),
        Key("n_hyper_layer", "int", "steps on each modality's hypergraph", low=1, default=1),
        Key("hyper_num", "int", "hyperedges per modality", low=1, default=4),
        Key("keep_rate", "float", "keep probability of the dropout on the hyperedge memberships", low=0.0, high=1.0, low_open=True, default=0.5),
        Key("alpha", "float", "weight of the global (hypergraph) embedding", low=0.0, default=0.3),
        Key("cl_weight", "float", "weight of the hypergraph contrast between modalities", low=0.0, default=0.0001),
        Key("reg_weight", "float", "EmbLoss weight on the batch's final vectors", low=0.0, default=1e-06),
        _RAW_FEATURE_NORM,
    ),
    "MENTOR": (
        Key("embedding_size", "int", "d of each GCN's output (the fused vectors have d x modalities)", low=1, default=64),
        Key("knn_k", "int", "neighbours per item in the frozen kNN graph (itself included)", low=1, default=10),
        Key("mm_image_weight", "float", "weight of the image kNN graph; the other modalities share the rest", low=0.0, high=1.0, default=0.1),
        Key("n_mm_layers", "int", "steps on the frozen item-item graph", low=0, default=1),
        Key("n_ui_layers", "int", "GCN steps on the user-item graph (sum of layers)", low=0, default=2),
        Key("reg_weight", "float", "L2 on the batch's user preferences and on the user modality weights", low=0.0, default=0.001),
        Key("align_weight", "float", "weight of the multilevel distribution alignment", low=0.0, default=0.1),
        Key("mask_weight_g", "float", "weight of the InfoNCE between the two perturbed-graph representations (MENTOR grid: 0.0001, 0.001)", low=0.0, default=0.0001),
        Key("temp", "float", "temperature of that InfoNCE (MENTOR grid: 0.2, 0.4, 0.6)", low=0.0, low_open=True, default=0.2),
        _RAW_FEATURE_NORM,
    ),
}

#: Keys that RLMultimodalRec once had; a run that sets one is told it is ignored and why.
REMOVED_KEYS: dict[str, str] = {
    "id_dropout": "cold-start training (it lost on calibrated validation across cold shares; docs/RESULTS.md, Cold shares)",
    **dict.fromkeys(("user_graph_k", "user_graph_weight"), "the DRAGON user graph"),
    **dict.fromkeys(("cl_weight", "cl_noise"), "the XSimGCL contrast"),
    "cl_temperature": "the XSimGCL contrast; the alignment loss's temperature is now align_temperature",
    "item_graph_layers": "deeper item graphs",
    "item_graph_degree_power": "the degree-aware item-graph weight",
    "learn_content_scale": "the learned content scale",
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


#: A plugin model's own default for an overall key (declared once, in :data:`OVERALL_KEYS`).
MODEL_OVERRIDES: dict[str, dict[str, Any]] = {
    # 256 principal components: validation Recall@20 within seed noise on movielens-mm and
    # scientific, half the epoch time at 4096-d image features (docs/RESULTS.md, Performance)
    "RLMultimodalRec": {"feature_dim": 256},
}


def model_keys(model: str) -> tuple[Key, ...]:
    """The table's keys of plugin model ``model`` (empty for RecBole's built-ins)."""
    return MODEL_KEYS.get(model, ())


def table(model: str | None = None) -> dict[str, Key]:
    """Key name -> :class:`Key`: the overall keys, plus ``model``'s own (which win)."""
    keys = {k.name: k for k in OVERALL_KEYS}
    if model:
        keys.update({k.name: k for k in model_keys(model)})
    return keys



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




# --------------------------------------------------------------------------- Markdown


# --------------------------------------------------------------------------- defaults


def our_defaults() -> dict[str, Any]:
    """The overall keys we set (``properties/overall.yaml``), in declaration order."""
    return {k.name: k.default for k in OVERALL_KEYS if k.default is not RECBOLE}


def model_defaults(model: str) -> dict[str, Any]:
    """Plugin model ``model``'s own defaults (``properties/model/<model>.yaml``), including its
    defaults for overall keys (:data:`MODEL_OVERRIDES`); {} for others."""
    return {**{k.name: k.default for k in model_keys(model)}, **MODEL_OVERRIDES.get(model, {})}


@functools.lru_cache(maxsize=1)
def recbole_properties() -> Path:
    """RecBole's own ``properties`` folder."""
    import recbole

    return Path(recbole.__file__).parent / "properties"


def default_of(key: str, model: str | None = None) -> Any:
    """The default of ``key``: ``model``'s own, ours, then RecBole's (its overall and sample
    dataset yaml); None when nobody sets one."""
    for values in (model_defaults(model) if model else {}, our_defaults()):
        if key in values:
            return values[key]
    for path in (recbole_properties() / "overall.yaml", recbole_properties() / "dataset" / "sample.yaml"):
        values = read_yaml(path)
        if key in values:
            return values[key]
    return None
