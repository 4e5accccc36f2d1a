"""One checkout's ntmviz in a process of its own, for the benchmarks' --against.

    worker = CheckoutWorker(Path(__file__), checkout, ["--threads", "1"])  # runs `SCRIPT --worker ...`
    wall, cpu = worker.ask("recorded 32 100")                                # one line in, "wall cpu" out
    worker.close()

The script runs with the checkout first on PYTHONPATH and as its working directory, so two
checkouts are timed alike, side by side in one time window. Its worker mode must first print
`ntmviz.__file__` (once warm), then answer each request line with one "wall cpu" line: the
first line is checked, so a worker that imported another ntmviz stops the benchmark.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


class CheckoutWorker:
    def __init__(self, script: Path, checkout: Path, args: list[str] = ()):
        self.checkout = checkout.resolve()
        self.proc = subprocess.Popen([sys.executable, str(Path(script).resolve()), "--worker", *args],
                                     cwd=self.checkout, env={**os.environ, "PYTHONPATH": str(self.checkout)},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        imported = Path(self.proc.stdout.readline().strip())
        if self.checkout not in imported.parents:
            self.proc.kill()
            raise SystemExit(f"{checkout}: the worker imported {imported}")

    def ask(self, request: str) -> tuple[float, float]:
        """The worker's (wall, cpu) answer to one request line."""
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        wall, cpu = self.proc.stdout.readline().split()
        return float(wall), float(cpu)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()
