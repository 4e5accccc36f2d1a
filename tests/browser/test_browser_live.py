"""The live app in real Chromium with every request off the machine blocked: closing or reloading
the page with a run going, and one step across the Explore and Train tabs (also while playing)."""

from __future__ import annotations

import time

from _serve import chromium, served

from ntmviz.app.live import RunConfig
from ntmviz.app.training_view import TrainingView

LOCAL = ("http://127.0.0.1", "http://localhost", "ws://127.0.0.1", "ws://localhost", "data:", "blob:")


def wait_for(predicate, timeout=120.0, what="condition", page=None):
    """Poll `predicate` until truthy. With `page`, wait through Playwright so the page's events
    (e.g. dialogs) are handled meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if page is not None:
            page.wait_for_timeout(100)
        else:
            time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def offline_page(browser, blocked: list[str]):
    """A page whose requests off the machine are refused (and recorded in `blocked`)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)

    def route(r):
        if r.request.url.startswith(LOCAL):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    return context, context.new_page()


def small_view(folder):
    return TrainingView(RunConfig(task_options={"max_length": 3}, memory_slots=8, memory_width=5, controller_size=16,
                                  lr=1e-3, optimizer="adam", batch_size=4, snapshot_every=50),
                        save_folder=str(folder), folder=str(folder), period=300, show_views=False)


def test_closing_the_page_pauses_its_run_at_once(tmp_path):
    views, docs, blocked = [], [], []

    def factory():
        import panel as pn

        views.append(small_view(tmp_path))
        docs.append(pn.state.curdoc)
        return views[-1]

    # Sessions live 10 minutes here: only the lost connection itself can pause the run in time.
    with served(factory, session_lifetime_ms=600_000) as url, chromium() as browser:
        context, page = offline_page(browser, blocked)
        page.goto(url)
        page.get_by_role("button", name="Start", exact=True).click()
        view = views[-1]
        run = wait_for(lambda: view.run, what="the run to start")
        wait_for(lambda: run.step >= 3, what="a few steps")
        page.close()
        wait_for(lambda: run.status == "paused", what="the run to pause after the page closed")
        assert run.alive  # paused, not yet stopped: the session lives on until the server drops it
        held = run.step
        time.sleep(0.5)
        assert run.step == held
        # the backstop, as the server calls it (on its event loop) when it ends the session
        docs[-1].add_next_tick_callback(lambda: view._session_destroyed(None))
        assert run.join(30) and run.status == "stopped"
        context.close()
    assert not blocked, blocked


def guard_in_page(page, armed: bool) -> None:
    """Wait until the page's own copy of the LeaveGuard is (dis)armed: the server arms it first,
    and a reload before the page hears of it would rightly not ask."""
    page.wait_for_function("""(armed) => [...Bokeh.documents[0]._all_models.values()].some(m =>
        m.data != null && typeof m.data === "object" && String(m.data.type).startsWith("LeaveGuard")
        && m.data.active === armed)""", arg=armed, timeout=120_000)


def reload_soon(page) -> None:
    """Ask the page to reload itself, as the reload button does (without waiting for it)."""
    page.evaluate("() => { setTimeout(() => location.reload(), 0); }")


def test_reloading_with_a_run_going_asks_first(tmp_path):
    views, blocked, dialogs = [], [], []

    def factory():
        views.append(small_view(tmp_path))
        return views[-1]

    with served(factory, session_lifetime_ms=600_000) as url, chromium() as browser:
        context, page = offline_page(browser, blocked)
        page.on("dialog", lambda d: (dialogs.append(d.type), d.dismiss()))  # the user says: stay
        page.goto(url)
        page.get_by_role("button", name="Start", exact=True).click()
        view, sessions = views[-1], len(views)  # (the server's readiness probe made a session too)
        run = wait_for(lambda: view.run, what="the run to start")
        wait_for(lambda: run.step >= 2, what="a few steps")
        guard_in_page(page, armed=True)
        reload_soon(page)
        wait_for(lambda: dialogs, what="the browser to ask before leaving", page=page)
        assert dialogs == ["beforeunload"]
        page.get_by_role("button", name="Pause", exact=True).click()  # the same page, still working
        wait_for(lambda: run.status == "paused", what="the pause")
        assert run.alive and len(views) == sessions  # nothing lost, no new session
        # saved and stopped: nothing left to lose, so a reload does not ask and goes ahead
        page.get_by_role("button", name="Save checkpoint").click()
        page.get_by_text("Saved").first.wait_for()
        page.get_by_role("button", name="Stop", exact=True).click()
        wait_for(lambda: run.ended, what="the stop")
        page.get_by_text("Stopped").first.wait_for()
        guard_in_page(page, armed=False)
        reload_soon(page)
        wait_for(lambda: len(views) == sessions + 1, what="the reloaded page's new session", page=page)
        page.get_by_role("button", name="Start", exact=True).wait_for()
        assert dialogs == ["beforeunload"]
        context.close()
    assert not blocked, blocked


def test_typing_a_setting_then_clicking_start_starts_the_run(tmp_path):
    """The click arrives while the typed value is still being applied: Panel then runs the click
    unlocked, and the curves (a raw Bokeh model) must still be reset safely."""
    views, blocked = [], []

    def factory():
        views.append(small_view(tmp_path))
        return views[-1]

    with served(factory, session_lifetime_ms=600_000) as url, chromium() as browser:
        context, page = offline_page(browser, blocked)
        page.goto(url)
        start = page.get_by_role("button", name="Start", exact=True)
        start.wait_for()
        view = views[-1]
        for steps in ("40", "30", "20"):
            page.get_by_label("Steps", exact=True).fill(steps)
            start.click()  # blurs the field: its change and the click reach the server together
            run = wait_for(lambda: view.run if view.run is not None and view.run.steps == int(steps) else None,
                           timeout=60, what=f"a run of {steps} steps to start")
            wait_for(lambda: run.ended, what="the run to end", page=page)
            page.get_by_text("Done").first.wait_for()
        context.close()
    assert not blocked, blocked


def click_tab(app, name: str) -> None:
    app.page.get_by_text(name, exact=True).first.click()


def on_train(views) -> bool:
    return "player" in views and "focus" not in views and views["player"]["frames"] >= 1


def on_explore(views) -> bool:
    return "focus" in views and all(views[n]["frames"] >= 1 for n in ("player", "memory", "heads", "focus"))


def start_small_run(app, explorer, length: int = 3):
    """On the Train tab: type a small run's settings and press Start; wait for its first snapshot
    in the views. Returns the run."""
    page = app.page
    for label, value in (("Longest input", str(length)), ("Memory slots (N)", str(2 * length)), ("Word width (M)", "5"),
                         ("Controller size", "16"), ("Steps", "100000"), ("Snapshot every (steps)", "5")):
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Start", exact=True).click()
    view = explorer.training
    run = wait_for(lambda: view.run, what=f"the run to start ({view.message})", page=page)
    app.wait(lambda v: on_train(v) and v["heads"]["frames"] >= 1, "the run's first snapshot in the Train tab's views")
    return run


def stop_run(app, explorer, run) -> None:
    """Stop the run from the page and wait until its end is shown (its last snapshot pulled)."""
    app.page.get_by_role("button", name="Stop", exact=True).click()
    wait_for(lambda: run.ended and not explorer.training.pulling, what="the stop shown", page=app.page)


def test_the_train_tab_shows_its_own_run_and_shares_the_step(browser, browser_helpers, tmp_path):
    """Before Start the Train tab shows no model (the Explore tab's is another: 128 slots); once
    a run shows a snapshot, both tabs show it, on one step t."""
    with browser_helpers.explorer_on(browser, ("copy-ntm",), tmp_path / "checkpoints") as (app, explorer):
        app.click("Last step")
        click_tab(app, "Train")
        app.page.get_by_text("Nothing trained yet. Press Start").first.wait_for()
        app.page.wait_for_timeout(500)
        assert app.views() == {}  # no views of the Explore tab's model under the form
        run = start_small_run(app, explorer)
        episode = explorer.state.episode  # the run's snapshot (the shipped model has 128 slots)
        assert episode.memory.shape[1] == 6 and "training_step" in episode.meta
        app.click("Last step")
        last = episode.steps - 1
        app.wait(lambda v: on_train(v) and {x["step"] for x in v.values()} == {last}, "the Train tab at the last step")
        stop_run(app, explorer, run)  # its last snapshot comes on show: the same probe, the step kept
        click_tab(app, "Explore")
        assert explorer.state.episode is explorer.training.snapshot.episode  # the run's newest, also in Explore
        app.wait(lambda v: on_explore(v) and v["memory"]["steps"] == episode.steps, "the snapshot in Explore")
        app.page.wait_for_timeout(500)  # a late reset from the server would land here
        app.wait_painted(step=last)
        assert app.step() == last


def test_switching_tabs_while_playing_never_goes_back(browser, browser_helpers, tmp_path):
    with browser_helpers.explorer_on(browser, ("copy-ntm",), tmp_path / "checkpoints") as (app, explorer):
        click_tab(app, "Train")
        # a probe of 51 steps: 51 s at 1 a second, so the switches happen mid-episode even when a
        # tab switch takes seconds (the Train form holds every model's fields since issue 27)
        run = start_small_run(app, explorer, length=25)
        stop_run(app, explorer, run)
        app.set_slider(1, name="Speed")
        app.click("Play")
        app.wait(lambda v: v["player"]["step"] >= 1, "playback to start")
        seen = [app.step()]
        for tab, ready in (("Explore", on_explore), ("Train", on_train), ("Explore", on_explore)):
            click_tab(app, tab)
            views = app.wait(lambda v: ready(v) and v, f"the {tab} tab")
            assert views["player"]["playing"] is True  # playback goes on in the other tab's player
            seen.append(app.step())
            app.page.wait_for_timeout(300)
            seen.append(app.step())
        assert seen == sorted(seen), f"the step went back: {seen}"
        assert seen[-1] < app.steps() - 1 or seen[0] > 0
        app.click("Pause")


def test_open_a_checkpoint_file(explorer_page):
    """A checkpoint from anywhere on the user's disk: listed as opened, chosen, and run."""
    from pathlib import Path

    app = explorer_page
    lstm = Path(__file__).resolve().parent.parent.parent / "checkpoints" / "copy-lstm.safetensors"
    app.page.get_by_role("button", name="Type an input · files").click()  # the files are one click away
    app.page.get_by_role("button", name="Open checkpoint", exact=True).set_input_files(str(lstm))
    # its episode on show: recorded by the opened model (an LSTM baseline: no memory to show)
    app.page.get_by_text("from copy-lstm.safetensors").first.wait_for()
    app.page.get_by_text("comes from a model with no memory").first.wait_for()
    app.wait(lambda v: v["sequence"]["steps"] == 41 and v["sequence"]["frames"] >= 1, "its sequence drawn")
    selected = app.page.get_by_label("Checkpoint", exact=True).first.evaluate(
        "(el) => el.options[el.selectedIndex].text")
    assert selected == "copy-lstm.safetensors (opened)"
    app.assert_no_errors()
