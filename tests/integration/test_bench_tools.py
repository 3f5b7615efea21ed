"""The benchmark tools, run small: they must keep working, and they check two things no timing
can: the bare compute pool gives the service's counts on every kernel path, and under a swarm
of concurrent one-batch workers every acknowledged complete is counted exactly once."""
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
