"""Speculative execution (docs/protocol.md, "Speculative copies"): a fleet with one worker ten
times slower than the others finishes a job within 1.5x of the time the fleet takes without it,
because the lease the job waits for last is copied to a fast worker with nothing else to do; the
counts stay exact, and /metrics counts the copies and their wins.

The batches are the test plug-in sleepy's (tests/doubles/sleepy.c): each sleeps 50 ms, 500 ms on
the worker started with TALLY_TEST_SLOWDOWN=10, so the times hold on a busy machine. Both runs
are measured here, and only their ratio is checked.
"""
import os
import time
import unittest

from harness import TallyTestCase, wait_for
from test_faults import metric

KERNELS = os.path.join(os.path.dirname(os.environ.get("TALLY_BIN", "build/bin")), "test-kernels")
# 80 batches of 50 ms on two fast workers: about 2 s. A lease is sized to 500 ms of a worker's
# time, and the slow worker's first one (its rate not yet measured) to 500 ms of a fast one's:
# 10 batches, 5 s on it, which a job without speculation would wait for.
SPEC = dict(kernel="sleepy", samples=80 * 1_000_000, batch_size=1_000_000, seed=1)
COUNTS = {"samples": 80 * 1_000_000, "batches": 80}


@unittest.skipUnless(os.path.exists(os.path.join(KERNELS, "sleepy.so")),
                     "the test plug-in sleepy.so is not built")
class SpeculationTest(TallyTestCase):
    def run_job(self, run, slow):
        """Runs the job on two fast workers, and a slow one too when slow: its wall time in s,
        from the submit to the job's end as the client sees it, and the server."""
        s = self.server("--lease-target-ms", "500", db=os.path.join(self.tmpdir, f"{run}.db"))
        names = ["fast1", "fast2"] + (["slow"] if slow else [])
        for name in names:
            env = dict(os.environ)
            if name == "slow":
                os.environ["TALLY_TEST_SLOWDOWN"] = "10"
            try:
                self.worker(s, 1, f"{run}-{name}", "--kernel-dir", KERNELS)
            finally:
                os.environ.clear()
                os.environ.update(env)
        # Every worker is polling before the job comes: each can take one of its first leases.
        wait_for("workers polling", lambda: len(
            s.req("GET", "/v1/workers").json["workers"]) == len(names), 20)
        t0 = time.monotonic()
        done = s.wait_job(s.submit(**SPEC)["id"], timeout=60)
        took = time.monotonic() - t0
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["counts"], COUNTS)
        return took, s

    def test_a_slow_worker_does_not_hold_the_job(self):
        alone, _ = self.run_job("alone", slow=False)
        with_slow, s = self.run_job("mixed", slow=True)
        print(f"\nwall time: {alone:.2f} s without the slow worker, {with_slow:.2f} s with it "
              f"({with_slow / alone:.2f}x)")
        self.assertLess(with_slow, 1.5 * alone)
        self.assertGreaterEqual(metric(s, "tally_speculative_leases_total"), 1)
        self.assertGreaterEqual(metric(s, "tally_speculative_wins_total"), 1)
        self.assertEqual(metric(s, "tally_batches_completed_total"), 80)  # counted once each


if __name__ == "__main__":
    unittest.main()
