"""The search page in a real browser: `favor serve` subprocess + Debian's headless Chromium via playwright.

Slow (starts a server and a browser). Uses transcript mode, which needs no model, over the planted store
of tests/retrieval_search (real LanceDB, a real short video for the thumbnail and the player).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.retrieval_search.planted_store import build_store, make_media

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_argv(db: str, port: int) -> list[str]:
    """`favor serve` through the CLI entry point when wired, else the command module's own main."""
    from pipelines.cli import main as cli_main

    args = ["--db", db, "--host", "127.0.0.1", "--port", str(port)]
    if "pipelines.cli.serve_command" in cli_main.COMMAND_MODULES:
        return [sys.executable, "-m", "pipelines.cli.main", "serve", *args]
    return [sys.executable, "-m", "pipelines.cli.serve_command", *args]


@pytest.fixture()
def server(tmp_path):
    media = make_media(tmp_path / "media")
    db = tmp_path / "db"
    build_store(db, str(media["video"]))
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("FAVOR_API_TOKEN", None)
    log = open(tmp_path / "serve.log", "wb")
    process = subprocess.Popen(_serve_argv(str(db), port), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"favor serve did not start: {(tmp_path / 'serve.log').read_text()[-500:]}")
            time.sleep(0.2)
        yield base
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def test_search_page_shows_hits_and_plays_the_span(server, tmp_path):
    if not (shutil.which("chromium") and Path(CHROMIUM).exists()):
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(server + "/")
            page.wait_for_function("document.getElementById('status').textContent.includes('windows indexed')")
            assert page.text_content("#status") == "3 videos, 9 windows indexed"
            page.fill("#q", "zebra")
            page.select_option("#mode", "transcript")
            page.click("#go")
            page.wait_for_selector("li.hit")
            hits = page.query_selector_all("li.hit")
            assert len(hits) == 1
            assert hits[0].query_selector(".uri").text_content() == "s3://bucket/dogs/c.webm"
            assert hits[0].query_selector(".span").text_content() == "0:03.0-0:06.0"
            assert hits[0].query_selector(".transcript").text_content() == "zebra stripes in the sun"
            assert page.text_content("#status").startswith("1 hit (transcript,")

            # a hit of the real video: its thumbnail loads and the player gets the clip from t_start
            page.fill("#q", "giraffe")
            page.click("#go")
            page.wait_for_function("document.querySelector('li.hit .transcript')?.textContent.includes('giraffe')")
            first = page.query_selector("li.hit")
            assert first.get_attribute("data-video-id") == "aa11"
            page.wait_for_function("document.querySelector('li.hit img').complete && "
                                   "document.querySelector('li.hit img').naturalWidth > 0")
            assert page.evaluate("document.querySelector('li.hit img').naturalWidth") == 320
            first.click()
            src = page.evaluate("document.getElementById('player').src")
            assert src == server + "/videos/aa11/clip?start=4&end=6"
            page.wait_for_function("document.getElementById('player').readyState >= 1 || "
                                   "document.getElementById('player').error !== null", timeout=20_000)
            player = page.evaluate("({error: document.getElementById('player').error && "
                                   "document.getElementById('player').error.code, "
                                   "duration: document.getElementById('player').duration})")
            page.screenshot(path=str(artifacts / "search_page.png"), full_page=True)

            # a bad filter shows the server's one-line reason
            page.fill("#where", "secret>1")
            page.click("#go")
            page.wait_for_function("document.getElementById('status').className === 'error'")
            assert "unknown filter column" in page.text_content("#status")
        finally:
            browser.close()
    assert (artifacts / "search_page.png").stat().st_size > 10_000
    assert player["error"] is None, f"the player could not load the clip (MediaError code {player['error']})"
    assert player["duration"] == pytest.approx(2.0, abs=0.3)
