"""The Python package tally (python/tally, docs/python.md), in process against live servers: the
jobs API (submit, get, wait, cancel, extend, history, the list followed through its cursors)
with counts checked against recompute.py; a submit retried after a lost reply makes one job;
errors (ApiError's status, code and message; JobFailed; Unreachable; a 429 whose Retry-After
is past the call's timeout raised at once); users' tokens (argument, TALLY_TOKEN,
TALLY_TOKEN_FILE; 401, 403, another user's job 404); TLS (cacert trusted, an absent or wrong CA
refused with TlsError); wait() across a coordinator killed and restarted on the same port and
database. tally.serve as a subprocess fed by hand: its answers equal examples/sample.py's
counts for the same batch (the batch.random() formula), an exception or a bad line exits
non-zero with a traceback, end of input exits 0."""
import io
import json
import os
import random
import select
import subprocess
import sys
import threading
import time
import unittest
from unittest import mock

import recompute
import test_tls
from harness import TallyTestCase, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(ROOT, "python"))
import tally  # noqa: E402  (python/ first on the path: the package under test)
from tally import client as tally_client  # noqa: E402

TOKENS = {n: f"{n}-token-" + n[0] * 20 for n in ("root", "alice", "bob", "w1")}
USERS = "".join(f"{n} {r} {TOKENS[n]}\n" for n, r in
                (("root", "admin"), ("alice", "user"), ("bob", "user"), ("w1", "worker")))
# docs/algorithm.md's test vector: random.Random("42/0")'s random(), then uniform(-1, 1).
TEST_VECTOR = (0.2667506069151816, 0.6365969146558184)
NO_ENV = {"TALLY_SERVER": "", "TALLY_TOKEN": "", "TALLY_TOKEN_FILE": "", "TALLY_CACERT": ""}


def pi_counts(seed, batch_size, samples):
    batches = range(-(-samples // batch_size))
    return recompute.job_counts("pi", seed, batch_size, samples, batches)


@mock.patch.dict(os.environ, NO_ENV)
class ClientTest(TallyTestCase):
    def test_jobs_api(self):
        s = self.server()
        self.worker(s, 1)
        c = tally.Client(s.url)
        job = c.submit("pi", 3e4, batch_size=1e3, seed=8)
        done = job.wait(timeout=30)
        self.assertEqual(done["state"], "succeeded")
        self.assertEqual(done["counts"], pi_counts(8, 1000, 30000))
        self.assertEqual(job.get()["counts"], done["counts"])
        with mock.patch("sys.stderr", io.StringIO()) as err:
            self.assertEqual(job.wait(progress=True)["id"], job.id)  # done: one bar, drawn
            tally.run("count", 10, server=s.url)  # progress=None: no bar off a terminal
        self.assertRegex(err.getvalue(), r"^\r\[#{24}\] 100\.0%  30000/30000 samples .*"
                         r"pi = 3\.\d+ \+- 0\.\d+\x1b\[K\n$")
        points = job.history()
        self.assertTrue(points and points[-1]["samples"] == 30000, points)

        # Grown, it runs again to a fresh job's counts; growing to that size again is a no-op.
        self.assertEqual(job.extend(6e4)["samples"], 60000)
        self.assertEqual(job.wait(timeout=30)["counts"], pi_counts(8, 1000, 60000))
        self.assertEqual(job.extend(60000)["samples"], 60000)

        # run() is submit plus wait; its seed above 2^63-1 goes as a decimal string.
        big = 2 ** 64 - 1
        ran = tally.run("pi", 2000, batch_size=1000, seed=big, server=s.url, progress=False)
        self.assertEqual(ran["counts"], pi_counts(big, 1000, 2000))

        # A cancelled job: wait() raises JobFailed; cancel is idempotent; 409 once succeeded.
        slow = c.submit("count", 1e15, batch_size=1e6, seed=1)
        self.assertEqual(slow.cancel()["state"], "cancelled")
        self.assertEqual(slow.cancel()["state"], "cancelled")
        with self.assertRaises(tally.JobFailed) as e:
            slow.wait(timeout=10)
        self.assertEqual(e.exception.job["state"], "cancelled")
        self.assertIn(f"job {slow.id} cancelled", str(e.exception))
        with self.assertRaises(tally.ApiError) as e:
            job.cancel()
        self.assertEqual((e.exception.status, e.exception.code), (409, "conflict"))

        # The list, two a page: every job, newest first, across the cursors; and by state.
        c.submit("count", 10)
        ids = [j["id"] for j in c.jobs()]
        self.assertEqual(ids, [j["id"] for j in c.jobs(page_size=2)])
        self.assertEqual(len(ids), 5)
        self.assertEqual(ids, sorted(ids, key=int, reverse=True))
        self.assertEqual([j["id"] for j in c.jobs(state="cancelled", page_size=1)], [slow.id])

        # Arguments are checked before any request.
        with self.assertRaises(ValueError):
            c.submit("pi", 1.5)
        with self.assertRaises(TypeError):
            c.submit("pi", True)

    def test_submit_retried_after_lost_reply_makes_one_job(self):
        s = self.server()
        c = tally.Client(s.url)
        real, calls = c._once, []

        def lose_first_reply(method, path, *args):
            reply = real(method, path, *args)  # the server has done it...
            calls.append(path)
            if len(calls) == 1:
                raise ConnectionResetError("reply lost")  # ...but its reply never came
            return reply

        with mock.patch.object(c, "_once", lose_first_reply):
            job = c.submit("count", 1000, seed=3)
        self.assertEqual(len(calls), 2)
        self.assertEqual([j["id"] for j in c.jobs()], [job.id])
        # A key of one's own finds its job again; without one, each submit is a new job.
        self.assertEqual(c.submit("count", 10, idempotency_key="k1").id,
                         c.submit("count", 10, idempotency_key="k1").id)
        self.assertNotEqual(c.submit("count", 10).id, c.submit("count", 10).id)

    def test_errors(self):
        s = self.server("--max-unfinished-jobs", "1")
        c = tally.Client(s.url)
        for args, named in ((("no such", 100), "kernel"), (("pi", 2 ** 62 + 1), "samples"),
                            (("pi", 100, 1000), "batch_size")):
            with self.assertRaises(tally.ApiError) as e:
                c.submit(*args)
            self.assertEqual((e.exception.status, e.exception.code), (400, "invalid_field"))
            self.assertIn(named, e.exception.message)
        with self.assertRaises(tally.ApiError) as e:
            c.job("999").get()
        self.assertEqual((e.exception.status, e.exception.code), (404, "not_found"))

        # wait()'s timeout, the job unfinished (no worker).
        queued = c.submit("pi", 1000)
        with self.assertRaises(tally.WaitTimeout) as e:
            queued.wait(timeout=0.5)
        self.assertEqual(e.exception.job["state"], "queued")
        self.assertIsInstance(e.exception, TimeoutError)

        # 429 with Retry-After: 30, past the call's timeout: raised at once, not slept on.
        t0 = time.monotonic()
        with self.assertRaises(tally.ApiError) as e:
            c.submit("count", 10)
        self.assertEqual((e.exception.status, e.exception.code), (429, "quota_exceeded"))
        self.assertLess(time.monotonic() - t0, 5)

        # Nobody listening: retried until the timeout, then Unreachable.
        s.kill()
        t0 = time.monotonic()
        with self.assertRaises(tally.Unreachable) as e:
            tally.Client(s.url, timeout=1).job("1").get()
        self.assertTrue(1 <= time.monotonic() - t0 < 5)
        self.assertIsInstance(e.exception.cause, ConnectionRefusedError)
        self.assertIsInstance(e.exception, tally.TallyError)

    def test_tokens(self):
        users = self.token_file("users", USERS.strip())
        s = self.server("--users", users)
        self.worker(s, 1, "w1", "--token-file", self.token_file("w1", TOKENS["w1"]))
        alice = tally.Client(s.url, token=TOKENS["alice"])
        job = alice.submit("pi", 2000, batch_size=1000, seed=5)
        self.assertEqual(job.wait(timeout=30)["owner"], "alice")

        with mock.patch.dict(os.environ, {"TALLY_SERVER": s.url, "TALLY_TOKEN": TOKENS["bob"]}):
            bob = tally.Client()  # the server and token from the environment
            with self.assertRaises(tally.ApiError) as e:
                bob.job(job.id).get()
            self.assertEqual(e.exception.status, 404)
            # TALLY_TOKEN_FILE wins over TALLY_TOKEN, as in the CLI.
            with mock.patch.dict(os.environ, {"TALLY_TOKEN_FILE": self.token_file(
                    "root", TOKENS["root"])}):
                self.assertEqual(tally.Client().job(job.id).get()["owner"], "alice")
        for token, status, code in ((None, 401, "unauthorized"), (TOKENS["w1"], 403, "forbidden"),
                                    ("x" * 20, 401, "unauthorized")):
            with self.assertRaises(tally.ApiError) as e:
                list(tally.Client(s.url, token=token).jobs())
            self.assertEqual((e.exception.status, e.exception.code), (status, code))

    @unittest.skipUnless(test_tls.shutil.which("openssl"), "openssl is not installed")
    def test_tls(self):
        cert, key = test_tls.TlsTest.make_cert(self)
        s = self.server("--tls-cert", cert, "--tls-key", key)
        url = f"https://127.0.0.1:{s.port}"
        self.worker(s, 1, "tls", "--server", url, "--cacert", cert)
        done = tally.run("pi", 3000, batch_size=1000, seed=2, server=url, cacert=cert)
        self.assertEqual(done["counts"], pi_counts(2, 1000, 3000))
        with mock.patch.dict(os.environ, {"TALLY_CACERT": cert}):
            self.assertEqual(tally.Client(url).job(done["id"]).get()["state"], "succeeded")

        other_dir = os.path.join(self.tmpdir, "other")
        os.mkdir(other_dir)
        wrong, _ = test_tls.TlsTest.make_cert(mock.Mock(tmpdir=other_dir))
        for ca in (None, wrong):  # the system's CAs, or another CA: refused at once
            t0 = time.monotonic()
            with self.assertRaises(tally.TlsError) as e:
                tally.Client(url, cacert=ca).job(done["id"]).get()
            self.assertIn("certificate verify failed", str(e.exception))
            self.assertIn("cacert", str(e.exception))
            self.assertLess(time.monotonic() - t0, 5)

    def test_wait_across_coordinator_restart(self):
        s = self.server()
        c = tally.Client(s.url)
        job = c.submit("pi", 4000, batch_size=1000, seed=11)
        real, calls, errors = c._once, [], []

        def counted(*args):
            calls.append(args[1])
            try:
                return real(*args)
            except OSError as e:
                errors.append(e)
                raise

        out = {}

        def waiter():
            try:
                out["job"] = job.wait(timeout=60)
            except Exception as e:  # reported by the assertions below
                out["error"] = e

        with mock.patch.object(c, "_once", counted):
            t = threading.Thread(target=waiter)
            t.start()
            wait_for("wait's long poll", lambda: calls, 10)
            s.kill()  # kill -9 mid long poll; the same port and database again
            s.start()
            self.worker(s, 1)
            t.join(60)
        self.assertNotIn("error", out)
        self.assertEqual(out["job"]["state"], "succeeded")
        self.assertEqual(out["job"]["counts"], pi_counts(11, 1000, 4000))
        self.assertTrue(errors, "the long poll was never cut by the kill")

    def test_backoff_is_capped_and_jittered(self):
        delays = []
        c = tally.Client("http://127.0.0.1:9", timeout=10)
        with mock.patch.object(c, "_once", side_effect=ConnectionRefusedError()), \
                mock.patch.object(tally_client.time, "sleep", delays.append), \
                mock.patch.object(tally_client.time, "monotonic",
                                  side_effect=lambda: sum(delays)):
            with self.assertRaises(tally.Unreachable):
                c.job("1").get()
        self.assertTrue(0.05 <= delays[0] <= 0.1, delays)
        self.assertTrue(all(d <= tally_client.BACKOFF_CAP for d in delays), delays)
        self.assertGreater(max(delays), 1.0)
        self.assertLessEqual(sum(delays), 10)


SERVE = """import math
import sys
sys.path.insert(0, {python!r})
import tally

def fn(batch):
    if batch.batch == 99:
        raise RuntimeError("boom in batch 99")
    print("a stray print")  # goes to stderr, not into the answers
    r, inside = batch.random(), 0
    for _ in range(batch.samples):  # examples/sample.py's sample(), drawing from r
        x, y = r.uniform(-1, 1), r.uniform(-1, 1)
        if math.hypot(x, y) <= 1:
            inside += 1
    return {{"inside": inside, "samples": batch.samples, "first": batch.first_sample}}

tally.serve(fn)
"""


class ServeTest(TallyTestCase):
    def program(self):
        path = os.path.join(self.tmpdir, "resident.py")
        with open(path, "w") as f:
            f.write(SERVE.format(python=os.path.join(ROOT, "python")))
        p = subprocess.Popen([sys.executable, path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(),
                                 [f.close() for f in (p.stdin, p.stdout, p.stderr)]))
        return p

    def ask(self, p, line):
        p.stdin.write(line.encode() + b"\n")
        p.stdin.flush()
        ready, _, _ = select.select([p.stdout], [], [], 10)
        self.assertTrue(ready, "no answer within 10 s")
        return json.loads(p.stdout.readline())

    def sample_py(self, seed, batch, n):
        """examples/sample.py's counts for one batch, run as kernel exec runs it."""
        env = {"TALLY_JOB_ID": "1", "TALLY_SEED": str(seed), "TALLY_BATCH": str(batch),
               "TALLY_FIRST_SAMPLE": "0", "TALLY_SAMPLES": str(n)}
        out = subprocess.run([sys.executable, os.path.join(ROOT, "examples/sample.py")],
                             env=env, capture_output=True, check=True, timeout=30).stdout
        return json.loads(out)

    def test_answers_equal_sample_py(self):
        p = self.program()
        for seed, batch in ((42, 0), (42, 7), (2 ** 64 - 1, 3)):
            wire_seed = seed if seed < 2 ** 63 else str(seed)  # as a lease gives it
            line = json.dumps({"job_id": "4", "seed": wire_seed, "batch": batch,
                               "first_sample": batch * 500, "samples": 500})
            got = self.ask(p, line)
            self.assertEqual(got, dict(self.sample_py(seed, batch, 500), first=batch * 500))
        p.stdin.close()
        self.assertEqual(p.wait(timeout=10), 0)
        self.assertIn(b"a stray print", p.stderr.read())

    def test_exception_and_bad_line_exit_nonzero(self):
        for line, what in (('{"job_id": "1", "seed": 1, "batch": 99, "first_sample": 0, '
                            '"samples": 1}', b"boom in batch 99"),
                           ('{"job_id": "1", "seed": 1}', b"without batch, first_sample"),
                           ("not json", b"JSONDecodeError")):
            p = self.program()
            p.stdin.write(line.encode() + b"\n")
            p.stdin.close()
            self.assertEqual(p.wait(timeout=10), 1)
            err = p.stderr.read()
            self.assertIn(b"Traceback", err)
            self.assertIn(what, err)
            self.assertEqual(p.stdout.read(), b"")

    def test_random_formula(self):
        b = tally.Batch("1", "18446744073709551615", 5, 500, 100)
        self.assertEqual(b.seed, 2 ** 64 - 1)
        self.assertEqual(b.random().random(), random.Random("18446744073709551615/5").random())
        # docs/algorithm.md's test vector: the same on every Python since 3.2 (version 2
        # seeding hashes the string with SHA-512).
        r = tally.Batch("1", 42, 0, 0, 1).random()
        self.assertEqual((r.random(), r.uniform(-1, 1)), TEST_VECTOR)


if __name__ == "__main__":
    unittest.main()
