#!/usr/bin/env python3
"""End-to-end test of the event inspector (`GET /ui`) in headless Chromium.

Starts the real `hookhost serve` (the debug binary `cargo test` built) with
the test counter plugin on 127.0.0.1, posts events, then drives Debian's
Chromium through chromedriver (WebDriver over HTTP, standard library only):
the page lists the events, shows an event's attempts and logs, replays it,
re-drives a dead letter, and lists the plugins. Without the right token it
shows the refusal.

Run from the repository root after `cargo test`:  python3 .ci/ui_test.py
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "debug", "hookhost")
COUNTER = os.path.join(ROOT, "target", "plugins", "wasm32-wasip2", "plugin", "test_counter.wasm")
# Another build to try as a candidate of the counter: it handles every event and writes nothing.
NOOP = os.path.join(ROOT, "target", "plugins", "wasm32-wasip2", "plugin", "test_noop.wasm")
TOKEN = "ui-test-token"
DEADLINE = 20.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_for(what, check):
    end = time.monotonic() + DEADLINE
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Browser:
    """A minimal WebDriver client."""

    def __init__(self, driver_url):
        self.base = driver_url
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": shutil.which("chromium") or "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            },
        }}}
        status, answer = request("POST", f"{self.base}/session", caps)
        assert status == 200, answer
        self.session = f"{self.base}/session/{answer['value']['sessionId']}"

    def call(self, method, path, body=None):
        status, answer = request(method, self.session + path, body)
        assert status == 200, (path, answer)
        return answer["value"]

    def go(self, url):
        self.call("POST", "/url", {"url": url})

    def find_all(self, css):
        return [next(iter(e.values())) for e in self.call("POST", "/elements", {"using": "css selector", "value": css})]

    def text(self, element):
        return self.call("GET", f"/element/{element}/text")

    def click(self, element):
        self.call("POST", f"/element/{element}/click", {})

    def type(self, element, text):
        self.call("POST", f"/element/{element}/value", {"text": text})

    def clear(self, element):
        self.call("POST", f"/element/{element}/clear", {})

    def texts(self, css):
        return [self.text(e) for e in self.find_all(css)]

    def wait_text(self, css, needle):
        return wait_for(f"{needle!r} in {css}", lambda: any(needle in t for t in self.texts(css)))

    def quit(self):
        request("DELETE", self.session)


def main():
    for path in (BINARY, COUNTER, NOOP):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run `cargo test` first")
    driver_path = shutil.which("chromedriver")
    if not driver_path:
        sys.exit("chromedriver is missing: apt-get install chromium chromium-driver")

    work = tempfile.mkdtemp(prefix="hookhost-ui-")
    plugins = os.path.join(work, "plugins")
    os.makedirs(plugins)
    shutil.copy(COUNTER, os.path.join(plugins, "counter.wasm"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HOOKHOST_UI_TOKEN=TOKEN, HOOKHOST_LOG="warn")
    host = subprocess.Popen(
        [BINARY, "serve", "--listen", f"127.0.0.1:{port}", "--data", os.path.join(work, "data"),
         "--plugins", plugins, "--admin-token-env", "HOOKHOST_UI_TOKEN"],
        env=env)
    driver_port = free_port()
    driver = subprocess.Popen([driver_path, f"--port={driver_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    browser = None
    try:
        wait_for("the host", lambda: request("GET", base + "/healthz")[0] == 200 if _up(port) else False)
        wait_for("chromedriver", lambda: _up(driver_port))
        auth = {"authorization": f"Bearer {TOKEN}"}
        ok_status, ok = request("POST", base + "/events/test.count", {"n": 1})
        bad_status, bad = request("POST", base + "/events/test.count", {"fail": True})
        assert ok_status == 202 and bad_status == 202, (ok, bad)
        for event in (ok["id"], bad["id"]):
            wait_for(f"event {event} settled",
                     lambda: request("GET", f"{base}/events/{event}", headers=auth)[1].get("status") not in (None, "pending"))

        browser = Browser(f"http://127.0.0.1:{driver_port}")

        # Without the token: the page says so and shows no events.
        browser.go(base + "/ui")
        browser.wait_text("#message", "admin token is missing or wrong")
        assert browser.find_all("#events tbody tr[data-id]") == []

        # With it: the events (and the one the counter emitted), newest first.
        browser.go(f"{base}/ui?with-token#token={TOKEN}")
        row = lambda id: browser.find_all(f'#events tr[data-id="{id}"]')
        wait_for("the event rows", lambda: row(ok["id"]) and row(bad["id"]))
        assert "succeeded" in browser.text(row(ok["id"])[0])
        assert "dead" in browser.text(row(bad["id"])[0])
        assert any("test.counted" in t for t in browser.texts("#events tbody tr[data-id]"))

        # Filters: by plugin, then by topic.
        browser.type(browser.find_all('#event-filters input[name="plugin"]')[0], "counter")
        browser.click(browser.find_all('#event-filters button[type="submit"]')[0])
        wait_for("the plugin filter", lambda: len(browser.find_all("#events tbody tr[data-id]")) == 2)
        assert all("test.counted" not in t for t in browser.texts("#events tbody tr[data-id]"))
        browser.clear(browser.find_all('#event-filters input[name="plugin"]')[0])
        browser.type(browser.find_all('#event-filters input[name="topic"]')[0], "test.counted")
        browser.click(browser.find_all('#event-filters button[type="submit"]')[0])
        wait_for("the topic filter", lambda: len(browser.find_all("#events tbody tr[data-id]")) == 1)
        browser.clear(browser.find_all('#event-filters input[name="topic"]')[0])
        browser.click(browser.find_all('#event-filters button[type="submit"]')[0])
        wait_for("all rows again", lambda: row(ok["id"]) and row(bad["id"]))

        # Live: an event posted now appears without a click.
        live_status, live = request("POST", base + "/events/test.count", {"n": 2})
        assert live_status == 202, live
        wait_for("the live row", lambda: row(live["id"]))

        # The succeeded event: its attempt with version, fuel and logs, and
        # its effects: the kv write and the emitted event, committed.
        browser.click(row(ok["id"])[0])
        browser.wait_text("#detail-panel h2", "test.count")
        attempts = browser.texts("#detail-panel tr.attempt")
        assert len(attempts) == 1 and "ok" in attempts[0], attempts
        assert any("counted" in t for t in browser.texts("#detail-panel pre.logs"))
        assert any("effects (committed)" in t for t in browser.texts("#detail-panel h4"))
        assert any("count" in t for t in browser.texts("#detail-panel tr.kv-write")), browser.texts("#detail-panel table.effects")
        assert any("test.counted" in t for t in browser.texts("#detail-panel tr.emitted"))

        # Replay it: a second delivery appears and succeeds.
        browser.click(browser.find_all("#replay")[0])
        browser.wait_text("#message", "Replayed: 1 new deliveries")
        wait_for("the replayed delivery",
                 lambda: len(request("GET", f"{base}/events/{ok['id']}", headers=auth)[1]["deliveries"]) == 2)
        # Live: the open event shows the replayed delivery without a click.
        wait_for("the replayed delivery on the page", lambda: len(browser.find_all("#detail-panel h3.delivery")) == 2)

        # The failed one: its effects were made and not committed.
        browser.click(row(bad["id"])[0])
        browser.wait_text("#detail-panel h4", "effects (not committed)")

        # Dead letters: the rejected delivery, re-driven from the page.
        browser.click(browser.find_all('nav button[data-tab="dead"]')[0])
        browser.wait_text("#dead tbody", "asked to fail")
        browser.click(browser.find_all("#dead button.retry")[0])
        browser.wait_text("#message", "is back in the queue")
        wait_for("the re-driven attempt",
                 lambda: len(request("GET", f"{base}/events/{bad['id']}", headers=auth)[1]["deliveries"][0]["attempts"]) == 2)

        # Plugins: the counter, its subscription, its last hour.
        browser.click(browser.find_all('nav button[data-tab="plugins"]')[0])
        browser.wait_text("#plugins tbody", "counter")
        assert any("test.count" in t for t in browser.texts("#plugins tbody tr"))
        browser.wait_text('#plugins tr[data-plugin="counter"] td.activity', "in the last hour")
        activity = browser.texts('#plugins tr[data-plugin="counter"] td.activity')[0]
        handled, failed = [int(w) for w in activity.replace(",", "").split() if w.isdigit()][:2]
        assert handled >= 2 and failed >= 1, activity
        assert len(browser.find_all('#plugins tr[data-plugin="counter"] svg.chart rect.ok')) >= 1
        assert len(browser.find_all('#plugins tr[data-plugin="counter"] svg.chart rect.bad')) >= 1

        # A candidate build, shadow-run on the counter's recorded events.
        browser.type(browser.find_all('#plugins tr[data-plugin="counter"] input.candidate')[0], NOOP)
        browser.click(browser.find_all('#plugins tr[data-plugin="counter"] button.shadow')[0])
        browser.wait_text("#shadow-summary", "different")
        assert any("kv_writes" in t for t in browser.texts("#shadow tbody tr.different")), browser.texts("#shadow tbody tr")
        print("ui test: ok (events, live updates, detail and effects, replay, dead-letter retry, plugins, activity, shadow run, token refusal)")
    finally:
        if browser:
            browser.quit()
        driver.terminate()
        host.terminate()
        host.wait(timeout=30)
        driver.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def _up(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main()
