"""Faults: a worker killed mid-lease, completes repeated or late, the coordinator killed and
restarted mid-job. Each ends with counts bit-identical to an undisturbed run."""
import signal
import time
import unittest

import recompute
from harness import TallyTestCase


def lease(s, worker, max_batches=0, wait_s=0):
    r = s.req("POST", "/v1/leases", {"worker": worker, "kernels": ["pi"],
                                     "max_batches": max_batches, "wait_s": wait_s})
    return r


def metric(s, name):
    """The value of the unlabelled sample name in GET /metrics."""
    r = s.req("GET", "/metrics")
    assert r.status == 200, r
    for line in r.raw.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def counts_of(lease_json):
    L = lease_json
    return recompute.job_counts("pi", L["seed"], L["batch_size"], L["samples"],
                                range(L["first_batch"], L["first_batch"] + L["batch_count"]))


class FaultTest(TallyTestCase):
    def reference(self, **spec):
        """The counts of the job run undisturbed on a fresh coordinator."""
        s = self.server(db=self.tmpdir + "/reference.db")
        w = self.worker(s, threads=2)
        done = s.wait_job(s.submit(**spec)["id"])
        w.kill(signal.SIGTERM)
        s.stop()
        return done["counts"]

    def test_worker_killed_mid_lease(self):
        spec = dict(kernel="pi", samples=600_000_000, batch_size=100_000, seed=11)
        # No speculative copies: this is about the dead worker's lease expiring (with them, the
        # rescuer may finish it first: test_speculation).
        s = self.server("--lease-timeout", "2", "--lease-target-ms", "300",
                        "--max-speculative", "0")
        a = self.worker(s, threads=1, name="doomed")
        job = s.submit(**spec)
        s.wait_until(job["id"], lambda j: j["batches"]["leased"] > 0 and j["batches"]["done"] > 0)
        # Freeze it first so that it is killed holding a lease, not between two.
        for _ in range(50):
            a.proc.send_signal(signal.SIGSTOP)
            if s.job(job["id"])["batches"]["leased"] > 0:
                break
            a.proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        a.kill(signal.SIGKILL)
        held = s.job(job["id"])
        self.assertEqual(held["state"], "running")
        self.assertGreater(held["batches"]["leased"], 0)  # the dead worker's lease is in flight
        self.worker(s, threads=2, name="rescuer")
        done = s.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded")
        self.assertEqual(done["counts"]["samples"], spec["samples"])
        self.assertIn("leases expired", s.log())
        self.assertEqual(done["counts"], self.reference(**spec))

    def test_complete_twice_and_late_complete(self):
        s = self.server("--lease-timeout", "1")
        job = s.submit(kernel="pi", samples=10_000, batch_size=1000, seed=5)
        l1 = lease(s, "w1", max_batches=2).json
        c1 = counts_of(l1)
        first = s.req("POST", f"/v1/leases/{l1['id']}/complete?worker=w1", {"counts": c1})
        self.assertEqual((first.status, first.json),
                         (200, {"accepted": True, "duplicate": False, "job_ended": False}))
        again = s.req("POST", f"/v1/leases/{l1['id']}/complete?worker=w1", {"counts": c1})
        self.assertEqual((again.status, again.json),
                         (200, {"accepted": True, "duplicate": True, "job_ended": False}))
        self.assertEqual(s.job(job["id"])["counts"], c1)

        # l2 expires; w2's request reclaims its range (half of it: an expiry is a failure);
        # l2's late complete is refused.
        l2 = lease(s, "w1", max_batches=2).json
        time.sleep(1.1)
        l3 = lease(s, "w2", max_batches=2).json
        self.assertEqual((l3["first_batch"], l3["batch_count"]), (l2["first_batch"], 1))
        late = s.req("POST", f"/v1/leases/{l2['id']}/complete?worker=w1", {"counts": counts_of(l2)})
        self.assertEqual(late.status, 409)
        self.assertEqual(late.error()[0], "lease_lost")
        hb = s.req("POST", f"/v1/leases/{l2['id']}/heartbeat?worker=w1")
        self.assertEqual(hb.status, 409)
        ok = s.req("POST", f"/v1/leases/{l3['id']}/complete?worker=w2", {"counts": counts_of(l3)})
        self.assertEqual(ok.status, 200)
        l3b = lease(s, "w2", max_batches=2).json
        self.assertEqual((l3b["first_batch"], l3b["batch_count"]), (l2["first_batch"] + 1, 1))
        ok = s.req("POST", f"/v1/leases/{l3b['id']}/complete?worker=w2", {"counts": counts_of(l3b)})
        self.assertEqual(ok.status, 200)
        j = s.job(job["id"])
        self.assertEqual(j["batches"]["done"], 4)
        self.assertEqual(j["counts"], recompute.job_counts("pi", 5, 1000, 10_000, range(4)))

        # Fail gives the range back at once.
        l4 = lease(s, "w1", max_batches=3).json
        f = s.req("POST", f"/v1/leases/{l4['id']}/fail?worker=w1", {"error": "out of coffee"})
        self.assertEqual(f.status, 200)
        l5 = lease(s, "w2", max_batches=3).json
        self.assertEqual(l5["first_batch"], l4["first_batch"])

    def test_expired_lease_reaped_without_lease_requests(self):
        """A lease whose worker went silent is reclaimed at its expiry by the coordinator's own
        timer, though no worker asks for work again: /metrics and the job show it gone, its
        late complete is refused, and the reclaim was committed (it survives a crash)."""
        s = self.server("--lease-timeout", "1")
        job = s.submit(kernel="pi", samples=10_000, batch_size=1000, seed=4)
        held = lease(s, "silent", max_batches=2)
        self.assertEqual(held.status, 200, held)
        self.assertEqual(metric(s, "tally_leases_active"), 1)
        self.assertEqual(s.job(job["id"])["batches"]["leased"], 2)
        # Never a heartbeat, and no lease request from anyone from here on.
        deadline = time.monotonic() + 30
        while metric(s, "tally_leases_active") != 0 or s.job(job["id"])["batches"]["leased"]:
            self.assertLess(time.monotonic(), deadline, "the expired lease is still active")
            time.sleep(0.05)
        self.assertEqual(metric(s, "tally_leases_expired_total"), 1)
        self.assertIn("leases expired", s.log())
        late = s.req("POST", f"/v1/leases/{held.json['id']}/complete?worker=silent",
                     {"counts": counts_of(held.json)})
        self.assertEqual((late.status, late.error()[0]), (409, "lease_lost"))
        s.kill(signal.SIGKILL)
        s.start()
        self.assertEqual(s.job(job["id"])["batches"]["leased"], 0)
        self.assertEqual(metric(s, "tally_leases_active"), 0)

    def test_coordinator_killed_and_restarted(self):
        spec = dict(kernel="pi", samples=1_500_000_000, batch_size=100_000, seed=99)
        s = self.server("--lease-target-ms", "200")
        workers = [self.worker(s, threads=1), self.worker(s, threads=1)]
        job = s.submit(**spec)
        before = s.wait_until(job["id"], lambda j: j["progress"] > 0.1)
        s.kill(signal.SIGKILL)
        self.assertEqual(before["state"], "running")
        time.sleep(1.0)  # workers find it gone and keep their counts
        s.start()  # same port, same database file
        done = s.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded")
        self.assertEqual(done["counts"]["samples"], spec["samples"])
        for w in workers:
            self.assertTrue(w.alive())
        self.assertEqual(done["counts"], self.reference(**spec))

    def test_huge_batch_is_interruptible(self):
        # One batch of 1e12 samples: minutes of work. A lost lease (the job is cancelled) and a
        # SIGTERM must both be answered within seconds, not when the batch ends.
        s = self.server("--lease-timeout", "3")
        w = self.worker(s, threads=1)
        big = s.submit(kernel="pi", samples=10**12, batch_size=10**12, seed=1)
        s.wait_until(big["id"], lambda j: j["batches"]["leased"] == 1)
        self.assertEqual(s.req("POST", f"/v1/jobs/{big['id']}/cancel").status, 200)
        deadline = time.monotonic() + 10
        while "lease lost" not in w.log():
            self.assertLess(time.monotonic(), deadline, w.log())
            time.sleep(0.05)
        # It is free again: it takes the next job at once.
        small = s.submit(kernel="count", samples=1000, batch_size=1000, seed=1)
        self.assertEqual(s.wait_job(small["id"], timeout=10)["state"], "succeeded")

        # SIGTERM during another huge batch: after a grace period the lease is given back.
        big2 = s.submit(kernel="pi", samples=10**12, batch_size=10**12, seed=2)
        s.wait_until(big2["id"], lambda j: j["batches"]["leased"] == 1)
        t0 = time.monotonic()
        self.assertEqual(w.kill(signal.SIGTERM), 0)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual(s.job(big2["id"])["batches"]["leased"], 0)
        self.assertIn("giving the lease back", w.log())

    def test_sigterm_stops_cleanly(self):
        s = self.server()
        w = self.worker(s, threads=1)
        job = s.submit(kernel="pi", samples=400_000_000, batch_size=100_000, seed=3)
        s.wait_until(job["id"], lambda j: j["batches"]["leased"] > 0)
        self.assertEqual(w.kill(signal.SIGTERM), 0)
        # The worker finished its lease before leaving: nothing is left leased to it.
        j = s.job(job["id"])
        self.assertEqual(j["batches"]["leased"], 0)
        self.assertEqual(s.stop(), 0)

    def test_poison_batch_fails_the_job(self):
        """Batch 2 fails every worker that runs it: after --max-failures strikes on it alone
        the job fails, naming it; give-backs without fault never count."""
        s = self.server("--max-failures", "3")
        job = s.submit(kernel="pi", samples=8000, batch_size=1000, seed=9)
        for _ in range(5):  # a worker stopping gives its lease back: no strike
            l = lease(s, "polite", max_batches=1).json
            r = s.req("POST", f"/v1/leases/{l['id']}/fail?worker=polite",
                      {"error": "stopping", "fault": False})
            self.assertEqual(r.status, 200, r)
        strikes = 0
        for _ in range(100):
            r = lease(s, "w", max_batches=8)
            if r.status == 204:
                break
            l = r.json
            held = range(l["first_batch"], l["first_batch"] + l["batch_count"])
            if 2 in held:
                strikes += l["batch_count"] == 1
                r = s.req("POST", f"/v1/leases/{l['id']}/fail?worker=w",
                          {"error": "exit status 139"})
            else:
                r = s.req("POST", f"/v1/leases/{l['id']}/complete?worker=w",
                          {"counts": counts_of(l)})
            self.assertEqual(r.status, 200, r)
        done = s.wait_job(job["id"], timeout=10)
        self.assertEqual(done["state"], "failed")
        self.assertEqual(strikes, 3)
        self.assertEqual(done["error"], "batch 2 failed 3 times; last failure: exit status 139")
        self.assertEqual(lease(s, "w").status, 204)  # nothing more to lease
        r = s.req("POST", f"/v1/jobs/{job['id']}/cancel")
        self.assertEqual(r.status, 409, r)
        s.kill(signal.SIGKILL)  # the failure is durable
        s.start()
        self.assertEqual(s.job(job["id"])["state"], "failed")

    def test_idempotent_submit(self):
        """A retried submit with the same Idempotency-Key returns the same job, before and
        after a crash; never a second job."""
        s = self.server()
        spec = dict(kernel="pi", samples=5000, batch_size=1000)
        key = {"Idempotency-Key": "order-42"}
        first = s.req("POST", "/v1/jobs", spec, headers=key)
        self.assertEqual(first.status, 201, first)
        again = s.req("POST", "/v1/jobs", spec, headers=key)
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json["id"], first.json["id"])
        self.assertEqual(again.json["seed"], first.json["seed"])  # the seed it was given
        s.kill(signal.SIGKILL)
        s.start()
        after = s.req("POST", "/v1/jobs", dict(spec, seed=first.json["seed"]), headers=key)
        self.assertEqual((after.status, after.json["id"]), (200, first.json["id"]))
        other = s.req("POST", "/v1/jobs", dict(spec, samples=6000), headers=key)
        self.assertEqual(other.status, 409, other)
        self.assertIn("Idempotency-Key", other.error()[1])
        for bad in ["", "x" * 256, "caf\u00e9"]:
            r = s.req("POST", "/v1/jobs", spec, headers={"Idempotency-Key": bad.encode()})
            self.assertEqual(r.status, 400, (bad, r))
            self.assertIn("Idempotency-Key", r.error()[1])
        new = s.req("POST", "/v1/jobs", spec, headers={"Idempotency-Key": "order-43"})
        self.assertEqual(new.status, 201, new)
        jobs = s.req("GET", "/v1/jobs").json["jobs"]
        self.assertEqual(sorted(j["id"] for j in jobs), sorted([first.json["id"], new.json["id"]]))


if __name__ == "__main__":
    unittest.main()
