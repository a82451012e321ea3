"""pianogan serve in a real headless Chromium (selenium + Debian's chromium-driver): load the page,
press Generate, and wait until the take's audio element holds a playable WAV of the requested
length. Skipped, saying so, only when no Chromium / chromedriver is installed (.ci/run installs
them). With PIANOGAN_SCREENSHOT=docs/serve.png set, it also writes the README's screenshot
(PIANOGAN_SCREENSHOT_RUNS=DIR: of a trained run instead of the untrained tiny one)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from _serve_helpers import make_beat_run, make_run
from _train_data import free_port

from pianogan.serve import ServeConfig, create_app

SECONDS = 4.0
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> tuple[str, str] | None:
    driver = shutil.which("chromedriver")
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    tmp = tmp_path_factory.mktemp("browser")
    runs = os.environ.get("PIANOGAN_SCREENSHOT_RUNS") if os.environ.get("PIANOGAN_SCREENSHOT") else None
    if not runs:
        runs = make_run(tmp / "runs" / "tiny").parent
        make_beat_run(runs / "beat")
    port = free_port()
    cfg = ServeConfig(runs=Path(runs), cache_dir=tmp / "cache", port=port, n_iter=8, threads=1)
    srv = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.monotonic() + 300
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < end, "server did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/", tmp
    srv.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    found = find_browser()
    if found is None:
        pytest.skip("no Chromium + chromedriver on this machine (and none could be installed): "
                    "`apt-get install chromium chromium-driver`, as .ci/run does")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--mute-audio", "--window-size=1280,1000",
                 "--autoplay-policy=no-user-gesture-required",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=found[1]), options=opts)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, script: str, limit_s: float = 180.0, *args):
    """Run ``script`` until it returns something truthy (``limit_s`` is only a guard)."""
    end = time.monotonic() + limit_s
    while True:
        value = driver.execute_script(script, *args)
        if value:
            return value
        error = driver.execute_script("const e = document.getElementById('error');"
                                      "return e.hidden ? '' : e.textContent;")
        assert not error, f"the page shows an error: {error}"
        assert time.monotonic() < end, f"gave up waiting for: {script}"
        time.sleep(0.1)


AUDIO_READY = """
const a = document.querySelector('#takes-list .take audio');
if (!a || a.error || a.readyState < 2 || !isFinite(a.duration)) return null;
return {duration: a.duration, src: a.currentSrc, wav: a.canPlayType('audio/wav')};
"""


def test_page_generates_a_playable_take_of_the_requested_length(server, browser):
    url, tmp = server
    browser.get(url)
    wait_for(browser, "return document.querySelectorAll('#model option').length > 0;")
    # The shipped model comes first and plays three styles; the tiny run below it has none.
    assert browser.find_element("id", "style-row").is_displayed()
    styles = [o.get_attribute("value") for o in browser.find_elements("css selector", "#style option")]
    assert {"chorale", "keyboard", "quartet"} <= set(styles), styles
    # ... in any key, at its own truncation, from less than one training clip long
    assert browser.find_element("id", "key-row").is_displayed()
    keys = [o.get_attribute("value") for o in browser.find_elements("css selector", "#key option")]
    assert keys[0] == "" and len(keys) == 25 and "D minor" in keys, keys
    from pianogan.pretrained import load_pretrained

    own = load_pretrained()[0].cfg
    truncation = browser.execute_script("return Number(document.getElementById('truncation').value);")
    assert truncation == pytest.approx(own.truncation)
    # ... with its key changes as the model drifts, or one key throughout
    assert browser.find_element("id", "drift-row").is_displayed()
    drifts = [o.get_attribute("value") for o in browser.find_elements("css selector", "#drift option")]
    mine = f"{own.drift_seconds:g}"
    assert drifts[0] == "" and "90" in drifts and mine not in drifts[1:], drifts  # its own is the default
    assert ("0" in drifts) == (own.drift_seconds > 0), drifts  # "never" only where it drifts by itself
    assert browser.find_element("id", "tempo-row").is_displayed()  # it has a beat clock
    assert browser.find_element("id", "rubato-row").is_displayed()
    assert browser.execute_script("return Number(document.getElementById('seconds').min);") < 10
    browser.execute_script("const m = document.getElementById('model'); m.value = 'beat';"
                           "m.dispatchEvent(new Event('change'));")
    # a beat-clock model: its tempo and how loose its beat is can be set
    assert browser.find_element("id", "tempo-row").is_displayed()
    assert browser.find_element("id", "rubato-row").is_displayed()
    rubati = [o.get_attribute("value") for o in browser.find_elements("css selector", "#rubato option")]
    assert rubati == ["", "0", "0.25", "0.5", "1"], rubati
    browser.execute_script("document.getElementById('rubato').value = '0.25';")
    assert browser.execute_script("return readRequest().rubato;") == 0.25
    browser.execute_script("const m = document.getElementById('model'); m.value = 'tiny';"
                           "m.dispatchEvent(new Event('change'));")
    assert not browser.find_element("id", "style-row").is_displayed()  # the tiny run has no styles
    assert not browser.find_element("id", "key-row").is_displayed()  # ... and plays no notes
    assert not browser.find_element("id", "drift-row").is_displayed()  # ... and has no global latent
    browser.execute_script("const s = document.getElementById('seconds'); s.value = arguments[0];"
                           "s.dispatchEvent(new Event('input'));", SECONDS)
    seed = browser.find_element("id", "seed")
    seed.clear()
    seed.send_keys("7")
    browser.find_element("id", "generate").click()
    audio = wait_for(browser, AUDIO_READY)
    assert abs(audio["duration"] - SECONDS) < 0.01, audio
    assert audio["src"].endswith("/audio.wav") and audio["wav"] in ("maybe", "probably")
    # it plays: the element's clock moves
    played = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const a = document.querySelector('#takes-list .take audio');
        a.play().then(() => setTimeout(() => { a.pause(); done(a.currentTime); }, 400),
                      (e) => done('play failed: ' + e.message));""")
    assert isinstance(played, (int, float)) and played > 0, played
    img = wait_for(browser, "const i = document.querySelector('#takes-list .take img');"
                            "return i && i.complete && i.naturalWidth;")
    assert img > 300  # the spectrogram PNG, with its axes
    title = browser.find_element("css selector", "#takes-list .take-title").text
    assert "seed 7" in title and "4.0 s" in title
    links = [a.get_attribute("href") for a in browser.find_elements("css selector", "#takes-list .links a")
             if a.is_displayed()]
    assert any(h.endswith("audio.wav?download=1") for h in links)
    assert any(h.endswith("generated.json?download=1") for h in links)
    shot = os.environ.get("PIANOGAN_SCREENSHOT")
    if shot:
        take_screenshot(browser, shot)


def take_screenshot(browser, path: str) -> None:
    """A second take, A/B picked, then the README's screenshot of the page."""
    seed = browser.find_element("id", "seed")
    seed.clear()
    seed.send_keys("12")
    browser.find_element("id", "generate").click()
    wait_for(browser, "return document.querySelectorAll('#takes-list .take').length >= 2 && "
                      "document.getElementById('progress-text').textContent.startsWith('done');")
    takes = browser.find_elements("css selector", "#takes-list .take")
    takes[1].find_element("css selector", ".pick-a").click()
    browser.find_elements("css selector", "#takes-list .take")[0].find_element(
        "css selector", ".pick-b").click()
    wait_for(browser, "return [...document.querySelectorAll('#takes-list .take img')]"
                      ".every(i => i.complete && i.naturalWidth > 0);")
    browser.save_screenshot(path)
