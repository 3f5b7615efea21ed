"""The benchmark tools, run small: they must keep working, and they check two things no timing
can: the bare compute pool gives the service's counts on every kernel path, and under a swarm
of concurrent one-batch workers every acknowledged complete is counted exactly once; the fleet
simulator runs a job to its exact counts."""
import json
import os
import subprocess
import unittest

from harness import BIN, TallyTestCase, Worker


NOT_ON_THIS_CPU = 77  # tally-bench-kernel's exit status for a path this CPU cannot run


def run(*args):
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])


class BenchToolsTest(TallyTestCase):
    def test_bare_kernel_paths_agree_with_the_service(self):
        s = self.server()
        self.worker(s, threads=2)
        job = s.wait_job(s.submit(kernel="pi", samples=30_000_003, batch_size=100_000, seed=42)["id"])
        want = [job["counts"]["inside"], job["counts"]["samples"]]
        for path in ("scalar", "avx2", "avx512"):
            with self.subTest(path=path):
                try:
                    got = run(os.path.join(BIN, "tally-bench-kernel"), "--samples", "30000003",
                              "--batch-size", "100000", "--threads", "3", "--path", path)
                except subprocess.CalledProcessError as e:
                    # Only the bench's own word skips; a crash (a signal) or any other
                    # failure fails the test.
                    if e.returncode != NOT_ON_THIS_CPU:
                        raise
                    self.skipTest(f"{path}: not on this CPU")
                self.assertEqual(got["counts"], want)

    def test_loadgen_swarm_counts_every_ack_once(self):
        s = self.server()
        out = run(os.path.join(BIN, "tally-loadgen"), "cycle", "--port", str(s.port),
                  "--workers", "64", "--seconds", "2", "--warmup", "0")
        self.assertEqual(out["errors"], 0)
        self.assertGreater(out["acked"], 0)
        job = s.job(out["job_id"])
        self.assertEqual(job["batches"]["done"], out["acked"])
        self.assertEqual(job["counts"]["samples"], out["acked"])
        self.assertEqual(job["batches"]["leased"], 0)


    def test_fleet_simulator_runs_a_job_to_exact_counts(self):
        # 50 workers of 1e7..1e9 samples/s with leases aimed at 200 ms: the job is sized to
        # about 1 s of their speed, so each worker gets a few leases. How close leases come to
        # the target is the benchmark's to say (bench/run.py fleet); here only that they are
        # sized by speed at all (a lease's wait includes the round trip, which a slow or
        # instrumented coordinator stretches, so only the upper side is firm).
        s = self.server("--lease-target-ms", "200")
        out = run(os.path.join(BIN, "tally-loadgen"), "fleet", "--port", str(s.port),
                  "--workers", "50", "--seconds", "1", "--min-rate", "1e7", "--max-rate", "1e9",
                  "--wait", "2")
        self.assertEqual(out["errors"], 0, out)
        self.assertTrue(out["done"], out)
        self.assertEqual(out["samples_acked"], out["samples"])
        job = s.job(out["job_id"])
        self.assertEqual(job["state"], "succeeded")
        self.assertEqual(job["counts"], {"samples": out["samples"]})
        self.assertEqual(job["batches"]["done"], job["batches"]["total"])
        self.assertGreater(out["leases"], 50)
        self.assertGreater(out["from2_p50_ms"], 0, out)
        self.assertLess(out["from2_p50_ms"], 2 * 200, out)
        self.assertLess(out["first_p50_ms"], out["first_p99_ms"], out)  # speeds do differ

    def test_sigterm_under_load_exits_cleanly(self):
        # Replies held for a commit while the coordinator stops: none may be left behind
        # (libmicrohttpd aborts when stopped with suspended connections).
        import signal
        import time
        s = self.server()
        lg = subprocess.Popen([os.path.join(BIN, "tally-loadgen"), "cycle", "--port", str(s.port),
                               "--workers", "64", "--seconds", "5", "--warmup", "0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.5)
            self.assertEqual(s.stop(), 0, s.log()[-2000:])
            self.assertNotIn("Fatal", s.log())
        finally:
            lg.kill()
            lg.wait()


if __name__ == "__main__":
    unittest.main()
