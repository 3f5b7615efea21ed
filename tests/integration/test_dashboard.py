"""The dashboard (GET /, api/dashboard.html) in headless Chromium against the real coordinator and
worker: the jobs table (state, progress, samples, result), the workers table, the plot of the
selected job's estimate with its error band, selection by click, and the token form when tokens
are set. Chromium is driven over the DevTools protocol on a pipe (standard library only); a
screenshot is saved in the test's directory (kept with TALLY_KEEP=1, or when the test fails)."""
import base64
import fcntl
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import unittest
from unittest import mock

from harness import TallyTestCase

CHROMIUM = os.environ.get("TALLY_CHROMIUM", "/usr/bin/chromium")
# As root in a sandbox with no network but loopback (see the machine notes): no sandbox, no GPU,
# and none of Chromium's own connections.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio"]
WIDTH, HEIGHT = 1280, 900
CLIENT = "client-token-" + "c" * 20
WORKER = "worker-token-" + "w" * 20

# A summary of what the page shows, read from its DOM: the same selectors a user's eye follows.
SNAPSHOT_JS = r"""(() => {
  const q = (root, sel) => root.querySelector(sel);
  const text = (root, sel) => { const e = q(root, sel); return e ? e.textContent : null; };
  const jobs = [...document.querySelectorAll("#jobs tbody tr")].map((tr) => ({
    id: tr.dataset.id, state: text(tr, "td.state"), kernel: text(tr, "td.kernel"),
    owner: text(tr, "td.owner"), priority: text(tr, "td.priority"),
    progress: Number(q(tr, "[role=progressbar]").getAttribute("aria-valuenow")),
    pct: text(tr, ".pct"), samples: text(tr, "td.samples"), rate: text(tr, "td.rate"),
    result: text(tr, "td.result"), selected: tr.classList.contains("selected")}));
  const workers = [...document.querySelectorAll("#workers tbody tr")].map((tr) => ({
    name: tr.dataset.name, text: text(tr, "td.name"), state: text(tr, "td.state"),
    rate: text(tr, "td.rate"), seen: text(tr, "td.seen"), lease: text(tr, "td.lease")}));
  const plot = q(document, "#plot");
  const attr = (sel, a) => { const e = q(plot, sel); return e ? e.getAttribute(a) : null; };
  return {
    auth: !q(document, "#auth").hidden, main: !q(document, "#main").hidden,
    authMsg: text(document, "#auth-msg"), status: text(document, "#status"),
    logout: !q(document, "#logout").hidden,
    token: sessionStorage.getItem("tally.token"),
    jobs, workers, adminOnly: !q(document, "#workers .admin-only").hidden,
    plot: {job: plot.dataset.job || null, points: Number(plot.dataset.points || 0), band: attr("svg path.band", "d"),
           estimate: attr("svg path.estimate", "d"), ref: !!q(plot, "svg line.ref"),
           empty: text(plot, "p.empty"), title: text(document, "#plot-title")},
  };
})()"""


class CDPError(Exception):
    pass


class Chromium:
    """Headless Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe: it reads
    commands on its fd 3 and writes replies and events on its fd 4, each a JSON text ended by a
    NUL byte). Every call has a deadline; close() ends the browser's process group."""

    def __init__(self, logdir, timeout=30):
        self.profile = tempfile.mkdtemp(prefix="tally-chromium-")
        self.timeout = timeout
        cmd_r, self.cmd_w = os.pipe()
        self.evt_r, evt_w = os.pipe()

        def child_fds():  # in the child: its ends of the pipes as fds 3 and 4
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
            b = fcntl.fcntl(evt_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        with open(os.path.join(logdir, "chromium.log"), "ab") as log:
            self.proc = subprocess.Popen(
                [CHROMIUM] + FLAGS + [f"--user-data-dir={self.profile}",
                                      f"--window-size={WIDTH},{HEIGHT}",
                                      "--remote-debugging-pipe", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=False,
                preexec_fn=child_fds, start_new_session=True)
        os.close(cmd_r)
        os.close(evt_w)
        self.next_id = 0
        self.replies = {}
        self.events = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.evt_r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.replies[None] = "closed"
                    self.cond.notify_all()
                return
            buf += chunk
            *msgs, buf = buf.split(b"\0")
            with self.cond:
                for m in msgs:
                    msg = json.loads(m)
                    if "id" in msg:
                        self.replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                self.cond.notify_all()

    def send(self, method, params=None, session=None, timeout=None):
        with self.cond:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.cmd_w, data):]
        deadline = time.monotonic() + (timeout or self.timeout)
        with self.cond:
            while mid not in self.replies:
                left = deadline - time.monotonic()
                if None in self.replies:
                    raise CDPError(f"{method}: Chromium closed the pipe")
                if left <= 0:
                    raise CDPError(f"{method}: no reply within {timeout or self.timeout}s")
                self.cond.wait(left)
            reply = self.replies.pop(mid)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def open(self, url):
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.send("Runtime.enable")
        page.send("Page.enable")
        page.send("Network.enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
        page.goto(url)
        return page

    def events_of(self, session, method):
        with self.cond:
            return [e["params"] for e in self.events
                    if e.get("method") == method and e.get("sessionId") == session]

    def close(self):
        try:
            if self.proc.poll() is None:
                self.send("Browser.close", timeout=5)
                self.proc.wait(timeout=10)
        except (CDPError, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            try:  # its renderers and helpers too, whether or not the browser itself is gone
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
            os.close(self.cmd_w)
            self.reader.join(timeout=5)
            os.close(self.evt_r)
            shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab, attached by session."""

    def __init__(self, browser, session):
        self.browser = browser
        self.session = session

    def send(self, method, params=None, timeout=None):
        return self.browser.send(method, params, self.session, timeout)

    def goto(self, url):
        r = self.send("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise CDPError(f"navigate {url}: {r['errorText']}")

    def reload(self):
        self.send("Page.reload", {"ignoreCache": True})

    def eval(self, expr):
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise CDPError(f"evaluate: {r['exceptionDetails']}")
        return r["result"].get("value")

    def snapshot(self):
        return self.eval(SNAPSHOT_JS)

    def wait(self, what, pred, timeout=30):
        """Polls the page's snapshot until pred(snapshot) holds; returns that snapshot."""
        deadline = time.monotonic() + timeout
        snap = None
        while True:
            try:
                snap = self.snapshot()
            except CDPError:  # between two documents (a reload): try again
                snap = None
            if snap is not None and pred(snap):
                return snap
            if time.monotonic() > deadline:
                raise AssertionError(f"page: {what}: not within {timeout}s; it shows "
                                     f"{json.dumps(snap, indent=1)[:4000]}")
            time.sleep(0.1)

    def click(self, selector):
        """A real mouse click in the middle of the element selector names."""
        box = self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                        " if (!e) return null; e.scrollIntoView({block: 'center'});"
                        " const r = e.getBoundingClientRect();"
                        " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        if box is None:
            raise AssertionError(f"nothing to click: {selector}")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1],
                                                   "button": "left", "clickCount": 1})

    def type(self, selector, text):
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path):
        data = base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])
        with open(path, "wb") as f:
            f.write(data)
        return data

    def exceptions(self):
        """Uncaught exceptions the page's scripts threw, as text."""
        return [json.dumps(e["exceptionDetails"])[:1000]
                for e in self.browser.events_of(self.session, "Runtime.exceptionThrown")]

    def requests(self):
        """The URLs of every request the page made."""
        return [e["request"]["url"]
                for e in self.browser.events_of(self.session, "Network.requestWillBeSent")]


def png_size(data):
    """(width, height) of a PNG, checking its signature and header chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise AssertionError(f"not a PNG: {data[:16]!r}")
    return struct.unpack(">II", data[16:24])


class PageTest(TallyTestCase):
    """The page's source, without a browser: what GET / serves, self-contained and small."""

    def test_page(self):
        with open(os.path.join(os.path.dirname(__file__), "../../api/dashboard.html"), "rb") as f:
            source = f.read()
        s = self.server()
        r = s.req("GET", "/")
        self.assertEqual((r.status, r.headers.get("content-type")),
                         (200, "text/html; charset=utf-8"))
        self.assertEqual(r.raw, source, "the binary serves another page: rebuild")
        self.assertLess(len(source), 25 * 1024)
        text = source.decode()
        # No external resources: no URL but the SVG namespace, no script or style from a file.
        self.assertEqual(set(re.findall(r"\w+://[^\s\"'<>)]+", text)),
                         {"http://www.w3.org/2000/svg"})
        self.assertNotRegex(text, r"<script[^>]*\ssrc=|<link[^>]*stylesheet|@import|url\(")
        # Strings from the API reach the DOM as text only.
        self.assertNotRegex(text, r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(")


class DashboardTest(TallyTestCase):
    def browser(self):
        # scripts/setup.sh installs it: a missing browser fails the test, never skips it.
        self.assertTrue(os.access(CHROMIUM, os.X_OK),
                        f"{CHROMIUM} not installed (Debian's chromium package)")
        b = Chromium(self.tmpdir)
        self.addCleanup(b.close)
        return b

    def keep_evidence(self, page):
        """On a failure: the page as it was, next to the server's logs."""
        def save():
            if self.failed():
                try:
                    page.screenshot(os.path.join(self.tmpdir, "failure.png"))
                    with open(os.path.join(self.tmpdir, "failure.html"), "w") as f:
                        f.write(page.eval("document.documentElement.outerHTML") or "")
                except Exception:
                    pass
        self.addCleanup(save)  # cleanups run last first: before the browser closes

    def cancel(self, s, job_id, headers=None):
        r = s.req("POST", f"/v1/jobs/{job_id}/cancel", headers=headers)
        self.assertEqual((r.status, r.json and r.json["state"]), (200, "cancelled"), r)

    def test_jobs_workers_plot(self):
        s = self.server()
        self.worker(s, threads=1, name="dash-w1")
        done = s.submit(kernel="pi", samples=10**7, seed=1)
        self.assertEqual(s.wait_job(done["id"], timeout=60)["state"], "succeeded")
        # At about 3e9 samples/s on its one thread, the worker needs minutes for this one: it
        # runs all through the test, which cancels it. The count job, newer, waits behind it
        # (oldest job first), so the page's default is the newest *running* job, not the newest.
        big = s.submit(kernel="pi", samples=10**12, seed=2)
        s.wait_until(big["id"], lambda j: j["progress"] > 0, timeout=60)
        newest = s.submit(kernel="count", samples=10**6, seed=3)
        self.assertEqual(s.req("GET", "/").headers.get("content-type"), "text/html; charset=utf-8")

        page = self.browser().open(s.url + "/")
        self.keep_evidence(page)
        row = lambda snap, job_id: next((j for j in snap["jobs"] if j["id"] == job_id), None)
        worker = lambda snap: next((w for w in snap["workers"] if w["name"] == "dash-w1"), None)
        # The big job with a progress, its plot with three points (one per lease, about a
        # second apart), and the worker's measured rate.
        snap = page.wait("the running job, its plot and the worker", lambda p: (
            row(p, big["id"]) and row(p, big["id"])["progress"] > 0
            and p["plot"]["job"] == big["id"] and p["plot"]["points"] >= 3
            and worker(p) and worker(p)["rate"].endswith("/s")))
        self.assertFalse(snap["auth"])
        self.assertEqual([j["id"] for j in snap["jobs"]], [newest["id"], big["id"], done["id"]])

        b = row(snap, big["id"])
        self.assertEqual((b["kernel"], b["state"], b["selected"]), ("pi", "running", True), b)
        self.assertTrue(0 < b["progress"] < 1, b)
        self.assertRegex(b["pct"], r"^\d+\.\d%$")
        self.assertRegex(b["samples"], r" / 1\.00e12$")
        self.assertRegex(b["rate"], r"^\d\.\d\de\d+/s$")
        self.assertRegex(b["result"], r"^pi = 3\.1\d* ± \d\.\de-\d+$")

        d = row(snap, done["id"])
        self.assertEqual((d["state"], d["progress"], d["pct"], d["selected"]),
                         ("succeeded", 1, "100.0%", False), d)
        self.assertEqual(d["samples"], "1.00e7 / 1.00e7")
        final = s.job(done["id"])["result"]
        self.assertRegex(d["result"], r"^pi = 3\.1\d* ± \d\.\de-4$")
        self.assertAlmostEqual(float(d["result"].split()[2]), final["pi"], places=4)

        n = row(snap, newest["id"])
        self.assertEqual((n["kernel"], n["selected"]), ("count", False), n)
        self.assertIn(n["state"], ("queued", "running", "succeeded"))

        w = worker(snap)
        self.assertEqual((w["text"], w["state"]), ("dash-w1", "active"), w)
        self.assertRegex(w["rate"], r"^\d\.\d\de\d+/s$")
        self.assertRegex(w["seen"], r"^\d+ s ago$")
        self.assertRegex(w["lease"], r"^\d+")

        p = snap["plot"]
        self.assertTrue(p["ref"], "no dashed line at pi")
        self.assertRegex(p["estimate"], r"^M[\d.,]+(L[\d.,]+)+$")
        # The band (upper edge left to right, then lower edge back) narrows as samples grow.
        self.assertRegex(p["band"], r"^M[\d.,L]+Z$")
        edge = [tuple(map(float, xy.split(","))) for xy in p["band"][1:-1].split("L")]
        self.assertEqual(len(edge), 2 * p["points"])
        first, last = edge[-1][1] - edge[0][1], edge[p["points"]][1] - edge[p["points"] - 1][1]
        self.assertGreater(first, last, p["band"])
        self.assertGreater(last, 0, p["band"])
        self.assertIn("pi, running, pi = 3.1", p["title"])

        shot = os.path.join(self.tmpdir, "dashboard.png")
        data = page.screenshot(shot)
        print(f"\nscreenshot: {shot}")
        self.assertEqual(png_size(data), (WIDTH, HEIGHT))
        self.assertGreater(len(data), 20000, "a blank page compresses to much less")

        # A click selects: the queued count job has nothing to plot yet, the finished pi job
        # one point (its one lease) with its band.
        page.click(f'#jobs tbody tr[data-id="{newest["id"]}"]')
        snap = page.wait("the count job selected", lambda p: (
            p["plot"]["job"] == newest["id"] and row(p, newest["id"])["selected"]))
        self.assertFalse(row(snap, big["id"])["selected"])
        page.click(f'#jobs tbody tr[data-id="{done["id"]}"]')
        snap = page.wait("the finished job's plot", lambda p: (
            p["plot"]["job"] == done["id"] and p["plot"]["band"]))
        self.assertTrue(row(snap, done["id"])["selected"])
        self.assertTrue(snap["plot"]["ref"])

        self.assertEqual(page.exceptions(), [])
        # Everything came from the coordinator: the page, then the API (nothing from elsewhere).
        urls = page.requests()
        self.assertEqual(urls[0], s.url + "/")
        self.assertEqual({u for u in urls if not u.startswith(s.url + "/v1/")}, {s.url + "/"})
        for path in ("/v1/jobs?limit=50", "/v1/workers", f"/v1/jobs/{big['id']}/history",
                     f"/v1/jobs/{done['id']}/history"):
            self.assertIn(s.url + path, urls)
        self.cancel(s, big["id"])
        page.wait("the cancelled job", lambda p: row(p, big["id"])["state"] == "cancelled")

    def test_token_form(self):
        bearer = {"Authorization": "Bearer " + CLIENT}
        # The server and the worker read their tokens from the environment.
        with mock.patch.dict(os.environ, {"TALLY_TOKEN": CLIENT, "TALLY_WORKER_TOKEN": WORKER}):
            s = self.server()
            self.worker(s, threads=1, name="dash-tok")
        self.assertEqual(s.req("GET", "/v1/jobs").status, 401)
        r = s.req("POST", "/v1/jobs", {"kernel": "pi", "samples": 10**12, "seed": 4},
                  headers=bearer)
        self.assertEqual(r.status, 201, r)
        job_id = r.json["id"]

        page = self.browser().open(s.url + "/")  # the page itself needs no token
        self.keep_evidence(page)
        snap = page.wait("the token form", lambda p: p["auth"])
        self.assertFalse(snap["main"])
        self.assertEqual((snap["jobs"], snap["workers"], snap["token"]), ([], [], None))
        self.assertEqual(page.eval("document.querySelector('#auth input#token').type"),
                         "password")

        # The worker token is the wrong role: 403, and the form stays.
        page.type("#token", WORKER)
        page.click("#auth button[type=submit]")
        snap = page.wait("the refusal", lambda p: "cannot read jobs" in p["authMsg"])
        self.assertTrue(snap["auth"] and not snap["main"])

        page.type("#token", CLIENT)
        page.click("#auth button[type=submit]")
        has_job = lambda p: p["main"] and any(
            j["id"] == job_id and j["state"] == "running" for j in p["jobs"])
        snap = page.wait("the jobs after the token", lambda p: has_job(p) and p["workers"])
        self.assertFalse(snap["auth"])
        self.assertEqual(snap["token"], CLIENT)
        self.assertEqual(snap["workers"][0]["name"], "dash-tok")
        self.assertFalse(snap["adminOnly"])
        self.assertEqual(snap["jobs"][0]["owner"], "admin")  # TALLY_TOKEN's user
        self.assertTrue(snap["logout"])

        # Kept in the tab's session storage: a reload goes straight to the jobs.
        page.reload()
        snap = page.wait("the jobs after a reload", has_job)
        self.assertFalse(snap["auth"])
        page.wait("the plot", lambda p: p["plot"]["job"] == job_id and p["plot"]["band"])

        page.click("#logout")
        snap = page.wait("the form again", lambda p: p["auth"] and not p["main"])
        self.assertIsNone(snap["token"])
        self.assertEqual(page.exceptions(), [])
        self.cancel(s, job_id, headers=bearer)

    def test_users_see_their_own_jobs(self):
        """A user's token shows its own jobs with their owner and priority, and no workers (an
        admin's view); an admin's shows every job and the workers."""
        tokens = {"root": "root-token-" + "r" * 20, "alice": "alice-token-" + "a" * 20,
                  "bob": "bob-token-" + "b" * 20}
        path = os.path.join(self.tmpdir, "users")
        with open(path, "w") as f:
            f.write("".join(f"{n} {'admin' if n == 'root' else 'user'} {t}\n"
                            for n, t in tokens.items()))
        os.chmod(path, 0o600)
        s = self.server("--users", path)
        ids = {}
        for who, priority in (("alice", 42), ("bob", -3)):
            r = s.req("POST", "/v1/jobs", {"kernel": "count", "samples": 10**12,
                                           "priority": priority},
                      headers={"Authorization": "Bearer " + tokens[who]})
            self.assertEqual(r.status, 201, r)
            ids[who] = r.json["id"]

        page = self.browser().open(s.url + "/")
        self.keep_evidence(page)
        page.wait("the token form", lambda p: p["auth"])
        page.type("#token", tokens["alice"])
        page.click("#auth button[type=submit]")
        snap = page.wait("Alice's jobs", lambda p: p["main"] and p["jobs"])
        self.assertEqual([(j["id"], j["owner"], j["priority"]) for j in snap["jobs"]],
                         [(ids["alice"], "alice", "42")])
        self.assertTrue(snap["adminOnly"])
        self.assertEqual(snap["workers"], [])
        self.assertEqual(snap["token"], tokens["alice"])  # a 403 on workers keeps the token

        page.click("#logout")
        page.wait("the form again", lambda p: p["auth"])
        page.type("#token", tokens["root"])
        page.click("#auth button[type=submit]")
        snap = page.wait("every job", lambda p: p["main"] and len(p["jobs"]) == 2)
        self.assertEqual([(j["owner"], j["priority"]) for j in snap["jobs"]],
                         [("bob", "-3"), ("alice", "42")])
        self.assertFalse(snap["adminOnly"])
        self.assertEqual(page.exceptions(), [])


if __name__ == "__main__":
    unittest.main()
