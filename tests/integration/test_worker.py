"""The real tally-worker against a fake coordinator.

The fake is a stdlib HTTP server in a thread on 127.0.0.1 (port 0). It answers lease requests from
a script of canned replies (then 204 after a short hold, like an empty long poll), answers
heartbeat/complete/fail from per-path scripts (then a success reply), and records every request the
worker sent, with its arrival time. Tests check what the worker says on the wire (docs/protocol.md):
exact counts (from recompute.py), retries and their pacing, heartbeats, its handling of replies it
cannot use, an unreachable coordinator, and SIGTERM. Every wait has a deadline.
"""
import http.server
import json
import math
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import recompute
from harness import TallyTestCase, binary


def _str_id(body):
    """The string id of a canned lease reply (dict, list, bytes or None), or None."""
    if isinstance(body, bytes):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        return body["id"]
    return None

DROP = object()  # a scripted reply: read the request, then close the connection without answering
IDLE = object()  # the default lease reply: hold the request briefly, then 204

LEASE_PATH = "/v1/leases"
LEASE_FIELDS = {"worker", "kernels", "wait_s", "max_batches", "skip_jobs"}  # what POST /v1/leases accepts
OK_COMPLETE = (200, {"accepted": True, "duplicate": False, "job_ended": False})
ERR_500 = (500, {"error": {"code": "internal", "message": "a handler gave no reply"}})
ERR_503 = (503, {"error": {"code": "unavailable", "message": "storage failure"}})
LOST = (409, {"error": {"code": "lease_lost", "message": "lease lost"}})

# Big leases: pi with 1e6-sample batches, sized from a rate measured once per run (one thread does
# about 4e8 samples/s on the machine this was written on).
BIG_BATCH = 1_000_000


def err(status, code, message):
    return (status, {"error": {"code": code, "message": message}})


class Req:
    """One request the worker sent."""

    def __init__(self, method, path, headers, body, t):
        self.method = method
        self.path, _, self.query = path.partition("?")  # the lease routes' ?worker=<name>
        self.headers = headers  # lower-case names
        self.body = body  # bytes
        self.t = t  # time.monotonic() at arrival
        self.replied = None  # time.monotonic() when the reply was sent (None: dropped/not yet)
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def content_type(self):
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def __repr__(self):
        return f"<{self.method} {self.path} {self.body[:200]!r}>"


class FakeCoordinator:
    """Canned replies, recorded requests. HTTP/1.0: one connection per request, so a dropped
    connection is never one that curl silently retries as a stale keep-alive."""

    def __init__(self, port=0):
        self.cond = threading.Condition()
        self.requests = []
        self.leases = []  # replies to POST /v1/leases, in order; then lease_default
        self.lease_default = IDLE  # a reply, IDLE, or a callable returning one
        self.scripts = {}  # path -> replies, in order; then the route's default
        self.idle_s = 0.1  # how long an IDLE lease request is held before its 204 (None: its
        # wait_s, as a coordinator with no work does)
        self.closing = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def do_POST(self):
                fake._handle(self)

            do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _choose(self, r):
        if r.method != "POST":
            return err(405, "method_not_allowed", "POST only")
        if r.path == LEASE_PATH:
            if self.leases:
                return self.leases.pop(0)
            d = self.lease_default
            return d() if callable(d) else d
        if self.scripts.get(r.path):
            return self.scripts[r.path].pop(0)
        m = re.fullmatch(r"/v1/leases/([^/]+)/(heartbeat|complete|fail)", r.path)
        if not m:
            return err(404, "not_found", "no such route")
        if m.group(2) == "heartbeat":
            return (200, {"id": m.group(1), "expires_at": "2026-11-26T06:30:32.000Z",
                          "ttl_s": 30.0})
        if m.group(2) == "complete":
            return OK_COMPLETE
        return (200, {"accepted": True})

    def _handle(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n > 0 else b""
        r = Req(h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, body,
                time.monotonic())
        with self.cond:
            reply = self._choose(r)
            self.requests.append(r)
            self.cond.notify_all()
        if reply is IDLE:
            hold = self.idle_s
            if hold is None:
                hold = (r.json or {}).get("wait_s", 0) if isinstance(r.json, dict) else 0
            self.closing.wait(hold)
            reply = (204, None)
        if reply is DROP:
            h.close_connection = True
            return
        status, payload = reply
        if payload is None:
            data = b""
        elif isinstance(payload, bytes):
            data = payload
        else:
            data = json.dumps(payload).encode()
        try:
            h.send_response(status)
            if status != 204:
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
        except OSError:
            return
        with self.cond:
            r.replied = time.monotonic()
            self.cond.notify_all()

    # Views of what was recorded (copies, safe to use while the worker runs).
    def reqs(self, path=None):
        with self.cond:
            return [r for r in self.requests if path is None or r.path == path]

    def polls(self):
        return self.reqs(LEASE_PATH)

    def wait_for(self, pred, timeout, what, proc=None):
        """Waits until pred(list of requests) is true. Fails after timeout, or at once if proc has
        exited."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(list(self.requests)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                         f"requests: {self.requests[-20:]}")
                if proc is not None and not proc.alive():
                    raise AssertionError(f"worker exited ({proc.proc.returncode}) while waiting "
                                         f"for {what}; log:\n{proc.log()[-2000:]}")
                self.cond.wait(min(left, 0.05))
            return list(self.requests)


class WorkerProc:
    """A tally-worker process; stdout and stderr go to a log file in the test's tmpdir."""

    def __init__(self, tmpdir, url, threads=1, name="fw", *args):
        self.name = name
        self.logpath = os.path.join(tmpdir, f"worker-{name}.log")
        with open(self.logpath, "ab") as log:
            self.proc = subprocess.Popen(
                [binary("tally-worker"), "--server", url, "--threads", str(threads), "--name", name,
                 "--wait", "1"] + list(args), stdout=log, stderr=log)

    def alive(self):
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def stop(self, timeout):
        """SIGTERM; returns (exit code, seconds it took). Fails if it takes longer than timeout."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker still running {timeout}s after SIGTERM; log:\n"
                                 f"{self.log()[-2000:]}")
        return rc, time.monotonic() - t0

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")


def pi_lease(lease_id, seed=7, samples=10_003, batch_size=1000, first=3, count=5, ttl=30.0,
             kernel="pi", **extra):
    lease = {"id": str(lease_id), "job_id": "1", "kernel": kernel, "kernel_version": 1,
             "params": {}, "seed": seed,
             "samples": samples, "batch_size": batch_size, "first_batch": first,
             "batch_count": count, "expires_at": "2026-11-26T06:30:32.000Z", "ttl_s": ttl}
    lease.update(extra)
    return lease


def expected(lease):
    first = lease["first_batch"]
    return recompute.job_counts(lease["kernel"], lease["seed"], lease["batch_size"],
                                lease["samples"], range(first, first + lease["batch_count"]))


def big_lease(lease_id, batches, ttl, seed=99):
    """A pi lease of `batches` full 1e6-sample batches."""
    return pi_lease(lease_id, seed=seed, samples=batches * BIG_BATCH, batch_size=BIG_BATCH,
                    first=0, count=batches, ttl=ttl)


def complete_path(lease_id):
    return f"/v1/leases/{lease_id}/complete"


def heartbeat_path(lease_id):
    return f"/v1/leases/{lease_id}/heartbeat"


class WorkerTest(TallyTestCase):
    # A one-thread pi rate for this machine, measured once (samples/s) by timing a lease.
    _pi_rate = None

    def setUp(self):
        super().setUp()
        self.fake = FakeCoordinator()
        self.addCleanup(self.fake.close)

    def start_worker(self, url=None, threads=1, name="fw", *args):
        w = WorkerProc(self.tmpdir, url or self.fake.url, threads, name, *args)
        self.procs.append(w)
        return w

    def polls_after(self, t):
        return [r for r in self.fake.polls() if r.t > t]

    def wait_poll_after(self, w, t, timeout, what):
        """Waits for a lease request that arrived after time t."""
        self.fake.wait_for(lambda rs: any(r.path == LEASE_PATH and r.t > t for r in rs), timeout,
                           what, w)

    def assertPlausiblePi(self, counts, samples):
        self.assertEqual(set(counts), {"inside", "samples"})
        self.assertEqual(counts["samples"], samples)
        p = math.pi / 4
        sd = math.sqrt(samples * p * (1 - p))
        self.assertLess(abs(counts["inside"] - p * samples), 6 * sd, counts)

    def pi_rate(self):
        """Samples/s of the pi kernel on one thread of this worker binary (measured once)."""
        if WorkerTest._pi_rate is None:
            fake = FakeCoordinator()
            try:
                fake.leases = [(200, big_lease("rate", 100, 30.0))]
                w = WorkerProc(self.tmpdir, fake.url, 1, "rate")
                try:
                    rs = fake.wait_for(lambda rs: any(r.path == complete_path("rate") for r in rs),
                                       30, "the calibration lease", w)
                finally:
                    w.kill()
                poll = next(r for r in rs if r.path == LEASE_PATH)
                grant = poll.replied or poll.t
                done = next(r for r in rs if r.path == complete_path("rate")).t
                WorkerTest._pi_rate = 100 * BIG_BATCH / max(done - grant, 1e-3)
            finally:
                fake.close()
        return WorkerTest._pi_rate

    def batches_for(self, seconds):
        """How many 1e6-sample pi batches take about `seconds` on one thread."""
        return max(10, int(self.pi_rate() * seconds / BIG_BATCH))

    # 1. Happy path.
    def test_leases_computed_exactly_and_completed(self):
        a = pi_lease("17")  # full batches 3..7
        b = pi_lease("18", first=8, count=3)  # batches 8..10; batch 10 holds the last 3 samples
        c = pi_lease("19", kernel="count", seed=1, samples=5_000_000_001, batch_size=100_000_000,
                     first=48, count=3)  # 51 batches: 48, 49 full, 50 (the last) one sample
        self.fake.leases = [(200, a), (200, b), (200, c)]
        w = self.start_worker()
        rs = self.fake.wait_for(lambda rs: any(r.path == complete_path("19") for r in rs), 20,
                                "the three completes", w)
        self.wait_poll_after(w, rs[-1].t, 10, "a lease request after the last complete")

        polls = self.fake.polls()
        for p in polls:
            self.assertEqual(p.method, "POST")
            self.assertEqual(p.content_type(), "application/json", p.headers)
            self.assertIsInstance(p.json, dict, p)
            self.assertLessEqual(set(p.json), LEASE_FIELDS, p.json)
            self.assertEqual(p.json["worker"], "fw")
            self.assertIsInstance(p.json["kernels"], list)
            self.assertIn("pi@1", p.json["kernels"])
            self.assertIn("count@1", p.json["kernels"])
            self.assertEqual(p.json["wait_s"], 1)
            self.assertEqual(polls[0].body, p.body)  # the same request every time

        for lease, want in ((a, expected(a)), (b, expected(b)),
                            (c, {"samples": 2 * 100_000_000 + 1})):
            self.assertEqual(expected(lease), want)
            done = self.fake.reqs(complete_path(lease["id"]))
            self.assertEqual(len(done), 1, done)
            self.assertEqual(done[0].method, "POST")
            self.assertEqual(done[0].content_type(), "application/json", done[0].headers)
            self.assertEqual(done[0].json, {"counts": want})
            self.assertEqual(done[0].query, "worker=fw")  # the lease's worker, by name
        # Nothing but polls and the three completes; in order, each complete before the next poll.
        seen = [r.path for r in self.fake.reqs() if r.path != LEASE_PATH]
        self.assertEqual(seen, [complete_path(x) for x in ("17", "18", "19")])
        self.assertTrue(w.alive())

    # 2. Complete retried on 5xx and transport errors.
    def test_complete_retried_until_acknowledged(self):
        lease = pi_lease("21", seed=12345, first=0, count=4)
        self.fake.leases = [(200, lease)]
        path = complete_path("21")
        self.fake.scripts[path] = [ERR_500, DROP, ERR_503, OK_COMPLETE]
        w = self.start_worker()
        rs = self.fake.wait_for(lambda rs: sum(r.path == path for r in rs) >= 4, 20,
                                "four complete attempts", w)
        last = [r for r in rs if r.path == path][-1]
        self.wait_poll_after(w, last.t, 10, "a lease request after the acknowledged complete")

        tries = self.fake.reqs(path)
        self.assertEqual(len(tries), 4, tries)  # no resend after the 200
        self.assertEqual(tries[0].json, {"counts": expected(lease)})
        for t in tries:
            self.assertEqual(t.body, tries[0].body)
            self.assertEqual(t.content_type(), "application/json")
        gaps = [b.t - a.t for a, b in zip(tries, tries[1:])]
        # Backoff: each delay is at least 50 ms; three of them at least 150 ms; capped exponential
        # (caps 100, 200, 400 ms plus the 50 ms floor) so none is absurdly long either.
        self.assertGreaterEqual(sum(gaps), 0.15, gaps)
        for i, g in enumerate(gaps):
            self.assertGreaterEqual(g, 0.045, gaps)
            self.assertLessEqual(g, 0.05 + 0.1 * 2 ** (i + 1) + 0.5, gaps)
        # Jittered: three uniform draws are not all the same to the millisecond.
        self.assertGreater(max(gaps) - min(gaps), 0.002, gaps)
        self.assertTrue(w.alive())

    def test_complete_refused_is_not_retried(self):
        """4xx is an answer: 409 (lost) or 422 (bad counts) is not resent; the worker moves on."""
        self.fake.leases = [(200, pi_lease("23")), (200, pi_lease("24"))]
        self.fake.scripts[complete_path("23")] = [LOST]
        self.fake.scripts[complete_path("24")] = [err(422, "invalid_counts", "counts.samples")]
        w = self.start_worker()
        rs = self.fake.wait_for(lambda rs: any(r.path == complete_path("24") for r in rs), 20,
                                "both completes", w)
        self.wait_poll_after(w, rs[-1].t, 10, "a lease request after the refused completes")
        self.assertEqual(len(self.fake.reqs(complete_path("23"))), 1)
        self.assertEqual(len(self.fake.reqs(complete_path("24"))), 1)
        self.assertTrue(w.alive())

    # 3. Heartbeats.
    def test_heartbeats_while_computing(self):
        ttl = 0.6
        n = self.batches_for(2.0)
        lease = big_lease("31", n, ttl)
        hb = heartbeat_path("31")
        # A failed heartbeat (5xx, dropped connection) is not a lost lease: keep computing.
        self.fake.scripts[hb] = [ERR_503, DROP]
        self.fake.leases = [(200, lease)]
        w = self.start_worker()
        rs = self.fake.wait_for(lambda rs: any(r.path == complete_path("31") for r in rs), 60,
                                "the complete", w)
        grant = self.fake.polls()[0].replied or self.fake.polls()[0].t
        done = [r for r in rs if r.path == complete_path("31")]
        beats = [r for r in rs if r.path == hb]
        self.assertEqual(len(done), 1)
        # At least the two failed ones (503, dropped); about ten are expected.
        self.assertGreaterEqual(len(beats), 2,
                                f"{len(beats)} heartbeats in {done[0].t - grant:.2f}s")
        self.assertTrue(all(b.t < done[0].t for b in beats))
        for b in beats:
            self.assertEqual(b.method, "POST")
            self.assertIn(b.body, (b"", b"{}"))
        # Often enough that the lease never lapses, not so often that it hammers.
        times = [grant] + [b.t for b in beats]
        gaps = [y - x for x, y in zip(times, times[1:])]
        self.assertLess(max(gaps), ttl, gaps)
        self.assertGreater(min(gaps), 0.05, gaps)
        self.assertPlausiblePi(done[0].json["counts"], n * BIG_BATCH)
        self.assertTrue(w.alive())

    def test_lease_lost_on_heartbeat_is_abandoned(self):
        # Leases far too big to finish: the worker must drop each at its first refused heartbeat.
        n = self.batches_for(200)
        self.fake.leases = [(200, big_lease("32", n, 0.6)), (200, big_lease("33", n, 0.6))]
        self.fake.scripts[heartbeat_path("32")] = [LOST]
        self.fake.scripts[heartbeat_path("33")] = [err(404, "not_found", "no such lease")]
        w = self.start_worker()
        rs = self.fake.wait_for(lambda rs: any(r.path == heartbeat_path("33") for r in rs), 10,
                                "a heartbeat for the second lease", w)
        t33 = [r for r in rs if r.path == heartbeat_path("33")][0].t
        self.wait_poll_after(w, t33, 10, "a lease request after the second lease was lost")
        for lid in ("32", "33"):
            self.assertEqual(self.fake.reqs(complete_path(lid)), [])
            self.assertEqual(len(self.fake.reqs(heartbeat_path(lid))), 1)
        self.assertGreaterEqual(len(self.fake.polls()), 3)
        self.assertTrue(w.alive())

    # 4. Replies the worker cannot use.
    def bad_then_good(self, bad, good_id):
        """Feeds the worker the bad lease replies, then a good lease; checks that it survives,
        completes only the good one, exactly, and keeps polling."""
        good = pi_lease(good_id, seed=3, first=1, count=2)
        self.fake.leases = list(bad) + [(200, good)]
        w = self.start_worker()
        rs = self.fake.wait_for(lambda rs: any(r.path == complete_path(good_id) for r in rs),
                                10 + 5.5 * len(bad), "the good lease's complete", w)
        self.wait_poll_after(w, rs[-1].t, 10, "a lease request after the good lease")
        self.assertTrue(w.alive())
        # A refused lease that carries a string id is given back at once with a fail (so that
        # the coordinator need not wait for its expiry); nothing else is sent for it.
        refused = [r for r in self.fake.reqs()
                   if r.path not in (LEASE_PATH, complete_path(good_id))]
        for r in refused:
            self.assertRegex(r.path, r"^/v1/leases/[^/]+/fail$")
            self.assertIn("unusable lease", r.json["error"])
        ids = [i for i in (_str_id(b) for _, b in bad) if i is not None]
        self.assertEqual(sorted(r.path for r in refused),
                         sorted(f"/v1/leases/{i}/fail" for i in ids))
        self.assertGreaterEqual(len(self.fake.polls()), len(bad) + 2)
        done = self.fake.reqs(complete_path(good_id))
        self.assertEqual([d.json for d in done], [{"counts": expected(good)}])
        return w

    # A few bad replies per test: a worker that backs off after each (as it should, see
    # test_repeated_unusable_leases_back_off) takes up to 0.05 + 0.1 * 2^i s after the i-th.
    def test_lease_reply_not_a_lease(self):
        good = pi_lease("40")
        self.bad_then_good([
            (200, b'{"id": "41", "kernel": "pi", "seed": 7, "samp'),  # truncated
            (200, b"not json at all"),
            (200, None),  # 200 with an empty body
            (200, [good]),  # not an object
            (200, dict(good, id="42", kernel="nope")),  # unknown kernel
        ], "49")

    def test_lease_reply_bad_fields(self):
        good = pi_lease("40")
        missing = dict(good, id="43")
        del missing["batch_count"]
        self.bad_then_good([
            (200, missing),
            (200, dict(good, id="44", samples="many")),
            (200, dict(good, id="45", batch_count=0)),
            (200, dict(good, id="46", batch_size=-5)),
            (200, dict(good, id=47)),  # id not a string
        ], "48")

    # seed is an integer 0..2^64-1 or its decimal string; a worker that computes with anything
    # else sends counts the coordinator cannot tell from right ones (it checks only samples).
    def test_lease_with_seed_of_wrong_type_refused(self):
        good = pi_lease("50")
        self.bad_then_good([
            (200, dict(good, id="51", seed=None)),
            (200, dict(good, id="52", seed=7.5)),
            (200, dict(good, id="53", seed=True)),
        ], "54")

    def test_lease_of_another_kernel_version_refused(self):
        # Counts of pi version 2 are other numbers than version 1's: never computed with 1.
        good = pi_lease("65")
        self.bad_then_good([
            (200, dict(good, id="66", kernel_version=2)),
            (200, dict(good, id="67", kernel_version="1")),
        ], "68")

    def test_lease_with_bad_seed_string_refused(self):
        good = pi_lease("55")
        self.bad_then_good([
            (200, dict(good, id="56", seed="abc")),
            (200, dict(good, id="57", seed="18446744073709551616")),  # 2^64
            (200, dict(good, id="58", seed="-1")),
        ], "59")

    def test_repeated_unusable_leases_back_off(self):
        """A coordinator that keeps handing out leases the worker cannot run must not be
        hammered: the worker backs off as it does for any other reply that is not work."""
        self.fake.lease_default = (200, pi_lease("60", kernel="nope"))
        self.fake.idle_s = 0
        w = self.start_worker()
        self.fake.wait_for(lambda rs: len(rs) >= 1, 10, "the first lease request", w)
        t0 = time.monotonic()
        time.sleep(1.5)
        n = len(self.polls_after(t0))
        self.assertTrue(w.alive())
        self.assertEqual(self.fake.reqs(complete_path("60")), [])
        self.assertGreaterEqual(n, 2)
        self.assertLessEqual(n, 30, f"{n} lease requests in 1.5 s")

    def test_a_job_it_cannot_run_is_given_back_as_such_at_once(self):
        """Issue 14: an exec job whose program this worker does not allow is given back with
        cannot_run (the coordinator then passes it over for this worker), and the next lease is
        asked for at once, not after a backoff. A coordinator that refuses cannot_run (400: one
        from before it) gets the lease back plainly; one that offers the same job again gets a
        backoff."""
        def exec_lease(lease_id, job_id):
            return (200, pi_lease(lease_id, kernel="exec", job_id=job_id, samples=1,
                                  batch_size=1, first=0, count=1,
                                  params={"argv": ["/bin/echo", "{}"]}))
        n = 20
        good = pi_lease("good", first=1, count=2)
        self.fake.leases = ([exec_lease("old", "100")] +
                            [exec_lease(f"x{i}", str(200 + i)) for i in range(n)] +
                            [exec_lease("again", str(200 + n - 1)), (200, good)])
        self.fake.scripts["/v1/leases/old/fail"] = [
            err(400, "unknown_field", "cannot_run: not a field of this request")]
        self.fake.idle_s = 0
        w = self.start_worker(None, 1, "fw", "--allow-exec", "/bin/true")
        rs = self.fake.wait_for(lambda rs: any(r.path == complete_path("good") for r in rs), 30,
                                "the good lease's complete", w)
        fails = [r for r in rs if r.path.endswith("/fail")]
        self.assertEqual([r.path for r in fails],
                         ["/v1/leases/old/fail"] * 2 +
                         [f"/v1/leases/x{i}/fail" for i in range(n)] + ["/v1/leases/again/fail"])
        for r in fails[1:]:
            self.assertIn("/bin/echo", r.json["error"])
            if r is not fails[1]:
                self.assertEqual((r.json["fault"], r.json["cannot_run"]), (False, True), r)
        self.assertEqual(fails[1].json["fault"], False)  # the plain give-back after the 400
        self.assertNotIn("cannot_run", fails[1].json)
        # No backoff between them: each would sleep at least 50 ms.
        polls = [r.t for r in rs if r.path == LEASE_PATH]
        took = polls[n + 1] - polls[1]
        self.assertLess(took, n * 0.05, f"{n} leases it cannot run took {took:.2f}s")
        # The same job again (the coordinator did not pass it over): a backoff first.
        self.assertGreaterEqual(polls[n + 2] - polls[n + 1], 0.05)
        for r in rs:
            if r.path == LEASE_PATH:
                self.assertNotIn("skip_jobs", r.json)

    # 5. Coordinator unreachable.
    def free_port(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def test_unreachable_backs_off_and_stops_on_sigterm(self):
        port = self.free_port()
        w = self.start_worker(url=f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 5
        while "coordinator unreachable" not in w.log():
            self.assertTrue(w.alive(), w.log())
            self.assertLess(time.monotonic(), deadline, w.log())
            time.sleep(0.02)
        time.sleep(2.0)
        self.assertTrue(w.alive(), w.log())
        n = w.log().count("coordinator unreachable")
        self.assertGreaterEqual(n, 2, w.log())
        self.assertLessEqual(n, 25, f"{n} attempts in about 2 s")
        rc, took = w.stop(timeout=5)
        self.assertEqual(rc, 0, w.log())
        self.assertLess(took, 2.0)
        self.assertIn("worker stopped", w.log())

    def test_coordinator_comes_back(self):
        port = self.free_port()
        w = self.start_worker(url=f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 5
        while w.log().count("coordinator unreachable") < 3:
            self.assertTrue(w.alive(), w.log())
            self.assertLess(time.monotonic(), deadline, w.log())
            time.sleep(0.02)
        fake = FakeCoordinator(port)
        self.addCleanup(fake.close)
        lease = pi_lease("70", seed=70, first=0, count=2)
        fake.leases = [(200, lease)]
        # The backoff is capped at 2 s; after three failures it is at most about 0.9 s.
        fake.wait_for(lambda rs: any(r.path == complete_path("70") for r in rs), 10,
                      "the worker to reconnect and complete", w)
        self.assertEqual(fake.reqs(complete_path("70"))[0].json, {"counts": expected(lease)})
        # SIGTERM during a (held) long poll: prompt clean exit, no lease taken.
        fake.idle_s = 5
        t = time.monotonic()
        fake.wait_for(lambda rs: any(r.path == LEASE_PATH and r.t > t for r in rs), 5,
                      "an idle lease request", w)
        rc, took = w.stop(timeout=5)
        self.assertEqual(rc, 0, w.log())
        self.assertLess(took, 3.0)

    # 6. SIGTERM while a lease is computing.
    def test_sigterm_mid_lease_finishes_and_delivers(self):
        # The first heartbeat proves the worker is computing the lease: SIGTERM then lands
        # mid-lease. The lease is sized from the pi rate measured once, earlier; on a busy
        # machine that rate may be a slow moment's, and the lease done before its first
        # heartbeat (the worker then only asks for more). Such an attempt proves nothing, and
        # one four times larger is tried.
        n = self.batches_for(1.5)
        for attempt in range(4):
            lease_id = f"8{attempt}"
            hb, done_path = heartbeat_path(lease_id), complete_path(lease_id)
            fake = FakeCoordinator()
            self.addCleanup(fake.close)
            fake.leases = [(200, big_lease(lease_id, n, 0.9))]
            w = self.start_worker(fake.url)
            rs = fake.wait_for(lambda rs: any(r.path in (hb, done_path) for r in rs), 60,
                               "the first heartbeat (or the complete)", w)
            if any(r.path == hb for r in rs):
                break
            w.kill()
            n *= 4
        else:
            self.fail("every lease was done before its first heartbeat")
        rc, _ = w.stop(timeout=60)
        self.assertEqual(rc, 0, w.log())
        rs = fake.reqs()
        done = fake.reqs(done_path)
        self.assertEqual(len(done), 1, rs)
        self.assertPlausiblePi(done[0].json["counts"], n * BIG_BATCH)
        self.assertIsNotNone(done[0].replied)
        self.assertEqual(rs[-1].path, done_path, "requests after the complete")
        self.assertEqual(len(fake.polls()), 1, "asked for another lease after SIGTERM")

    def test_sigterm_while_delivering_keeps_retrying(self):
        """Stopping does not throw away computed counts: retries go on (within a grace period)."""
        lease = pi_lease("81", seed=81, first=0, count=3)
        path = complete_path("81")
        self.fake.leases = [(200, lease)]
        self.fake.scripts[path] = [ERR_503, ERR_503, ERR_503, OK_COMPLETE]
        w = self.start_worker()
        self.fake.wait_for(lambda rs: any(r.path == path for r in rs), 10, "a first complete", w)
        rc, _ = w.stop(timeout=15)
        self.assertEqual(rc, 0, w.log())
        tries = self.fake.reqs(path)
        self.assertEqual(len(tries), 4, tries)
        self.assertEqual([t.json for t in tries], [{"counts": expected(lease)}] * 4)
        self.assertEqual(len(self.fake.polls()), 1)

    # 7. --idle-exit (issue 15): a Slurm job array drains when the queue does.
    def wait_exit(self, w, timeout):
        """Waits for the worker to exit by itself; returns (exit code, monotonic time of exit)."""
        deadline = time.monotonic() + timeout
        while w.alive():
            self.assertLess(time.monotonic(), deadline,
                            f"worker still running after {timeout}s; log:\n{w.log()[-2000:]}")
            time.sleep(0.02)
        return w.proc.returncode, time.monotonic()

    def test_idle_exit_with_no_work(self):
        """With nothing to do, a worker with --idle-exit 1 exits 0 about a second after it
        started, although its --wait is 30: its long polls are cut to the idle time left."""
        self.fake.idle_s = None  # a long poll is held for its wait_s
        t0 = time.monotonic()
        w = self.start_worker(None, 1, "fw", "--wait", "30", "--idle-exit", "1")
        rc, t = self.wait_exit(w, 6)
        self.assertEqual(rc, 0, w.log())
        self.assertGreaterEqual(t - t0, 0.95, "exited before it had been idle for 1 s")
        self.assertIn("idle", w.log())
        self.assertIn("worker stopped", w.log())
        polls = self.fake.polls()
        self.assertGreaterEqual(len(polls), 1)
        for p in polls:
            self.assertEqual(p.json["wait_s"], 1, p)

    def test_idle_exit_while_unreachable(self):
        """No coordinator is no work too: the worker exits at its idle time, its backoff (up to
        2 s) cut short rather than overshooting it."""
        t0 = time.monotonic()
        w = self.start_worker(f"http://127.0.0.1:{self.free_port()}", 1, "fw", "--idle-exit", "3")
        rc, t = self.wait_exit(w, 10)
        self.assertEqual(rc, 0, w.log())
        self.assertGreaterEqual(t - t0, 2.95, w.log())
        self.assertLess(t - t0, 3.8, w.log())
        self.assertGreaterEqual(w.log().count("coordinator unreachable"), 3, w.log())

    def test_idle_exit_bad_value(self):
        for v in ("-1", "x", "1.5"):
            p = subprocess.run([binary("tally-worker"), "--server", self.fake.url,
                                "--idle-exit", v], capture_output=True, timeout=10)
            self.assertEqual(p.returncode, 2, p)
            self.assertIn(b"--idle-exit: must be an integer from 0", p.stderr)

    def test_idle_exit_only_after_the_work(self):
        """Idle time counts from the end of the last lease, not its start: a lease longer than
        the limit, then a pause shorter than it, then another lease; the worker (TALLY_IDLE_EXIT
        from the environment) does both and exits a second after the last."""
        n = self.batches_for(1.5)
        a = big_lease("91", n, 30.0)
        b = pi_lease("92", seed=92, first=0, count=4)
        self.fake.idle_s = 0.2
        self.fake.leases = [(200, a), IDLE, IDLE, IDLE, (200, b)]
        os.environ["TALLY_IDLE_EXIT"] = "1"
        try:
            w = self.start_worker(None, 1, "fw")
        finally:
            del os.environ["TALLY_IDLE_EXIT"]
        rs = self.fake.wait_for(lambda rs: any(r.path == complete_path("92") for r in rs), 60,
                                "both leases' completes", w)
        done_b = [r for r in rs if r.path == complete_path("92")][0].t
        rc, t = self.wait_exit(w, 6)
        self.assertEqual(rc, 0, w.log())
        self.assertGreaterEqual(t - done_b, 0.95, "exited before it had been idle for 1 s")
        self.assertPlausiblePi(self.fake.reqs(complete_path("91"))[0].json["counts"],
                               n * BIG_BATCH)
        self.assertEqual(self.fake.reqs(complete_path("92"))[0].json, {"counts": expected(b)})
        self.assertIn("idle", w.log())


if __name__ == "__main__":
    unittest.main()
