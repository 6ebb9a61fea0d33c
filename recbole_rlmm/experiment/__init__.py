"""Experiment tooling: ``compare`` (several models, same split, evaluator and schedule),
``tune`` (search selected on validation only), their shared machinery (:mod:`.common`) and the
plain-text rendering of a run (:mod:`.report`)."""

#: Seeds used when none are given (``compare``, ``tune``).
DEFAULT_SEEDS: tuple[int, ...] = (2020, 2021, 2022)
