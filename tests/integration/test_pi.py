"""The pi job end to end: real server, real workers, real SQLite file."""
import math
import unittest

import recompute
from harness import TallyTestCase

SAMPLES = 100_000_000


class PiTest(TallyTestCase):
    def test_two_workers_then_one_worker_two_threads_bit_identical(self):
        s = self.server()
        w1, w2 = self.worker(s, threads=1), self.worker(s, threads=1)
        job = s.submit(kernel="pi", samples=SAMPLES, batch_size=100_000, seed=2026)
        self.assertEqual(job["state"], "queued")
        self.assertEqual(job["batches"], {"total": 1000, "done": 0, "leased": 0, "pending": 1000})
        done = s.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded")
        self.assertEqual(done["counts"]["samples"], SAMPLES)
        self.assertEqual(done["batches"], {"total": 1000, "done": 1000, "leased": 0, "pending": 0})
        self.assertEqual(done["progress"], 1.0)
        est, se = done["result"]["pi"], done["result"]["stderr"]
        self.assertAlmostEqual(est, 4 * done["counts"]["inside"] / SAMPLES, places=12)
        self.assertLess(abs(est - math.pi), 6 * se)
        self.assertIsNotNone(done["finished_at"])
        self.assertGreater(done["rate"], 0)
        w1.kill()
        w2.kill()

        # The same job on a fresh coordinator, one worker with two threads: same counts.
        s2 = self.server(db=self.tmpdir + "/other.db")
        self.worker(s2, threads=2)
        again = s2.wait_job(s2.submit(kernel="pi", samples=SAMPLES, batch_size=100_000,
                                      seed=2026)["id"])
        self.assertEqual(again["counts"], done["counts"])

    def test_counts_match_an_independent_implementation(self):
        # A short last batch, a seed above 2^63 (given as a string), several leases.
        s = self.server("--lease-target-ms", "1")
        self.worker(s, threads=2)
        seed = 2**64 - 5
        job = s.submit(kernel="pi", samples=10_003, batch_size=1000, seed=str(seed))
        self.assertEqual(job["seed"], str(seed))
        done = s.wait_job(job["id"])
        expect = recompute.job_counts("pi", seed, 1000, 10_003, range(11))
        self.assertEqual(done["counts"], expect)
        self.assertEqual(expect["samples"], 10_003)

    def test_count_kernel_and_default_seed(self):
        s = self.server()
        self.worker(s, threads=2)
        job = s.submit(kernel="count", samples=12_345_678, batch_size=1000)
        self.assertIsInstance(job["seed"], int)
        self.assertLess(job["seed"], 2**53)
        done = s.wait_job(job["id"])
        self.assertEqual(done["counts"], {"samples": 12_345_678})
        self.assertEqual(done["result"], {"samples": 12_345_678})

    def test_list_and_cancel(self):
        s = self.server()
        ids = [s.submit(kernel="pi", samples=10**12, seed=i)["id"] for i in range(5)]
        r = s.req("GET", "/v1/jobs?limit=2")
        self.assertEqual(r.status, 200)
        self.assertEqual([j["id"] for j in r.json["jobs"]], ids[::-1][:2])
        r2 = s.req("GET", f"/v1/jobs?limit=2&cursor={r.json['next_cursor']}")
        self.assertEqual([j["id"] for j in r2.json["jobs"]], ids[::-1][2:4])
        r3 = s.req("GET", f"/v1/jobs?limit=2&cursor={r2.json['next_cursor']}")
        self.assertEqual([j["id"] for j in r3.json["jobs"]], ids[:1])
        self.assertIsNone(r3.json["next_cursor"])

        # A worker leases part of job 0; cancelling stops it at once and drops its lease.
        lease = s.req("POST", "/v1/leases", {"worker": "t", "kernels": ["pi"], "max_batches": 3})
        self.assertEqual(lease.status, 200)
        self.assertEqual(lease.json["job_id"], ids[0])
        c = s.req("POST", f"/v1/jobs/{ids[0]}/cancel")
        self.assertEqual(c.status, 200)
        self.assertEqual(c.json["state"], "cancelled")
        self.assertEqual(c.json["batches"]["leased"], 0)
        late = s.req("POST", f"/v1/leases/{lease.json['id']}/complete?worker=t",
                     {"counts": {"inside": 0, "samples": 300000}})
        self.assertEqual(late.status, 409)
        self.assertEqual(s.job(ids[0])["counts"], {"inside": 0, "samples": 0})
        r = s.req("GET", "/v1/jobs?state=cancelled")
        self.assertEqual([j["id"] for j in r.json["jobs"]], [ids[0]])
        r = s.req("GET", "/v1/jobs?state=queued&limit=1000")
        self.assertEqual(len(r.json["jobs"]), 4)


if __name__ == "__main__":
    unittest.main()
