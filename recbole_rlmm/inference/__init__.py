"""Using a trained model: recommendations, embedding export, the gate's shares.

* :mod:`.recommender`: :class:`~recbole_rlmm.inference.recommender.Recommender`, top-K lists
  for raw user tokens scored by the model's own ``full_sort_predict``;
* :mod:`.check`: the same lists from RecBole's own full-sort evaluator, and their comparison;
* :mod:`.vectors`: the final user and item vectors of models that score by dot product;
* :mod:`.export`: those vectors as ``.npy`` files (and a faiss index) for serving;
* :mod:`.gates`: RLMultimodalRec's per-item modality shares, tabulated and plotted;
* :mod:`.outputs`: output folders and files are never overwritten silently;
* :mod:`.cli`: the ``recommend``, ``export`` and ``gates`` commands (light: nothing heavy is
  imported until a command runs).

This ``__init__`` imports nothing, so ``recbole_rlmm.inference.cli`` stays light.
"""
