"""Verification by recomputation: a worker that lies (tally-worker-liar, one count off in every
lease) is caught by the checks of a job with "verify", quarantined, and its counts replaced, so
that the job still ends with exactly the counts of an honest run; the quarantine outlives a
restart of the coordinator."""
import signal
import sqlite3
import time
import unittest

from harness import TallyTestCase, wait_for

SPEC = dict(kernel="pi", samples=400_000_000, batch_size=1_000_000, seed=23)


class VerifyTest(TallyTestCase):
    def reference(self, **spec):
        """The counts of the job run by one honest worker on a coordinator of its own."""
        s = self.server(db=self.tmpdir + "/reference.db")
        w = self.worker(s, threads=2, name="reference")
        done = s.wait_job(s.submit(**spec)["id"])
        self.assertEqual(done["state"], "succeeded")
        w.kill(signal.SIGTERM)
        s.stop()
        return done["counts"]

    def workers(self, s):
        return {w["name"]: w for w in s.req("GET", "/v1/workers").json["workers"]}

    def test_liar_is_caught_and_counts_stay_exact(self):
        expected = self.reference(**SPEC)
        s = self.server("--lease-target-ms", "100")
        liar = self.worker(s, 1, "liar", exe="tally-worker-liar")
        job = s.submit(verify=1, **SPEC)
        self.assertEqual(job["verify"], 1)
        # The liar alone first, so that lies are counted in the job before anyone checks them.
        s.wait_until(job["id"], lambda j: j["batches"]["done"] >= 20)
        self.worker(s, 1, "honest-1")
        self.worker(s, 1, "honest-2")
        done = s.wait_job(job["id"], timeout=180)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["counts"], expected)
        self.assertEqual(done["counts"]["samples"], SPEC["samples"])
        v = done["verification"]
        self.assertEqual(v["quarantined"], ["liar"])
        self.assertGreaterEqual(v["mismatches"], 1)
        self.assertEqual(v["pending"], 0)
        self.assertGreater(v["passed"], 0)
        # The liar was told, and stopped with its own exit status.
        self.assertEqual(liar.proc.wait(timeout=30), 3)
        self.assertIn("quarantined", liar.log())
        ws = self.workers(s)
        self.assertEqual(ws["liar"]["state"], "quarantined")
        self.assertIn("differed", ws["liar"]["quarantine_reason"])
        self.assertIn(f"job {job['id']}", ws["liar"]["quarantine_reason"])
        self.assertIsNone(ws["honest-1"]["quarantine_reason"])
        self.assertNotEqual(ws["honest-1"]["state"], "quarantined")
        # Its lease requests are refused by name from now on, with a JSON error.
        r = s.req("POST", "/v1/leases", {"worker": "liar", "kernels": ["pi"], "wait_s": 0})
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json["error"]["code"], "worker_quarantined")
        self.assertIn("liar", r.json["error"]["message"])

    def test_quarantine_and_checks_survive_a_coordinator_crash(self):
        expected = self.reference(**SPEC)
        s = self.server("--lease-target-ms", "100", "--lease-timeout", "3")
        db = s.db
        self.worker(s, 1, "liar", exe="tally-worker-liar")
        job = s.submit(verify=1, **SPEC)
        s.wait_until(job["id"], lambda j: j["batches"]["done"] >= 20)
        # Checks are pending (nobody else can check the liar), then the coordinator dies.
        self.assertGreater(s.job(job["id"])["verification"]["pending"], 0)
        s.kill(signal.SIGKILL)
        s2 = self.server("--lease-target-ms", "100", "--lease-timeout", "3", db=db, port=s.port)
        self.assertGreater(s2.job(job["id"])["verification"]["pending"], 0)
        self.worker(s2, 1, "honest-1")
        self.worker(s2, 1, "honest-2")
        wait_for("the liar quarantined",
                 lambda: self.workers(s2).get("liar", {}).get("state") == "quarantined", 120)
        s2.kill(signal.SIGKILL)
        s3 = self.server("--lease-target-ms", "100", "--lease-timeout", "3", db=db, port=s.port)
        done = s3.wait_job(job["id"], timeout=180)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["counts"], expected)
        self.assertEqual(done["verification"]["quarantined"], ["liar"])
        # Still quarantined after the restarts: listed, and refused.
        self.assertEqual(self.workers(s3)["liar"]["state"], "quarantined")
        again = self.worker(s3, 1, "liar", exe="tally-worker-liar")
        self.assertEqual(again.proc.wait(timeout=30), 3)

    def test_sampled_checks_pass_for_honest_workers(self):
        expected = self.reference(**SPEC)
        # Many small leases, so that some are sampled: at 1 ms each, even a fast moment's job of
        # 400 batches makes some 100 leases (at 10 ms, one made only 19, and the count below
        # failed).
        s = self.server("--lease-target-ms", "1")
        self.worker(s, 1, "a")
        self.worker(s, 1, "b")
        done = s.wait_job(s.submit(verify=0.5, **SPEC)["id"], timeout=180)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["counts"], expected)
        v = done["verification"]
        self.assertGreater(v["passed"], 0)
        self.assertEqual((v["mismatches"], v["pending"], v["quarantined"]), (0, 0, []))
        self.assertEqual(done["verify"], 0.5)
        s.stop()  # the store is the coordinator's alone while it runs
        leases = sqlite3.connect(s.db).execute(
            "SELECT count(*), count(check_of) FROM leases WHERE state = 1").fetchone()
        self.assertGreater(leases[0] - leases[1], 20)  # checks of 0 of 20 leases: p < 1e-6
        self.assertEqual(leases[1], v["passed"])

    def test_verify_must_be_a_fraction(self):
        s = self.server()
        for bad in (1.5, -0.1, "0.5", True, None, [0.5], {}):
            r = s.req("POST", "/v1/jobs", dict(verify=bad, **SPEC))
            self.assertEqual(r.status, 400, (bad, r))
            self.assertIn("verify", r.json["error"]["message"])
        self.assertEqual(s.req("POST", "/v1/jobs", dict(verify=0, **SPEC)).status, 201)


if __name__ == "__main__":
    unittest.main()
