"""TensorBoard: the event files each run writes while it trains (results.events) and `memorization board`,
read back with TensorBoard's own reader and server, and opened in a real browser (headless Chromium through
Selenium); the findings page in the same browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memorization import config as S
from memorization.engine.data import build_noisy_dataset
from memorization.engine.train import train_run
from memorization.results.events import board_dir, hparams_of, mean_dir

from .conftest import ROOT, write_config
from .test_faults import make

pytest.importorskip("tensorboard")


def accumulated(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    return events


def series(events, tag: str) -> dict[int, float]:
    return {e.step: e.value for e in events.Scalars(tag)}


def test_event_files_hold_every_evaluation_as_progress_csv_and_the_evaluation_files_do(tmp_path):
    spec, data = make()
    train_run(spec, data, tmp_path, progress=False, board=hparams_of(spec.as_dict(), "e: width=16"))
    progress = pd.read_csv(tmp_path / "progress.csv").set_index("step")
    run = accumulated(mean_dir(tmp_path))
    for tag, column in (
        ("loss/train", "train_loss"),
        ("accuracy/train", "train_acc"),
        ("accuracy/validation", "val_acc"),
    ):
        for name, col in ((tag, column), (f"std over seeds/{tag}", f"{column}_std")):
            got = series(run, name)
            assert sorted(got) == progress.index.tolist()
            np.testing.assert_allclose([got[s] for s in progress.index], progress[col], rtol=1e-5, atol=1e-7)
    assert list(series(run, "learning rate").values()) == pytest.approx([spec.lr] * 5)  # float32 in the event
    for i, seed in enumerate(spec.seeds):  # each seed's own folder: its values of each evaluation file
        own = accumulated(board_dir(tmp_path) / f"seed_{seed}")
        for step, value in series(own, "accuracy/validation").items():
            with np.load(tmp_path / "evals" / f"step_{step:09d}.npz") as ev:
                assert value == pytest.approx(float(ev["val_acc"][i]), abs=1e-7)
    assert "_hparams_/session_start_info" in run.summary_metadata
    hparams = run.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    assert b"train_size" in hparams and b"e: width=16" in hparams


def test_event_files_change_nothing_else_and_can_be_turned_off(tmp_path):
    spec, data = make()
    train_run(spec, data, tmp_path / "off", progress=False)
    train_run(spec, data, tmp_path / "on", progress=False, board=hparams_of(spec.as_dict()))
    assert not board_dir(tmp_path / "off").exists() and board_dir(tmp_path / "on").exists()
    off, on = (sorted((tmp_path / d / "evals").iterdir()) for d in ("off", "on"))
    for a, b in zip(off, on, strict=True):
        with np.load(a) as x, np.load(b) as y:
            assert all(np.array_equal(x[k], y[k], equal_nan=True) for k in x.files)
    assert (
        json.loads((tmp_path / "on" / "end.json").read_text())["files"]
        == json.loads((tmp_path / "off" / "end.json").read_text())["files"]
    )  # the same files, the same hashes: event files are not among a run's files


def test_a_resumed_run_shows_each_step_once(tmp_path):
    import memorization.engine.train as T

    spec, data = make(checkpoints={"unit": "epoch", "at": [0, 1]})  # steps 0, 3 and the end
    board = hparams_of(spec.as_dict())

    class Stop(Exception):
        pass

    original, calls = T.seed_group_step, {"n": 0}

    def stop_after_seven(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 7:  # into epoch 3, after the evaluation of step 6
            raise Stop
        return original(*args, **kwargs)

    T.seed_group_step, every = stop_after_seven, T.RESUME_EVERY_S
    T.RESUME_EVERY_S = 3600.0  # the resume point is the checkpoint of step 3: step 6 is trained again
    try:
        with pytest.raises(Stop):
            train_run(spec, data, tmp_path, progress=False, board=board)
    finally:
        T.seed_group_step, T.RESUME_EVERY_S = original, every
    assert sorted(series(accumulated(mean_dir(tmp_path)), "accuracy/validation")) == [0, 3, 6]
    train_run(spec, data, tmp_path, progress=False, board=board)
    events = accumulated(mean_dir(tmp_path)).Scalars("accuracy/validation")
    assert [e.step for e in events] == [0, 3, 6, 9, 12]  # the killed process's step 6 purged, not doubled


def test_a_metric_tables_headline_values_join_its_runs_board(tmp_path):
    from memorization import catalog
    from memorization.pipeline.jobs import to_board

    spec, data = make()
    train_run(spec, data, tmp_path, progress=False, board=hparams_of(spec.as_dict()))
    csr = pd.DataFrame(
        [
            {"seed": s, "step": t, "split": split, "csr": 0.1 * s + t / 100}
            for s in spec.seeds
            for t in (0, 12)
            for split in ("val", "train")
        ]  # fmt: skip
    )
    to_board(catalog.table("csr"), csr, tmp_path)
    scores = pd.DataFrame(
        [
            {"seed": s, "example": e, "is_noisy": e < 3, **{c.name: float(e + s) for c in catalog.SCORES}}
            for s in spec.seeds
            for e in range(10)
        ]  # fmt: skip
    )
    to_board(catalog.table("scores"), scores, tmp_path)
    run = accumulated(mean_dir(tmp_path))
    assert series(run, "critical sample ratio/val") == pytest.approx({0: 0.05, 12: 0.17})
    assert "accuracy/validation" in run.Tags()["scalars"]  # beside the training job's values
    seed1 = accumulated(board_dir(tmp_path) / "seed_1")
    assert series(seed1, "critical sample ratio/train") == pytest.approx({0: 0.1, 12: 0.22})
    histogram = seed1.Histograms("scores/aum (noisy examples)")
    assert [h.step for h in histogram] == [12] and histogram[0].histogram_value.num == 3  # at the run's end


# ----------------------------------------------------------------------------- memorization board


def board_config(tmp_path: Path):
    config = {
        "defaults": {"dataset": "digits", "arch": "mlp", "width": 16, "lr": 0.05},
        "experiments": {"widths": {"spec": {"train_size": 96, "epochs": 4}, "grid": {"width": [16]}, "seeds": 2}},
    }
    path = write_config(tmp_path, config)
    loaded = S.load_config(files=[path], workdir=tmp_path)
    (spec,) = loaded.experiments["widths"]
    return path, loaded, spec


def get_json(port: int, path: str, **query):
    url = f"http://127.0.0.1:{port}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def wait_for(condition, seconds: float, what: str):
    """condition()'s first truthy value within `seconds` (polled), else a failure naming `what`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = condition()
        except OSError:  # the server is not listening yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}")
        time.sleep(0.5)


@pytest.fixture
def live_board(tmp_path):
    """`memorization board` on a config whose one run was killed during its third epoch, not finished: the
    server's port, the run's folder, its spec and data."""
    import memorization.engine.train as T

    path, loaded, spec = board_config(tmp_path)
    run_dir = tmp_path / "results" / "runs" / spec.run_id
    data = build_noisy_dataset(spec.data)
    original, calls = T.seed_group_step, {"n": 0}

    class Killed(Exception):
        pass

    def stop(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 7:
            raise Killed
        return original(*args, **kwargs)

    T.seed_group_step, every = stop, T.RESUME_EVERY_S
    T.RESUME_EVERY_S = 0.0  # it resumes from its evaluation at step 6
    try:
        with pytest.raises(Killed):
            train_run(spec, data, run_dir, progress=False, board=hparams_of(spec.as_dict(), loaded.labels[spec.run_id]))
    finally:
        T.seed_group_step, T.RESUME_EVERY_S = original, every
    from memorization.pipeline.board import free_port, run_names

    (name,) = [n for n, folder in run_names(loaded, tmp_path / "results").items() if folder == board_dir(run_dir)]

    port = free_port("127.0.0.1")
    server = subprocess.Popen(
        [sys.executable, "-m", "memorization", "board", str(path), "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield port, run_dir, spec, data, name
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_board_shows_a_run_still_training_and_its_later_evaluations_as_they_come(live_board):
    port, run_dir, spec, data, name = live_board

    def validation_steps():
        points = get_json(port, "/data/plugin/scalars/scalars", run=f"{name}/mean", tag="accuracy/validation")
        return [step for _, step, _ in points]

    tags = wait_for(
        lambda: get_json(port, "/data/plugin/scalars/tags").get(f"{name}/mean"), 60, f"TensorBoard lists {name}"
    )
    assert {"accuracy/validation", "loss/train", "learning rate"} <= set(tags)
    assert not (run_dir / "end.json").exists()  # still training (killed mid-run, not finished)
    assert validation_steps() == [0, 3, 6]
    assert f"{name}/seed_1" in get_json(port, "/data/runs")
    train_run(spec, data, run_dir, progress=False, board=hparams_of(spec.as_dict()))  # it goes on, and ends
    wait_for(lambda: validation_steps() == [0, 3, 6, 9, 12], 30, "TensorBoard shows the evaluations written since")


# ----------------------------------------------------------------------------- in a real browser

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOTS = os.environ.get("MEMORIZATION_SCREENSHOTS")  # docs/images: `make screenshots` keeps them there


def browser():
    """Headless Chromium through Selenium (Debian's chromium and chromium-driver, which `make test` installs
    where it can); skipped only where neither is installed, and never in CI (.ci/run installs them)."""
    if not (CHROMIUM and DRIVER):
        if os.environ.get("CI"):
            pytest.fail("CI installs chromium and chromium-driver (.ci/run): they must be there")
        pytest.skip("no Chromium: apt-get install chromium chromium-driver (make test does, as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def screenshot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    if SCREENSHOTS:
        shutil.copy(path, Path(SCREENSHOTS) / name)
    return path


def page_text_contains(driver, text: str):
    return lambda: text in driver.find_element("tag name", "body").text


def test_tensorboard_in_a_browser_shows_the_runs_curves_and_settings(live_board, tmp_path):
    port, run_dir, spec, _, name = live_board
    wait_for(lambda: get_json(port, "/data/runs"), 60, "TensorBoard serves the runs")
    driver = browser()
    try:
        driver.get(f"http://127.0.0.1:{port}/#timeseries")
        for text in ("/validation", "learning rate", "std over seeds"):  # a card's title breaks after its group
            wait_for(page_text_contains(driver, text), 60, f"the time series view shows the run's {text}")
        wait_for(page_text_contains(driver, name), 30, "the run is listed by its name")
        assert screenshot(driver, tmp_path, "tensorboard-scalars.png").stat().st_size > 10_000
        driver.get(f"http://127.0.0.1:{port}/#hparams")
        wait_for(page_text_contains(driver, "train_size"), 60, "the HParams view lists the run's settings")
        screenshot(driver, tmp_path, "tensorboard-hparams.png")
    finally:
        driver.quit()


def test_the_findings_page_in_a_browser_shows_its_figures_and_verdicts(tiny_done, tmp_path):
    page = tiny_done / "results" / "config" / "findings.html"
    driver = browser()
    try:
        driver.get(page.as_uri())
        images = driver.find_elements("tag name", "img")
        assert images and all(driver.execute_script("return arguments[0].naturalWidth", i) > 100 for i in images)
        verdicts = [e.text for e in driver.find_elements("css selector", ".verdict")]
        assert verdicts and set(verdicts) <= {"holds", "fails", "not run"}
        assert "Scorecard:" in driver.find_element("tag name", "h2").text
        screenshot(driver, tmp_path, "findings.png")
    finally:
        driver.quit()


def test_the_readme_shows_the_board_first_in_while_it_runs():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## While it runs") :]
    assert section.index("memorization board") < section.index("memorization runs")
    assert (ROOT / "docs" / "images" / "tensorboard-scalars.png").exists()
