"""Running models: our runner and RecBole's own entry points.

* :func:`run_recbole_rlmm` (``recbole-rlmm run`` and the other commands): our defaults, checks,
  run plan and trainer (:mod:`.run`, :mod:`.trainer`, :mod:`.calibration`, :mod:`.checks`);
* :func:`run_recbole`, :func:`run`, :func:`run_recboles`, :func:`load_data_and_model`:
  RecBole 1.2.1's own functions, line for line (:mod:`.recbole`);
* :func:`load_for_inference`: a checkpoint back as config, model and data (:mod:`.load`).

Around them: logging (:mod:`.logs`), the data of a run (:mod:`.dataset`), several processes
(:mod:`.distributed`) and interrupted runs (:mod:`.resume`).
"""

from recbole_rlmm.runner.load import LoadedModel, load_for_inference
from recbole_rlmm.runner.logs import init_run_logger, silence_recbole_warnings
from recbole_rlmm.runner.recbole import load_data_and_model, run, run_recbole, run_recboles
from recbole_rlmm.runner.resume import RunInterrupted
from recbole_rlmm.runner.run import build_model, run_recbole_rlmm, unique_checkpoint_path

__all__ = [
    "LoadedModel",
    "RunInterrupted",
    "build_model",
    "init_run_logger",
    "load_data_and_model",
    "load_for_inference",
    "run",
    "run_recbole",
    "run_recbole_rlmm",
    "run_recboles",
    "silence_recbole_warnings",
    "unique_checkpoint_path",
]
