"""Chaos (issue 4, "Faults"): workers and the coordinator killed at random through a job, a worker
frozen past its lease (a zombie), the coordinator away for 30 s, graceful stops. Every job ends
with counts bit-identical to the same job run undisturbed, and exactly its samples.

TALLY_CHAOS_SEED=<n> replays the chaos test's choice of victims and downtimes."""
import datetime
import os
import random
import re
import signal
import socket
import threading
import time
import unittest

import test_faults
from harness import TallyTestCase, request, wait_for

# About 2 s undisturbed on two cores: 5000 batches.
SPEC = dict(kernel="pi", samples=10_000_000_000, batch_size=2_000_000, seed=4)
# Twice that, for the chaos test: it must outlast several kills.
CHAOS = dict(kernel="pi", samples=20_000_000_000, batch_size=4_000_000, seed=44)
# The chaos test with owners: Alice's urgent job and her background one, Bob's background one.
FLEET = {"urgent": ("alice", 5, dict(kernel="pi", samples=8_000_000_000, batch_size=2_000_000,
                                     seed=51)),
         "alice_bg": ("alice", 0, dict(kernel="pi", samples=6_000_000_000,
                                       batch_size=2_000_000, seed=52)),
         "bob_bg": ("bob", 0, dict(kernel="pi", samples=6_000_000_000, batch_size=3_000_000,
                                   seed=53))}
TOKENS = {n: f"{n}-token-" + n[0] * 20 for n in ("root", "alice", "bob", "wk")}

GRANTED = re.compile(r'msg="lease granted" lease=(\d+) job=\d+ worker=(\S+) first_batch=(\d+) '
                     r'batch_count=(\d+)')
COMPLETED = re.compile(r'msg="lease completed" lease=(\d+)')
# A retry of any request: lease, heartbeat or complete.
RETRY = re.compile(r'^ts=(\S+) .*msg="(?:coordinator unreachable|heartbeat failed)', re.M)

_references = {}


def grants(log):
    """{lease id: (worker, first_batch, batch_count)} of a coordinator's debug log."""
    return {m[1]: (m[2], int(m[3]), int(m[4])) for m in GRANTED.finditer(log)}


def completed(log):
    return set(COMPLETED.findall(log))


def ts(text):
    """Seconds since the epoch of a log line's ts=."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def signal_all(workers, sig):
    for w in workers:
        w.proc.send_signal(sig)


class FreezeOnComplete:
    """A relay between one worker and the coordinator. The first complete the worker sends
    freezes the worker (SIGSTOP) and is held back, as if the worker had stopped between
    computing its lease and delivering it; release() thaws it (SIGCONT) and lets it through."""

    REQUEST = re.compile(rb"^POST /v1/leases/(\d+)-[0-9a-f]{16}/complete\?worker=\S+ ")

    def __init__(self, port):
        self.port = port
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.pid = None
        self.lease = None  # the held complete's lease id
        self.frozen = threading.Event()
        self.released = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                down, _ = self.sock.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.port))
            except OSError:
                down.close()
                continue
            threading.Thread(target=self._pump, args=(down, up, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, False), daemon=True).start()

    def _pump(self, src, dst, from_worker):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                m = from_worker and self.REQUEST.match(data)
                with self.lock:
                    hold = m and not self.frozen.is_set()
                    if hold:
                        os.kill(self.pid, signal.SIGSTOP)
                        self.lease = m[1].decode()
                        self.frozen.set()
                if hold:
                    self.released.wait(60)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            src.close()
            dst.close()

    def release(self):
        os.kill(self.pid, signal.SIGCONT)
        self.released.set()

    def close(self):
        if self.frozen.is_set() and not self.released.is_set():
            self.release()
        self.released.set()
        self.sock.close()


class ChaosTest(TallyTestCase):
    def reference(self, spec):
        """The counts of spec run undisturbed (once per spec), its coordinator's log set aside
        so that server.log is the test's own coordinator's."""
        key = tuple(sorted(spec.items()))
        if key not in _references:
            _references[key] = test_faults.FaultTest.reference(self, **spec)
            os.rename(os.path.join(self.tmpdir, "server.log"),
                      os.path.join(self.tmpdir, "reference-server.log"))
        return _references[key]

    def assert_exact(self, done, spec):
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["counts"]["samples"], spec["samples"])
        total = done["batches"]["total"]
        self.assertEqual(done["batches"], {"total": total, "done": total, "leased": 0,
                                           "pending": 0})
        self.assertEqual(done["counts"], self.reference(spec))

    def stop_workers(self, workers):
        """Every worker is still running; each stops cleanly on SIGTERM."""
        for w in workers:
            self.assertTrue(w.alive(), w.name + ": " + w.log()[-2000:])
        for w in workers:
            # One started a moment ago may not have its SIGTERM handler yet (it has once it
            # logs that it started): SIGTERM would kill it like any process.
            deadline = time.monotonic() + 30
            while "worker started" not in w.log() and time.monotonic() < deadline:
                self.assertTrue(w.alive(), w.name + ": " + w.log()[-2000:])
                time.sleep(0.05)
            self.assertEqual(w.kill(signal.SIGTERM), 0, w.name)

    def freeze_holding(self, s, workers, timeout=20):
        """Freezes the workers (SIGSTOP) at a moment when each holds a lease it has not
        completed; returns {worker name: lease id}. Needs --log-level debug on s."""
        names = {w.name for w in workers}
        deadline = time.monotonic() + timeout
        while True:
            signal_all(workers, signal.SIGSTOP)
            time.sleep(0.1)  # requests already sent are answered
            log = s.log()
            done = completed(log)
            held = {}
            for lease, (worker, _, _) in grants(log).items():
                if worker in names:
                    held[worker] = lease  # ids increase: the last one wins
            held = {w: lease for w, lease in held.items() if lease not in done}
            if len(held) == len(workers):
                return held
            signal_all(workers, signal.SIGCONT)
            self.assertLess(time.monotonic(), deadline, f"workers never all held a lease: {held}")
            time.sleep(0.05)

    def test_chaos_kills_workers_and_coordinator(self):
        """Four workers; every second a random one is SIGKILLed and a new one started; the
        coordinator is SIGKILLed twice (at 20% and 50%) and restarted on the same database and
        port after a random downtime. The job finishes, bit-identical."""
        seed = int(os.environ.get("TALLY_CHAOS_SEED") or time.time_ns() % 2**32)
        rng = random.Random(seed)
        why = f"TALLY_CHAOS_SEED={seed}"
        self.reference(CHAOS)
        # Downtimes stay under the lease timeout: live workers' leases outlive them.
        # No speculative copies: they rescue a killed worker's lease before it expires and end
        # the job before the kills this test needs. Copies under random races are the subject
        # of test_spec.c (random runs, every batch counted once) and test_speculation.
        s = self.server("--lease-timeout", "3", "--lease-target-ms", "300",
                        "--max-speculative", "0")
        workers = [self.worker(s, 1, f"chaos{i}") for i in range(4)]
        job = s.submit(**CHAOS)
        started = len(workers)
        kills, restarts, marks = 0, 0, [0.2, 0.5]
        down_until = None
        next_kill = time.monotonic() + 1
        deadline = time.monotonic() + 90
        while True:
            now = time.monotonic()
            self.assertLess(now, deadline, why)
            if down_until is None:
                j = s.job(job["id"])
                if j["state"] not in ("queued", "running"):
                    break
                if marks and j["progress"] >= marks[0]:
                    marks.pop(0)
                    s.kill(signal.SIGKILL)
                    down_until = now + rng.uniform(0.1, 1.0)
            elif now >= down_until:
                s.start()  # same port, same database
                restarts += 1
                down_until = None
            if now >= next_kill:
                victim = rng.randrange(len(workers))
                workers[victim].kill(signal.SIGKILL)
                kills += 1
                workers[victim] = self.worker(s, 1, f"chaos{started}")
                started += 1
                next_kill += 1
            time.sleep(0.02)
        self.assertEqual(restarts, 2, why)
        self.assertGreaterEqual(kills, 4, why + ": the job ended too soon to be disturbed")
        self.assert_exact(j, CHAOS)
        self.assertIn("leases expired", s.log())  # killed workers held leases
        self.stop_workers(workers)
        # What was reported is what is stored.
        s.kill(signal.SIGKILL)
        s.start()
        self.assertEqual(s.job(job["id"]), j)

    def test_chaos_with_owners_and_priorities(self):
        """Two users (a users file), three jobs at two priorities, --max-unfinished-jobs 2; four
        workers with a worker token, one SIGKILLed and replaced every second; the coordinator
        SIGKILLed at 20% and 50% of all the work and restarted after a random downtime. After
        each restart Alice is still at her quota (her counts were loaded with her jobs) while
        both her jobs are unfinished. Every job ends bit-identical to its undisturbed run."""
        seed = int(os.environ.get("TALLY_CHAOS_SEED") or time.time_ns() % 2**32)
        rng = random.Random(seed)
        why = f"TALLY_CHAOS_SEED={seed}"
        for _, _, spec in FLEET.values():
            self.reference(spec)
        users = os.path.join(self.tmpdir, "users")
        with open(os.open(users, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(f"root admin {TOKENS['root']}\nalice user {TOKENS['alice']}\n"
                    f"bob user {TOKENS['bob']}\nwk worker {TOKENS['wk']}\n")
        token = os.path.join(self.tmpdir, "worker-token")
        with open(os.open(token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(TOKENS["wk"] + "\n")
        auth = {n: {"Authorization": "Bearer " + t} for n, t in TOKENS.items()}
        # No speculative copies: they rescue killed workers' leases before expiry and end the
        # jobs before the kills this test counts (test_chaos_kills_workers_and_coordinator and
        # test_speculation run with them).
        s = self.server("--users", users, "--lease-timeout", "3", "--lease-target-ms", "300",
                        "--max-unfinished-jobs", "2", "--max-speculative", "0")

        def worker(i):
            return self.worker(s, 1, f"chaos{i}", "--token-file", token)

        def submit(who, priority, spec, status=201):
            r = s.req("POST", "/v1/jobs", dict(spec, priority=priority), headers=auth[who])
            self.assertEqual(r.status, status, r)
            return r.json

        def jobs():
            out = {}
            for name, jid in ids.items():
                r = s.req("GET", f"/v1/jobs/{jid}", headers=auth["root"])
                self.assertEqual(r.status, 200, r)
                out[name] = r.json
            return out

        ids = {name: submit(who, prio, spec)["id"] for name, (who, prio, spec) in FLEET.items()}
        workers = [worker(i) for i in range(4)]
        total = sum(spec["samples"] for _, _, spec in FLEET.values())
        started = len(workers)
        kills, restarts, quota_checks, marks = 0, 0, 0, [0.2, 0.5]
        down_until = None
        next_kill = time.monotonic() + 1
        deadline = time.monotonic() + 150
        while True:
            now = time.monotonic()
            self.assertLess(now, deadline, why)
            if down_until is None:
                js = jobs()
                if all(j["state"] not in ("queued", "running") for j in js.values()):
                    break
                done = sum(j["counts"].get("samples", 0) for j in js.values())
                if marks and done >= marks[0] * total:
                    marks.pop(0)
                    s.kill(signal.SIGKILL)
                    down_until = now + rng.uniform(0.1, 1.0)
            elif now >= down_until:
                s.start()  # same port, same database
                restarts += 1
                down_until = None
                js = jobs()
                if all(js[n]["state"] in ("queued", "running") for n in ("urgent", "alice_bg")):
                    r = s.req("POST", "/v1/jobs", FLEET["urgent"][2], headers=auth["alice"])
                    self.assertEqual((r.status, r.error()[0]), (429, "quota_exceeded"), r)
                    quota_checks += 1
            if now >= next_kill:
                victim = rng.randrange(len(workers))
                workers[victim].kill(signal.SIGKILL)
                kills += 1
                workers[victim] = worker(started)
                started += 1
                next_kill += 1
            time.sleep(0.02)
        self.assertEqual(restarts, 2, why)
        self.assertGreaterEqual(kills, 4, why + ": the jobs ended too soon to be disturbed")
        self.assertGreaterEqual(quota_checks, 1, why)
        for name, (who, prio, spec) in FLEET.items():
            self.assertEqual((js[name]["owner"], js[name]["priority"]), (who, prio), name)
            self.assert_exact(js[name], spec)
        self.assertIn("leases expired", s.log())
        self.stop_workers(workers)
        # Quotas free with the jobs: Alice may submit again.
        submit("alice", 0, dict(kernel="count", samples=10**9))
        s.kill(signal.SIGKILL)
        s.start()
        self.assertEqual(jobs(), js)

    def test_zombie_worker_late_complete_refused(self):
        """A worker frozen (SIGSTOP) between computing a lease and delivering it, until the
        lease expired and another worker redid its range; thawed, its complete gets 409 and
        counts nothing, and it goes back to work."""
        self.reference(SPEC)
        s = self.server("--lease-timeout", "1", "--lease-target-ms", "300", "--log-level",
                        "debug")
        relay = FreezeOnComplete(s.port)
        self.addCleanup(relay.close)
        zombie = self.worker(relay, 1, "zombie")
        relay.pid = zombie.proc.pid
        job = s.submit(**SPEC)
        wait_for("the zombie's first complete", relay.frozen.is_set, 30)
        lease = relay.lease
        worker, first, count = grants(s.log())[lease]
        self.assertEqual(worker, "zombie")

        rescuer = self.worker(s, 1, "rescuer")

        def redone():
            log = s.log()
            done, g = completed(log), grants(log)
            batches = set()
            for other in done:
                w, f, c = g[other]
                if w == "rescuer":
                    batches.update(range(f, f + c))
            return batches.issuperset(range(first, first + count))
        wait_for("the zombie's range redone by the rescuer", redone, 30)
        self.assertIn("leases expired", s.log())
        before = s.job(job["id"])
        self.assertEqual(before["state"], "running")  # so that a wrong count would show

        relay.release()
        refused = re.compile(f'msg="complete refused" lease={lease}-[0-9a-f]{{16}} status=409')
        wait_for("the zombie's late complete answered", lambda: refused.search(zombie.log()), 20)
        done = s.wait_job(job["id"], timeout=60)
        self.assert_exact(done, SPEC)
        log = s.log()
        self.assertNotIn(lease, completed(log))
        # Thawed, it is an ordinary worker again.
        later = [l for l, (w, _, _) in grants(log).items() if w == "zombie" and l != lease]
        self.assertTrue(completed(log).intersection(later), "the zombie did no more work")
        self.stop_workers([zombie, rescuer])

    def test_coordinator_away_30s(self):
        """The coordinator is SIGKILLed while each worker holds a lease and restarted 30 s later.
        The workers finish computing, keep their counts, back off with growing jittered delays
        (no spin, no exit), and deliver them when it returns."""
        self.reference(SPEC)
        # No speculative copies: a copy beside its original is forgotten by a restart (its
        # complete gets 404, by design), and this test wants every held lease delivered.
        s = self.server("--lease-timeout", "60", "--log-level", "debug", "--max-speculative", "0")
        workers = [self.worker(s, 1, f"patient{i}") for i in range(3)]
        job = s.submit(**SPEC)
        s.wait_until(job["id"], lambda j: j["progress"] > 0.1)
        held = self.freeze_holding(s, workers)
        s.kill(signal.SIGKILL)
        killed = time.time()
        signal_all(workers, signal.SIGCONT)
        for w in workers:
            retry = re.compile(f'will retry" path=/v1/leases/{held[w.name]}-[0-9a-f]{{16}}/'
                               f'complete[?]worker={w.name} ')
            wait_for(f"{w.name} holding computed counts", lambda: retry.search(w.log()), 20)
        time.sleep(max(0.0, killed + 30 - time.time()))
        restarted = time.time()
        s.start()
        done = s.wait_job(job["id"], timeout=60)
        self.assert_exact(done, SPEC)
        self.assertEqual(set(held.values()) - completed(s.log()), set())  # delivered
        late, what = [], ""
        for w in workers:
            log = w.log()
            self.assertNotIn("complete refused", log)
            away = [t for t in map(ts, RETRY.findall(log)) if killed <= t <= restarted + 0.1]
            gaps = [b - a for a, b in zip(away, away[1:])]
            what += f"\n{w.name} retried at {[round(t - killed, 2) for t in away]}"
            # Delays from 0.1 s doubling to a 2 s cap, fully jittered: some 25-35 tries in 30 s.
            self.assertGreaterEqual(len(away), 8, what)
            self.assertLessEqual(len(away), 60, what)  # no spin
            self.assertLess(sum(gaps[:3]) / 3, 0.6, what)  # it starts fast...
            self.assertLess(max(gaps), 2.5, what)  # ...never waits past the cap...
            late += [g for a, g in zip(away, gaps) if a > killed + 10]
        self.assertGreater(sum(late) / len(late), 0.6, what)  # ...but slows down,
        self.assertGreater(max(late) - min(late), 1.0, what)  # at random
        self.stop_workers(workers)

    def test_coordinator_hung_abandoned_lease_request_gets_nothing(self):
        """The coordinator hangs (SIGSTOP) longer than a worker's lease request waits (--wait 2
        plus 10 s); the worker gives up on that request and asks again. Thawed, the coordinator
        must not grant the abandoned request a lease nobody will run (api/leases.c asks
        req_gone() before every grant): the job finishes without waiting out --lease-timeout."""
        self.reference(SPEC)
        s = self.server("--lease-timeout", "60", "--log-level", "debug")
        first = self.worker(s, 1, "first")
        job = s.submit(**SPEC)
        s.wait_until(job["id"], lambda j: j["progress"] > 0.1)
        s.proc.send_signal(signal.SIGSTOP)
        try:
            late = self.worker(s, 1, "late")  # its first request waits on the hung coordinator
            wait_for("the late worker giving up", lambda: "timed out" in late.log(), 20)
        finally:
            s.proc.send_signal(signal.SIGCONT)
        done = s.wait_job(job["id"], timeout=15)
        self.assert_exact(done, SPEC)
        self.assertNotIn("leases expired", s.log())
        self.stop_workers([first, late])

    def test_sigterm_coordinator_answers_in_flight_and_keeps_them(self):
        """SIGTERM to the coordinator mid-job, among short leases: parked requests are
        answered, it exits 0 at once, every complete it took is in the database when it
        restarts, and every lease it granted is delivered (none waits to expire)."""
        self.reference(SPEC)
        # No speculative copies: the losing copy's worker stops computing (409) and never
        # delivers, and this test wants every granted lease delivered.
        s = self.server("--lease-timeout", "60", "--lease-target-ms", "100", "--log-level",
                        "debug", "--max-speculative", "0")
        workers = [self.worker(s, 1, f"busy{i}") for i in range(3)]
        job = s.submit(**SPEC)
        s.wait_until(job["id"], lambda j: j["progress"] > 0.2)
        replies = {}
        polls = {
            "job": ("GET", f"/v1/jobs/{job['id']}?wait_s=60", None),
            # No count job: this one parks until the coordinator stops.
            "lease": ("POST", "/v1/leases", {"worker": "idle", "kernels": ["count"],
                                             "wait_s": 60}),
        }

        def poll(name, method, path, body):
            try:
                replies[name] = request(s.port, method, path, body, timeout=20)
            except OSError as e:
                replies[name] = e
        threads = [threading.Thread(target=poll, args=(k,) + v) for k, v in polls.items()]
        for t in threads:
            t.start()
        time.sleep(0.5)  # they are parked
        t0 = time.monotonic()
        self.assertEqual(s.stop(), 0)
        self.assertLess(time.monotonic() - t0, 5)
        for t in threads:
            t.join(10)
        self.assertEqual(replies["job"].status, 200, replies)
        self.assertEqual(replies["job"].json["state"], "running")
        self.assertEqual(replies["lease"].status, 204, replies)

        signal_all(workers, signal.SIGSTOP)  # nothing changes until we look
        log = s.log()
        g = grants(log)
        taken = sum(g[lease][2] for lease in completed(log))
        s.start()
        self.assertEqual(s.job(job["id"])["batches"]["done"], taken)
        signal_all(workers, signal.SIGCONT)
        # A lease granted while stopping whose reply was lost would hold the job for 60 s.
        done = s.wait_job(job["id"], timeout=30)
        self.assert_exact(done, SPEC)
        log = s.log()
        self.assertEqual(set(grants(log)) - completed(log), set())  # every lease delivered
        for w in workers:
            self.assertNotIn("complete refused", w.log())
        self.stop_workers(workers)

    def test_sigterm_worker_hands_its_lease_back(self):
        """SIGTERM to a worker waiting in a long poll, then to one holding a lease of real work:
        neither leaves a lease to expire (--lease-timeout 60), and the job finishes promptly on
        the other worker. (A lease too long to finish in the grace period is given back:
        test_faults' huge batch.)"""
        self.reference(SPEC)
        s = self.server("--lease-timeout", "60", "--lease-target-ms", "500", "--log-level",
                        "debug")
        idle = self.worker(s, 1, "idle")
        time.sleep(0.5)  # parked in a long poll
        t0 = time.monotonic()
        self.assertEqual(idle.kill(signal.SIGTERM), 0)
        self.assertLess(time.monotonic() - t0, 3)
        # Submitted while its long poll may still be parked: that poll must get no lease.
        leaving = self.worker(s, 1, "leaving")
        staying = self.worker(s, 1, "staying")
        job = s.submit(**SPEC)
        # Once its rate is measured, its leases are sized to real work: stop it in one.
        wait_for("a lease completed by the leaving worker", lambda: "leaving" in [
            grants(s.log())[l][0] for l in completed(s.log())], 10)
        lease = self.freeze_holding(s, [leaving])["leaving"]
        leaving.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        leaving.proc.send_signal(signal.SIGCONT)
        self.assertEqual(leaving.proc.wait(timeout=20), 0)
        self.assertLess(time.monotonic() - t0, 12)
        self.assertEqual(s.job(job["id"])["state"], "running")  # the rest is the other's
        # How long the rest takes is the staying worker's speed (one thread; under ASan on a
        # busy machine more than 30 s): what shows that nothing was lost is that no lease
        # expired (a lost one would after the 60 s lease timeout), not a time bound.
        done = s.wait_job(job["id"], timeout=180)
        self.assert_exact(done, SPEC)
        log = s.log()
        self.assertIn(lease, completed(log))
        self.assertNotIn("leases expired", log)
        self.assertNotIn("worker=idle", log)
        self.stop_workers([staying])


if __name__ == "__main__":
    unittest.main()
