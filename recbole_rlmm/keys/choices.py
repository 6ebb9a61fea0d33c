"""Choices of the configuration keys, defined once (plain tuples: importing this module costs
nothing, so models and the command line share them)."""

from __future__ import annotations

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
#: Fusions that mix several modalities (the others use one modality, or none).
MIXING_FUSIONS: tuple[str, ...] = ("gate", "sum", "concat")
