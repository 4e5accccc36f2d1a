"""How long the explorer takes to switch between its Explore and Train tabs, in Chromium.

    python benchmarks/tab_switch.py [--rounds 2] [--switches 4]
    python benchmarks/tab_switch.py --against DIR          # and another checkout beside this one

The page the browser tests drive (tests/browser: the explorer served on a folder holding the
shipped copy-ntm, every request off the machine aborted): a small run is trained in the Train
tab and stopped, so both tabs have views, then the script clicks Explore, Train, Explore, ...
and times each click until that tab's views have drawn a frame (the tests' own readiness
checks). It prints the median and range of each tab's switches.

--against DIR times another checkout DIR (e.g. a `git worktree` of an older commit; no
virtualenv of its own needed) in the same run: each round runs this script once per checkout
(in a process of its own, the checkout first on PYTHONPATH and as its working directory, which
goes first alternating), then the medians side by side and this checkout's over the other's.
The machine's load is printed: compare the two columns of one run, never times across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABS = ("Explore", "Train")


def measure(switches: int) -> dict[str, list[float]]:
    """In this process's checkout: seconds per switch to each tab."""
    browser_tests = Path.cwd() / "tests" / "browser"
    sys.path.insert(0, str(browser_tests))
    import conftest  # the browser tests' page helpers, as plain functions
    from test_browser_live import click_tab, on_explore, on_train, start_small_run, stop_run

    ready = {"Explore": on_explore, "Train": on_train}
    times: dict[str, list[float]] = {tab: [] for tab in TABS}
    with tempfile.TemporaryDirectory() as tmp, conftest.chromium() as browser, \
            conftest.explorer_on(browser, ("copy-ntm",), Path(tmp) / "checkpoints") as (app, explorer):
        click_tab(app, "Train")
        stop_run(app, explorer, start_small_run(app, explorer, length=10))
        for _ in range(switches):
            for tab in TABS:
                start = time.perf_counter()
                click_tab(app, tab)
                app.wait(lambda v, tab=tab: ready[tab](v) and v, f"the {tab} tab")
                times[tab].append(time.perf_counter() - start)
                app.page.wait_for_timeout(300)
    return times


def run_in(checkout: Path, switches: int) -> dict[str, list[float]]:
    """`measure` in a process of its own with `checkout`'s ntmviz."""
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", "--switches", str(switches)],
                         cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{checkout}: the measurement failed:\n{out.stderr[-2000:]}")
    imported, times = out.stdout.strip().splitlines()[-2:]
    if checkout.resolve() not in Path(imported).parents:
        raise SystemExit(f"{checkout}: the worker imported {imported}")
    return json.loads(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="pages per checkout (default 2)")
    parser.add_argument("--switches", type=int, default=4, help="Explore/Train switch pairs per page (default 4)")
    parser.add_argument("--against", type=Path, default=None, help="another checkout to time beside this one")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        times = measure(args.switches)
        import ntmviz

        print(ntmviz.__file__)
        print(json.dumps(times))
        return
    here = Path(__file__).resolve().parent.parent
    checkouts = [here] + ([args.against.resolve()] if args.against else [])
    results = {c: {tab: [] for tab in TABS} for c in checkouts}
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for r in range(args.rounds):
        for c in (checkouts if r % 2 == 0 else checkouts[::-1]):
            for tab, seconds in run_in(c, args.switches).items():
                results[c][tab].extend(seconds)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"{'tab':8s}" + "".join(f"  {c.name[:24]:>26s}" for c in checkouts) + ("  this/other" if args.against else ""))
    for tab in TABS:
        cells = []
        for c in checkouts:
            s = results[c][tab]
            cells.append(f"{statistics.median(s):6.2f} s [{min(s):.2f}, {max(s):.2f}] n={len(s):<3d}")
        ratio = (f"  {statistics.median(results[here][tab]) / statistics.median(results[checkouts[1]][tab]):9.2f}"
                 if args.against else "")
        print(f"{tab:8s}" + "".join(f"  {cell:>26s}" for cell in cells) + ratio)


if __name__ == "__main__":
    main()
