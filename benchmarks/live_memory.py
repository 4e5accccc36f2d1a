"""Does a live run stay bounded? Runs one for N minutes with a small K and prints, over time,
the process's resident memory, the snapshots kept, the metrics window and the Trainer's
history points.

    python benchmarks/live_memory.py            # 2 minutes
    python benchmarks/live_memory.py 10 --every 5 --slots 32

A pulling consumer (as a browser session would) reads the newest metrics and snapshots every
0.4 s, so the numbers include what a view holds on to through the run.
"""

from __future__ import annotations

import argparse
import resource
import time


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("minutes", nargs="?", type=float, default=2.0)
    parser.add_argument("--every", type=int, default=2, help="K: a snapshot every K steps")
    parser.add_argument("--slots", type=int, default=32, help="memory slots N")
    parser.add_argument("--length", type=int, default=10, help="the copy task's longest input")
    parser.add_argument("--max-snapshots", type=int, default=60)
    parser.add_argument("--metrics-limit", type=int, default=5000)
    parser.add_argument("--history-limit", type=int, default=2000)
    parser.add_argument("--report", type=float, default=10.0, help="seconds between table rows")
    args = parser.parse_args()

    from ntmviz.app.live import RunConfig, new_run

    config = RunConfig(task_options={"max_length": args.length}, memory_slots=args.slots, memory_width=8,
                       controller_size=64, lr=1e-3, optimizer="adam", batch_size=8, steps=10**9,
                       snapshot_every=args.every, max_snapshots=args.max_snapshots,
                       metrics_limit=args.metrics_limit, history_limit=args.history_limit,
                       validate_every=0)  # memory alone: no validation (RunConfig validates every 500 steps)
    run = new_run(config)
    print(f"live run: copy up to {args.length}, N={args.slots}, a snapshot every {args.every} steps, "
          f"at most {args.max_snapshots} snapshots, {args.metrics_limit} metrics, "
          f"{args.history_limit} history points; {args.minutes:g} minutes\n")
    header = f"{'time s':>7} {'step':>8} {'RSS MiB':>8} {'snapshots':>9} {'oldest..newest step':>21} {'metrics':>8} {'history':>8} {'pulled':>8}"
    print(header)
    print("-" * len(header))
    start = time.monotonic()
    end = start + args.minutes * 60
    next_report = start
    cursor, pulled, held = 0, 0, []
    run.start()
    try:
        while time.monotonic() < end and run.alive:
            new = run.metrics_since(cursor)  # what a view would stream
            if new:
                cursor = new[-1].step
                pulled += len(new)
            _, held = run.snapshots()  # what a view would hold
            now = time.monotonic()
            if now >= next_report:
                span = f"{held[0].step}..{held[-1].step}" if held else "-"
                print(f"{now - start:7.0f} {run.step:8d} {rss_mb():8.1f} {len(held):9d} {span:>21} "
                      f"{len(run.metrics_since(0)):8d} {len(run.history['loss']):8d} {pulled:8d}", flush=True)
                next_report += args.report
            time.sleep(0.4)
    finally:
        run.stop()
        run.join(30)
    print(f"\nstatus {run.status}; thread alive: {run.alive}")


if __name__ == "__main__":
    main()
