"""Deterministic early stopping (target_stderr) and growing a job (POST /v1/jobs/<id>/extend).

A job with a target stops at the first prefix boundary (1..8, 10, 12, 14, 16, 20, ... batches)
whose result reaches it, and its counts are that prefix's: the same whatever the fleet did (one
worker, three with one killed, a coordinator killed mid-job), and equal to a plain job of the
prefix's size. An extended job ends with the counts of a fresh job of its new size, including
when its short last batch was done, or leased, when it grew, and across a coordinator crash.
"""
import math
import signal
import time
import unittest

from harness import TallyTestCase


def boundaries(limit):
    """The prefix boundaries up to limit, as the coordinator computes them."""
    out = list(range(1, 9))
    e = 1
    while out[-1] < limit:
        out += [m << e for m in range(5, 9)]
        e += 1
    return [b for b in out if b <= limit]


def pi_stderr(counts):
    p = counts["inside"] / counts["samples"]
    return 4 * math.sqrt(p * (1 - p) / counts["samples"])


class StopTest(TallyTestCase):
    def plain(self, samples, batch_size, seed, name):
        """The counts of a plain job run on a coordinator of its own."""
        s = self.server(db=f"{self.tmpdir}/{name}.db")
        w = self.worker(s, 2, name)
        done = s.wait_job(s.submit(kernel="pi", samples=samples, batch_size=batch_size,
                                   seed=seed)["id"])
        self.assertEqual(done["state"], "succeeded", done)
        w.kill(signal.SIGTERM)
        s.stop()
        return done["counts"]

    def test_stops_at_the_same_prefix_whatever_the_fleet(self):
        spec = dict(kernel="pi", samples=1_000_000_000, batch_size=100_000, seed=3,
                    target_stderr=2e-4)
        # One worker.
        s = self.server(db=f"{self.tmpdir}/one.db")
        self.worker(s, 2, "solo")
        one = s.wait_job(s.submit(**spec)["id"])
        self.assertEqual(one["state"], "succeeded", one)
        self.assertTrue(one["stopped_early"])
        self.assertEqual(one["target_stderr"], 2e-4)
        b = one["batches"]["done"]
        self.assertIn(b, boundaries(b))
        self.assertLess(b, one["batches"]["total"])
        self.assertEqual(one["counts"]["samples"], b * 100_000)
        self.assertLessEqual(one["result"]["stderr"], 2e-4)
        # Three workers, one killed, and the coordinator killed mid-job.
        s2 = self.server("--lease-target-ms", "50", db=f"{self.tmpdir}/many.db")
        workers = [self.worker(s2, 1, f"m{i}") for i in range(3)]
        job = s2.submit(**spec)
        s2.wait_until(job["id"], lambda j: j["batches"]["done"] >= 50 or
                      j["state"] == "succeeded")
        workers[0].kill()
        s2.kill()
        s2.start()
        many = s2.wait_job(job["id"])
        self.assertEqual(many["state"], "succeeded", many)
        self.assertEqual(many["counts"], one["counts"])
        self.assertEqual(many["batches"]["done"], b)
        # The counts are the prefix's: a plain job of b batches has them; the boundary before
        # b had not reached the target.
        self.assertEqual(self.plain(b * 100_000, 100_000, 3, "prefix"), one["counts"])
        before = boundaries(b)[-2]
        self.assertGreater(pi_stderr(self.plain(before * 100_000, 100_000, 3, "before")), 2e-4)

    def test_extend_equals_a_fresh_job(self):
        fresh = self.plain(2_000_000, 100_000, 9, "fresh")
        s = self.server()
        self.worker(s, 2, "w")
        # A finished job whose last batch was short (50,000 samples): it is computed again.
        job = s.submit(kernel="pi", samples=1_050_000, batch_size=100_000, seed=9)
        self.assertEqual(s.wait_job(job["id"])["state"], "succeeded")
        r = s.req("POST", f"/v1/jobs/{job['id']}/extend", {"samples": 2_000_000})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["samples"], 2_000_000)
        self.assertEqual(r.json["batches"]["total"], 20)
        done = s.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["counts"], fresh)
        # Twice more, the second time across a coordinator crash.
        r = s.req("POST", f"/v1/jobs/{job['id']}/extend", {"samples": 2_000_001})
        self.assertEqual(r.status, 200, r)
        s.kill()
        s.start()
        r = s.req("POST", f"/v1/jobs/{job['id']}/extend", {"samples": 3_000_000})
        self.assertEqual(r.status, 200, r)
        done = s.wait_job(job["id"])
        self.assertEqual(done["counts"], self.plain(3_000_000, 100_000, 9, "fresh3"))

    def test_extend_a_running_job(self):
        spec = dict(kernel="pi", batch_size=1_000_000, seed=4)
        fresh = self.plain(1_000_000_000, 1_000_000, 4, "fresh")
        s = self.server("--lease-target-ms", "50")
        self.worker(s, 1, "w1")
        self.worker(s, 1, "w2")
        job = s.submit(samples=600_500_000, **spec)
        s.wait_until(job["id"], lambda j: j["batches"]["done"] >= 20)
        r = s.req("POST", f"/v1/jobs/{job['id']}/extend", {"samples": 1_000_000_000})
        self.assertEqual(r.status, 200, r)
        done = s.wait_job(job["id"])
        self.assertEqual(done["counts"], fresh)

    def test_extend_a_job_that_stopped_early(self):
        s = self.server()
        self.worker(s, 2, "w")
        job = s.submit(kernel="pi", samples=100_000_000, batch_size=100_000, seed=5,
                       target_stderr=1e-3)
        one = s.wait_job(job["id"])
        self.assertTrue(one["stopped_early"], one)
        r = s.req("POST", f"/v1/jobs/{job['id']}/extend", {"samples": 200_000_000})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["state"], "succeeded")
        self.assertEqual(r.json["samples"], 200_000_000)
        self.assertEqual(r.json["counts"], one["counts"])
        self.assertEqual(s.job(job["id"])["counts"], one["counts"])

    def test_no_stop_on_a_degenerate_or_tiny_prefix(self):
        # One sample per batch: the first prefixes have stderr 0 (every sample in, or none).
        s = self.server()
        self.worker(s, 2, "w")
        done = s.wait_job(s.submit(kernel="pi", samples=10**6, batch_size=1, seed=8,
                                   target_stderr=0.02)["id"])
        self.assertTrue(done["stopped_early"], done)
        self.assertGreaterEqual(done["counts"]["samples"], 1000)
        self.assertGreater(done["result"]["stderr"], 0)
        self.assertLess(abs(done["result"]["pi"] - math.pi), 0.1)

    def test_bad_requests(self):
        s = self.server()
        job = s.submit(kernel="pi", samples=1000, batch_size=100, seed=1)
        path = f"/v1/jobs/{job['id']}/extend"
        cases = [
            ({"samples": 1000}, 400, "samples"),
            ({"samples": 10}, 400, "samples"),
            ({"samples": -5}, 400, "samples"),
            ({"samples": 5000, "seed": 2}, 400, "seed"),
            ({}, 400, "samples"),
            ([5000], 400, None),
        ]
        for body, status, field in cases:
            r = s.req("POST", path, body)
            self.assertEqual(r.status, status, (body, r))
            if field:
                self.assertIn(field, r.error()[1], (body, r))
        self.assertEqual(s.req("POST", "/v1/jobs/999/extend", {"samples": 5000}).status, 404)
        s.req("POST", f"/v1/jobs/{job['id']}/cancel")
        r = s.req("POST", path, {"samples": 5000})
        self.assertEqual(r.status, 409, r)
        for spec, field in [
            (dict(kernel="pi", samples=100, target_stderr=0), "target_stderr"),
            (dict(kernel="pi", samples=100, target_stderr="1"), "target_stderr"),
            (dict(kernel="pi", samples=100, target_stderr=0.1, verify=0.5), "target_stderr"),
            (dict(kernel="exec", samples=100, target_stderr=0.1,
                  params={"argv": ["/bin/true"]}), "target_stderr"),
            (dict(kernel="count", samples=100, target_stderr=0.1), "target_stderr"),
            (dict(kernel="elsewhere", samples=100, target_stderr=0.1), "target_stderr"),
        ]:
            r = s.req("POST", "/v1/jobs", spec)
            self.assertEqual(r.status, 400, (spec, r))
            self.assertIn(field, r.error()[1])
        key = {"Idempotency-Key": "stop-1"}
        r = s.req("POST", "/v1/jobs", dict(kernel="pi", samples=100, target_stderr=0.1),
                  headers=key)
        self.assertEqual(r.status, 201, r)
        r = s.req("POST", "/v1/jobs", dict(kernel="pi", samples=100, target_stderr=0.2),
                  headers=key)
        self.assertEqual(r.status, 409, r)
        # Refused submits leave no kernel names behind: a new one is still taken after many.
        for i in range(300):
            r = s.req("POST", "/v1/jobs", {"kernel": f"gone{i}", "samples": 0})
            self.assertEqual(r.status, 400, r)
        self.assertEqual(s.req("POST", "/v1/jobs", {"kernel": "fresh", "samples": 1}).status,
                         201)
        self.assertEqual(s.req("GET", "/healthz").status, 200)


if __name__ == "__main__":
    unittest.main()
