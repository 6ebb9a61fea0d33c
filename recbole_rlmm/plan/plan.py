"""The run plan: every decision our runner makes from the data, made once before the model.

A model reads its configuration and the training data, as RecBole's models do. What depends on
the data beyond that is decided here, by our runner, before any model is built:

* **which modalities carry signal** (``content_check``, for models whose
  ``content_check_applies(config)``): each candidate modality is tested on the validation
  interactions (:mod:`recbole_rlmm.plan.signal`); the informative ones become ``use_modalities``;
* **cold items**: how many items have no training interaction and what share of the validation
  interactions falls on them (with ``cold_offset: auto`` their score offset is then chosen on
  validation by our runner's trainer at every evaluation, :mod:`recbole_rlmm.runner.calibration`);
* **the kNN backend** when ``knn_backend: auto``.

:func:`apply_plan` writes the decisions into the run's configuration (``use_modalities``,
``knn_backend``, and the whole plan under ``run_plan``), so that the model reads them as ordinary
keys, the log shows them, and the checkpoint stores them: a loaded checkpoint is rebuilt from its
stored configuration and never runs the plan again. In your own RecBole code, call
``apply_plan(config, make_plan(config, model_class, train_data._dataset, valid_data._dataset))``
before building the model (without it, a model uses every configured modality).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recbole_rlmm.data.features import configured_modalities, load_modalities
from recbole_rlmm.graph.knn import resolve_backend
from recbole_rlmm.plan.signal import ModalitySignal, modality_signal, probe_and_history

#: Config key holding the plan (a JSON-safe dict) of the run.
PLAN_KEY = "run_plan"


@dataclass
class RunPlan:
    """The decisions of one run (see the module docstring)."""

    model: str
    use_modalities: list[str] | None = None  # None: not decided here (the config's value stands)
    content_check: dict[str, dict[str, Any]] = field(default_factory=dict)  # modality -> verdict
    cold_items: int = 0
    cold_share: float = 0.0  # of the validation interactions
    cold_offset: str | None = None  # how cold items are placed, for models that score them
    knn_backend: str | None = None  # resolved from ``auto``

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "use_modalities": self.use_modalities,
            "content_check": self.content_check,
            "cold_items": self.cold_items,
            "cold_share": self.cold_share,
            "cold_offset": self.cold_offset,
            "knn_backend": self.knn_backend,
        }

    def lines(self) -> list[str]:
        """What the plan decided, one log line per decision."""
        out = []
        for m, verdict in self.content_check.items():
            signal = ModalitySignal(verdict["auc"], verdict["low"], verdict["pairs"], verdict["source"])
            out.append(f"run plan: content check {m}: {signal}")
        if self.use_modalities is not None:
            out.append(f"run plan: use_modalities {self.use_modalities or '[] (ID only)'}")
        if self.cold_items:
            how = f"; {self.cold_offset}" if self.cold_offset else ""
            out.append(
                f"run plan: {self.cold_items} cold items (no training interaction), "
                f"{100 * self.cold_share:.1f}% of validation interactions{how}"
            )
        if self.knn_backend is not None:
            out.append(f"run plan: knn_backend auto -> {self.knn_backend}")
        return out


def _pairs(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """(users, items) of a RecBole dataset's interactions."""
    return dataset.inter_feat[dataset.uid_field].numpy(), dataset.inter_feat[dataset.iid_field].numpy()


def _content_check(
    config: Any, model_class: type, train_dataset: Any, validation: tuple[np.ndarray, np.ndarray] | None
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The informative modalities among the model's candidates, and every verdict."""
    candidates = model_class.modalities_read(config)
    modal = load_modalities(config, train_dataset, candidates)
    seed = int(config["seed"] if config["seed"] is not None else 0)
    interactions = train_dataset.inter_matrix(form="coo").astype("float32")
    history, users, items, source = probe_and_history(interactions, seed, validation)
    verdicts = {
        m: modality_signal(modal.features[m], modal.masks[m], history, users, items, seed, source)
        for m in modal.names
    }
    return [m for m in modal.names if verdicts[m].informative], {m: v.to_dict() for m, v in verdicts.items()}


def make_plan(config: Any, model_class: type, train_dataset: Any, valid_dataset: Any | None) -> RunPlan:
    """Decide, from the training and validation data, what the module docstring lists."""
    plan = RunPlan(model=str(config["model"]))
    validation = _pairs(valid_dataset) if valid_dataset is not None and len(valid_dataset) else None
    applies = getattr(model_class, "content_check_applies", None)
    if applies is not None and configured_modalities(config) and applies(config):
        plan.use_modalities, plan.content_check = _content_check(config, model_class, train_dataset, validation)
    degree = np.bincount(_pairs(train_dataset)[1], minlength=train_dataset.item_num)
    cold = degree[1:] == 0  # item 0 is RecBole's padding
    plan.cold_items = int(cold.sum())
    if validation is not None and len(validation[1]):
        plan.cold_share = float((degree[validation[1]] == 0).mean())
    if plan.cold_items and "cold_offset" in config:
        offset = config["cold_offset"]
        plan.cold_offset = (
            "cold_offset auto: chosen on validation at every evaluation" if offset == "auto" else f"cold_offset {offset}"
        )
    if "knn_backend" in config and config["knn_backend"] == "auto":
        plan.knn_backend = resolve_backend("auto")
    return plan


def apply_plan(config: Any, plan: RunPlan) -> None:
    """Write ``plan``'s decisions into ``config`` (a RecBole ``Config``): ``use_modalities``,
    ``knn_backend`` and the plan itself under :data:`PLAN_KEY`."""
    if plan.use_modalities is not None:
        config["use_modalities"] = list(plan.use_modalities)
    if plan.knn_backend is not None:
        config["knn_backend"] = plan.knn_backend
    config[PLAN_KEY] = plan.to_dict()


def stored_plan(config: Any) -> dict[str, Any] | None:
    """The plan a configuration (a loaded checkpoint's) holds, if any."""
    return config[PLAN_KEY] if PLAN_KEY in config else None  # noqa: SIM401 (Config has no .get)
