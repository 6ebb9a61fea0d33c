"""Plain RecBole with and without ``import recbole_rlmm``, on two stacks (issue 19).

    nox -s guest_today guest_old        # both (.ci/run calls this)
    nox -s guest_old                    # the older stack alone

Each session makes its own virtual environment and runs ``tests/test_guest.py`` (RecBole's own
code in fresh processes, with and without the import: same metrics, RecBole's checkpoints read
by RecBole, ``evaluate(model_file=...)``, ``recbole_rlmm.run_recbole`` equal to RecBole's, a
user's ``dataset/ml-100k``):

* ``guest_today``: the stack a fresh install resolves today (``install.sh``'s torch, then the
  package with its dependencies);
* ``guest_old``: a stack made before us, Python 3.11 with numpy 1.26.4, pandas 2.1.4, scipy
  1.11.4, torch 2.2.2 and recbole 1.2.1, where plain RecBole runs (``recbole.quick_start``
  imports there). The package is installed into it as a user would (``pip install .``), which
  must change no installed package; after the tests it is uninstalled, which must leave the
  stack as before, and RecBole alone must still read the checkpoints written after the import.

torch 2.2.2 from PyPI is a CUDA build (a 755 MB wheel and the nvidia packages); it runs on the
CPU. The README (*RecBole 1.2.1 on a current stack*) has the time each session took.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import nox

nox.options.sessions = ["guest_today", "guest_old"]
nox.options.reuse_existing_virtualenvs = False

#: The older stack.
OLD_STACK = ["numpy==1.26.4", "pandas==2.1.4", "scipy==1.11.4", "torch==2.2.2", "recbole==1.2.1"]
#: install.sh's torch (TORCH overrides it there and here).
TORCH = os.environ.get("TORCH", "torch==2.13.0")
TESTS = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_guest.py"]
ENV = {"OMP_NUM_THREADS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _freeze(session: nox.Session) -> dict[str, str]:
    out = session.run("python", "-m", "pip", "freeze", "--all", silent=True, env=ENV)
    lines = [line.strip() for line in str(out).splitlines() if line.strip() and not line.startswith("#")]
    return {line.split("==")[0].split(" @ ")[0].lower(): line for line in lines}


def _changes(before: dict[str, str], after: dict[str, str]) -> dict[str, tuple[str | None, str | None]]:
    names = set(before) | set(after)
    return {n: (before.get(n), after.get(n)) for n in sorted(names) if before.get(n) != after.get(n)}


@nox.session(python="3.11")
def guest_today(session: nox.Session) -> None:
    """Today's stack: install.sh's torch, then the package and pytest."""
    session.install(TORCH, env=ENV)
    session.install(".", "pytest>=7.4", env=ENV)
    session.run(*TESTS, env=ENV)


@nox.session(python="3.11")
def guest_old(session: nox.Session) -> None:
    """The older stack; the package installed into it and uninstalled again."""
    session.install(*OLD_STACK, "pytest>=7.4", env=ENV)
    before = _freeze(session)
    session.install(".", env=ENV)  # as a user installs it into an existing environment
    installed = _changes(before, _freeze(session))
    if set(installed) != {"recbole-rlmm"} or installed["recbole-rlmm"][0] is not None:
        session.error(f"pip install . changed installed packages: {installed}")
    session.log("pip install . added recbole-rlmm and changed nothing else")

    with tempfile.TemporaryDirectory() as record:
        session.run(*TESTS, env={**ENV, "GUEST_RECORD": record})

        session.run("python", "-m", "pip", "uninstall", "-y", "recbole-rlmm", env=ENV)
        left = _changes(before, _freeze(session))
        if left:
            session.error(f"pip uninstall recbole-rlmm left the stack changed: {left}")
        session.log("pip uninstall recbole-rlmm left the stack as before")

        # RecBole alone reads the checkpoints its trainer wrote after `import recbole_rlmm`
        probe = str(Path("tests", "guest_probe.py").resolve())
        records = sorted(Path(record).glob("*.json"))
        if not records:
            session.error("tests/test_guest.py recorded no checkpoint")
        for path in records:
            written = json.loads(path.read_text())
            with session.chdir(written["workdir"]):
                out = session.run("python", probe, "plain", "load", written["checkpoint"], silent=True, env=ENV)
            loaded = json.loads(str(out).strip().splitlines()[-1])
            if loaded.get("topk") != written["topk"]:
                session.error(f"{path.stem}: RecBole alone read {written['checkpoint']} differently: {loaded}")
            session.log(f"{path.stem}: RecBole without the package reads the checkpoint; same top-10 lists")
