"""``recbole-rlmm serve`` in a child process on a free loopback port, for benchmarks and tests.

    with ServerProcess(checkpoint, "--images", "thumbs/") as server:
        requests.get(server.url + "/health")

The child runs ``python -m recbole_rlmm.cli serve --checkpoint ... --host 127.0.0.1 --port 0``
(the system picks a free port), so nothing can take the port between choosing and binding it;
the URL is read from the line the command prints once it serves. On leaving the block the child
gets SIGINT (uvicorn's graceful stop), then SIGKILL if it lingers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
_URL = re.compile(r" at (http://[^\s]+?)\s")


class ServerProcess:
    """A running ``serve`` (see the module docstring); ``url``, ``output()`` (what it printed)."""

    def __init__(
        self,
        checkpoint: str | os.PathLike[str],
        *args: str,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 300.0,
        nice: int = 0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.command = [
            sys.executable, "-m", "recbole_rlmm.cli", "serve", "--checkpoint", str(checkpoint),
            "--host", "127.0.0.1", "--port", "0", *args,
        ]
        if nice:
            self.command = ["nice", "-n", str(nice), *self.command]
        self.cwd = cwd
        self.timeout = timeout
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **(env or {})}
        self.url = ""
        self.lines: list[str] = []
        self.process: subprocess.Popen | None = None

    def output(self) -> str:
        return "".join(self.lines)

    def _read(self, found: threading.Event) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            match = _URL.search(line)
            if match and not self.url:
                self.url = match.group(1)
                found.set()
        found.set()  # the child ended

    def __enter__(self) -> ServerProcess:
        self.process = subprocess.Popen(
            self.command, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        found = threading.Event()
        threading.Thread(target=self._read, args=(found,), daemon=True).start()
        deadline = time.monotonic() + self.timeout
        while not found.wait(0.2):
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"serve did not start in {self.timeout:.0f} s:\n{self.output()[-3000:]}")
        if not self.url:
            self.stop()
            raise RuntimeError(f"serve ended before serving (exit {self.process.returncode}):\n{self.output()[-3000:]}")
        return self

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __exit__(self, *exc: Any) -> None:
        self.stop()
