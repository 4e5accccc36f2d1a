"""Load: many browser sessions on one `panel serve apps/explorer.py`, one of them training.

    python benchmarks/load.py                  # 20 sessions playing for 60 s, session 1 training
    python benchmarks/load.py --sessions 5 --seconds 20

Starts `panel serve apps/explorer.py` on a free loopback port, opens N pages in headless
Chromium (one context each: separate sessions), presses Play with Loop on in every page but the
first, and in the first opens the Train tab and presses Start. For `--seconds` it samples, every
`--every` seconds: the server's resident memory, the training step the first page shows (its
status line, streamed by the server), and how far each playing page has got. Then it opens one
more session and times it until every view has drawn, twice: in the same Chromium, every page at
the same priority (the worst case: 21 renderers on this machine's cores), then in a second Chromium
with the first one's processes at nice 19. The second stands the 20 pages in for other people's
browsers on their own machines: they still play, train and load the server, but no longer take
the new user's cores. The target is judged on that one; both are printed. It prints one row per
sample, a summary and the issue's four targets as yes or no (exit code 1 unless all are met).

Errors counted: console errors and page errors in any page, closed websockets, requests that
tried to leave the machine (all are aborted: Chromium resolves no host but localhost, and every
request elsewhere is refused, as in the browser tests), and ERROR lines in the server's log.
Loopback only; everything it starts is stopped on the way out, and `--deadline` bounds the run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from _serve import CHROMIUM, CHROMIUM_ARGS, GuardedBrowser, chromium, free_port, wait_until_up  # noqa: E402

SHARED_PATIENCE = 120.0  # seconds a new page in the load's own Chromium gets to draw

# Every painted view, through Panel's shadow roots: [[view, step, frames, steps], ...]
VIEWS_JS = """() => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('ntmviz-view'))
        out.push([el.dataset.view, Number(el.dataset.step), Number(el.dataset.frames), Number(el.dataset.steps)]);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out;
}"""

# The Train tab's status line ("Running · step 1,234 of 100,000 · ..."): the step it shows.
TRAINING_STEP_JS = """() => {
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) { const hit = walk(el.shadowRoot); if (hit !== null) return hit; }
      if (el.tagName === 'P') {
        const m = /step ([0-9,]+) of [0-9,]+/.exec(el.textContent || '');
        if (m) return Number(m[1].replace(/,/g, ''));
      }
    }
    return null;
  };
  const step = walk(document);
  return step === null ? -1 : step;
}"""


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def chromium_descendants(root: int) -> list[int]:
    """The Chromium processes below `root` in the process tree (browser, zygotes, renderers, GPU)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # the process ended while we looked
                continue
            head, _, tail = stat.rpartition(")")
            parents[int(entry.name)] = int(tail.split()[1])
            names[int(entry.name)] = head.partition("(")[2]
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid:
                frontier.append(child)
                if names[child].startswith(("chromium", "chrome")):
                    found.append(child)
    return found


class Session:
    """One page of the explorer, its errors collected."""

    def __init__(self, browser, url: str, index: int, errors: list[str], timeout: float = 120.0):
        self.index, self.errors, self.closing = index, errors, False
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self._error(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda exc: self._error(f"pageerror: {exc}"))
        self.page.on("websocket", lambda ws: ws.on("close", lambda *_: self._error("websocket closed")))
        start = time.monotonic()
        try:
            self.page.goto(url, timeout=1000 * timeout)
            self.wait_painted(timeout=max(1.0, timeout - (time.monotonic() - start)))
        except BaseException:
            self.close()
            raise
        self.open_seconds = time.monotonic() - start

    def _error(self, text: str) -> None:
        if "favicon" not in text and not self.closing:
            self.errors.append(f"session {self.index}: {text}")

    def views(self) -> list:
        return self.page.evaluate(VIEWS_JS)

    def wait_painted(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            views = self.views()
            if len(views) >= 5 and all(v[2] >= 1 for v in views):
                return
            self.page.wait_for_timeout(50)
        raise TimeoutError(f"session {self.index} did not draw within {timeout} s")

    def play(self) -> None:
        self.page.get_by_role("button", name="Loop", exact=True).click()
        self.page.get_by_role("button", name="Play", exact=True).click()

    def frames(self) -> int:
        """Animation frames this page has drawn so far (the renderer's own counter: cheap to read)."""
        return self.page.evaluate("() => (window.__ntmviz || {}).frames || 0")

    def start_training(self) -> None:
        self.page.locator(".bk-tab", has_text=re.compile("^Train$")).first.click()
        self.page.get_by_role("button", name="Start", exact=True).click(timeout=60_000)

    def training_step(self) -> int:
        """The training step the page shows (-1 before the first one)."""
        return self.page.evaluate(TRAINING_STEP_JS)

    def close(self) -> None:
        self.closing = True  # what closing the page itself causes is not an error of the load
        self.context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20, help="pages open at once (the first trains)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they play")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--deadline", type=float, default=900.0, help="the whole run is stopped after this")
    args = parser.parse_args()

    port = free_port()
    log_path = Path(tempfile.mkstemp(prefix="ntmviz-load-", suffix=".log")[1])
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "panel", "serve", str(ROOT / "apps" / "explorer.py"), "--port", str(port),
             "--address", "127.0.0.1", f"--allow-websocket-origin=127.0.0.1:{port}"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    # --deadline: whatever hangs, the server goes, then this process (its Playwright driver sees
    # its pipe close and takes Chromium down with it)
    def give_up() -> None:
        print(f"\nload.py: stopped at the {args.deadline:g} s deadline", file=sys.stderr, flush=True)
        server.kill()
        os._exit(3)
    watchdog = threading.Timer(args.deadline, give_up)
    watchdog.daemon = True
    watchdog.start()
    errors: list[str] = []
    sessions: list[Session] = []
    try:
        url = f"http://127.0.0.1:{port}/explorer"
        wait_until_up(url, timeout=180)
        rss_idle = rss_mb(server.pid)
        with chromium() as browser:
            for i in range(args.sessions):
                sessions.append(Session(browser, url, i + 1, errors))
            opens = [s.open_seconds for s in sessions]
            trainer, players = sessions[0], sessions[1:]
            trainer.start_training()
            for s in players:
                s.play()
            print(f"{args.sessions} sessions open (each {min(opens):.1f}-{max(opens):.1f} s to draw); "
                  f"1 training, {len(players)} playing for {args.seconds:g} s; server RSS idle {rss_idle:.0f} MiB\n")
            header = (f"{'time s':>6} {'server RSS MiB':>14} {'server CPU %':>12} {'training step':>13} "
                      f"{'pages advancing':>15} {'fps/page':>8} {'load 1m':>7} {'errors':>6}")
            print(header)
            print("-" * len(header))
            start = last = time.monotonic()
            last_frames = [s.frames() for s in players]
            last_cpu = cpu_seconds(server.pid)
            rss, steps = [], []
            # the server's memory once a second from a thread: the table's samples are slow to take
            # (each reads every page), too few to tell a leak from a plateau
            memory: list[float] = []
            sampling = threading.Event()

            def sample_memory() -> None:
                while not sampling.wait(1.0):
                    memory.append(rss_mb(server.pid))
            sampler = threading.Thread(target=sample_memory, daemon=True)
            sampler.start()
            while True:
                now = time.monotonic()
                elapsed, dt = now - start, max(1e-6, now - last)
                frames = [s.frames() for s in players]
                advancing = sum(f > g for f, g in zip(frames, last_frames))
                fps = sum(f - g for f, g in zip(frames, last_frames)) / len(players) / dt
                cpu = cpu_seconds(server.pid)
                cpu_pct = 100 * (cpu - last_cpu) / dt
                last_frames, last_cpu, last = frames, cpu, now
                rss.append(rss_mb(server.pid))
                steps.append(trainer.training_step())
                print(f"{elapsed:6.0f} {rss[-1]:14.0f} {cpu_pct if elapsed else float('nan'):12.0f} {steps[-1]:13d} "
                      f"{advancing:>8d} of {len(players):<3d} {fps if elapsed else float('nan'):8.1f} "
                      f"{os.getloadavg()[0]:7.1f} {len(errors):6d}", flush=True)
                if elapsed >= args.seconds:
                    break
                time.sleep(min(args.every, max(0.0, args.seconds - elapsed)))
            # The server's part of a new session (the page and its document, made by the app's code),
            # then the whole of it in a browser that shares this machine's cores with every other page.
            start_get = time.monotonic()
            with urllib.request.urlopen(url, timeout=120) as response:
                response.read()
            answered = time.monotonic() - start_get
            sampling.set()
            sampler.join()
            try:
                shared_session = Session(browser, url, args.sessions + 1, errors, timeout=SHARED_PATIENCE)
                open_shared = f"{shared_session.open_seconds:.1f} s"
                sessions.append(shared_session)  # left open: closing a page logs the server's sends to it
            except (PlaywrightTimeout, TimeoutError):  # as errors; so is one that never drew
                open_shared = f"not within {SHARED_PATIENCE:g} s"
            # The same, the load's Chromium at nice 19 (other people's machines) and the new
            # session in a Chromium of its own at normal priority. Set on every process the first
            # Chromium has, renderers included; and on its autogroup, because Playwright starts
            # Chromium in a session of its own, and where the kernel groups by session
            # (sched_autogroup) a process's nice level only counts inside its own group.
            reniced = chromium_descendants(os.getpid())
            for pid in reniced:
                try:
                    os.setpriority(os.PRIO_PROCESS, pid, 19)
                    Path(f"/proc/{pid}/autogroup").write_text("19")
                except (ProcessLookupError, FileNotFoundError):  # gone meanwhile, or no autogroups
                    pass
            start_get = time.monotonic()
            with urllib.request.urlopen(url, timeout=120) as response:
                response.read()
            answered_niced = time.monotonic() - start_get
            own = GuardedBrowser(browser.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                                             args=CHROMIUM_ARGS))
            try:
                cpu_before, opened_at = cpu_seconds(server.pid), time.monotonic()
                new_session = Session(own, url, args.sessions + 2, errors)
                open_new = new_session.open_seconds
                server_share = (cpu_seconds(server.pid) - cpu_before) / (time.monotonic() - opened_at)
                still_training = trainer.training_step()
                log_seen = log_path.read_text(errors="replace")  # the server's log up to the end of the load
                new_session.closing = True
            finally:
                own.close()
            errors.extend(f"new session's own browser tried to leave the machine: {u}" for u in own.off_machine)
            # the pages are not closed one by one: under this load closing a playing page's context
            # took 1-4 minutes each (measured); leaving this block closes the whole browser at once
            for s in sessions:
                s.closing = True  # what closing does to the pages is not an error of the load
        server_errors = [line for line in log_seen.splitlines() if "ERROR" in line or "Traceback" in line]
        errors.extend(f"server: {line}" for line in server_errors)
        streamed = sum(b > a for a, b in zip(steps, steps[1:]))
        # The four targets, each a yes or no: no errors; memory bounded (the second half of
        # the run peaks at most 10% above the first half: a leak grows without end, a cache levels off);
        # training streamed (its step advanced in at least 80% of the intervals); a new session < 5 s.
        half = len(memory) // 2
        bounded = len(memory) >= 10 and max(memory[half:]) <= 1.10 * max(memory[:half])
        streaming = streamed >= 0.8 * (len(steps) - 1)
        verdicts = {"0 errors": not errors, "memory bounded": bounded, "training streamed": streaming,
                    "new session drawn under 5 s": open_new < 5}
        print()
        print(f"errors                      {len(errors)}")
        print(f"server RSS                  idle {rss_idle:.0f} MiB, with the sessions {memory[0]:.0f} -> "
              f"{max(memory):.0f} (peak) -> {memory[-1]:.0f} MiB at the end; peak of the first half "
              f"{max(memory[:half]):.0f}, of the second {max(memory[half:]):.0f} ({len(memory)} samples, 1 s apart)")
        print(f"training kept streaming     step {steps[0]} -> {steps[-1]} -> {still_training}; "
              f"advanced in {streamed} of {len(steps) - 1} intervals")
        print(f"a new session               drawn in {open_new:.1f} s by a Chromium of its own while the load's "
              f"Chromium ({len(reniced)} processes) ran at nice 19 (the server answered its page in "
              f"{answered_niced:.1f} s and used {100 * server_share:.0f}% of a core meanwhile); "
              f"{open_shared} in the load's Chromium, every page at one priority (the server answered in "
              f"{answered:.1f} s); {len(players)} pages playing and 1 training, on this machine's "
              f"{os.cpu_count()} cores")
        print("targets                     " + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in verdicts.items()))
        for e in errors[:20]:
            print("  " + e)
        return 0 if all(verdicts.values()) else 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        watchdog.cancel()
        if errors:
            print(f"server log kept: {log_path}")
        else:
            log_path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
