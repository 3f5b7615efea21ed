"""Long polls: an idle worker waits without spinning, and is woken by new work, by an expired
lease, and by the coordinator stopping."""
import signal
import threading
import time
import unittest

from harness import TallyTestCase


def poll(s, worker, wait_s, out, key):
    t0 = time.monotonic()
    out[key] = s.req("POST", "/v1/leases", {"worker": worker, "kernels": ["pi"], "wait_s": wait_s,
                                            "max_batches": 1})
    out[key + "_s"] = time.monotonic() - t0


class LongPollTest(TallyTestCase):
    def test_empty_queue_waits_then_204(self):
        s = self.server()
        out = {}
        poll(s, "idle", 1, out, "r")
        self.assertEqual(out["r"].status, 204)
        self.assertEqual(out["r"].raw, b"")
        self.assertGreaterEqual(out["r_s"], 0.9)
        r = s.req("POST", "/v1/leases", {"worker": "idle", "kernels": ["pi"], "wait_s": 0})
        self.assertEqual(r.status, 204)

    def test_submit_wakes_parked_polls(self):
        s = self.server()
        out = {}
        threads = [threading.Thread(target=poll, args=(s, f"p{i}", 30, out, f"r{i}"))
                   for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        s.submit(kernel="pi", samples=3000, batch_size=1000, seed=1)
        for t in threads:
            t.join(timeout=20)
        got = sorted(out[f"r{i}"].json["first_batch"] for i in range(3))
        self.assertEqual(got, [0, 1, 2])  # each woken poll got its own batch
        for i in range(3):
            self.assertLess(out[f"r{i}_s"], 20)

    def test_expired_lease_wakes_parked_poll(self):
        # No speculative copy of the silent lease: this is about its expiry.
        s = self.server("--lease-timeout", "1", "--max-speculative", "0")
        s.submit(kernel="pi", samples=1000, batch_size=1000, seed=1)
        first = s.req("POST", "/v1/leases", {"worker": "silent", "kernels": ["pi"]})
        self.assertEqual(first.status, 200)
        out = {}
        poll(s, "patient", 30, out, "r")  # nothing pending until the silent lease expires
        self.assertEqual(out["r"].status, 200)
        self.assertEqual(out["r"].json["first_batch"], 0)
        self.assertGreaterEqual(out["r_s"], 0.5)
        self.assertLess(out["r_s"], 20)

    def test_successive_expiries_each_wake_parked_polls(self):
        # A pi lease expires first, then a count lease; a count-only poll is parked through both.
        # The first wake finds nothing it can run: the second expiry must still wake it.
        s = self.server("--lease-timeout", "1")
        s.submit(kernel="pi", samples=1000, batch_size=1000, seed=1)
        s.submit(kernel="count", samples=1000, batch_size=1000, seed=1)
        a = s.req("POST", "/v1/leases", {"worker": "a", "kernels": ["pi"]})
        time.sleep(0.5)
        b = s.req("POST", "/v1/leases", {"worker": "b", "kernels": ["count"]})
        self.assertEqual((a.status, b.status), (200, 200))
        t0 = time.monotonic()
        r = s.req("POST", "/v1/leases", {"worker": "c", "kernels": ["count"], "wait_s": 20})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["job_id"], b.json["job_id"])
        self.assertLess(time.monotonic() - t0, 8)

    def test_dead_parked_poll_gets_no_lease(self):
        import socket
        s = self.server()
        # A worker parks a long poll, then dies (its socket closes) before work arrives.
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        body = b'{"worker":"ghost","kernels":["pi"],"wait_s":30}'
        sock.sendall(b"POST /v1/leases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(0.3)
        sock.close()
        time.sleep(0.2)
        job = s.submit(kernel="pi", samples=1000, batch_size=1000, seed=1)
        time.sleep(0.3)
        # The batch is still pending: a live worker gets it at once.
        self.assertEqual(s.job(job["id"])["batches"]["leased"], 0)
        r = s.req("POST", "/v1/leases", {"worker": "alive", "kernels": ["pi"]})
        self.assertEqual(r.status, 200)

    def test_get_job_waits_for_the_result(self):
        s = self.server()
        job = s.submit(kernel="pi", samples=2000, batch_size=1000, seed=3)
        # Not finished within the wait: the job as it is, after about wait_s.
        t0 = time.monotonic()
        r = s.req("GET", f"/v1/jobs/{job['id']}?wait_s=1")
        self.assertEqual((r.status, r.json["state"]), (200, "queued"))
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        # A waiter parked on the job, and an idle lease poll beside it.
        out = {}
        t = threading.Thread(target=lambda: out.update(
            r=s.req("GET", f"/v1/jobs/{job['id']}?wait_s=30"), t=time.monotonic()))
        t.start()
        time.sleep(0.3)
        self.assertTrue(t.is_alive())
        lease = s.req("POST", "/v1/leases", {"worker": "w", "kernels": ["pi"]}).json
        import recompute
        counts = recompute.job_counts("pi", 3, 1000, 2000, range(2))
        t1 = time.monotonic()
        done = s.req("POST", f"/v1/leases/{lease['id']}/complete?worker=w",
                     {"counts": counts})
        self.assertEqual(done.status, 200)
        t.join(timeout=20)
        self.assertEqual(out["r"].json["state"], "succeeded")
        self.assertEqual(out["r"].json["counts"], counts)
        self.assertLess(out["t"] - t1, 5)
        # A finished job answers at once; wait_s is checked.
        self.assertEqual(s.req("GET", f"/v1/jobs/{job['id']}?wait_s=60").json["state"],
                         "succeeded")
        self.assertEqual(s.req("GET", f"/v1/jobs/{job['id']}?wait_s=61").status, 400)
        self.assertEqual(s.req("GET", f"/v1/jobs/{job['id']}?wait=1").status, 400)

    def test_sigterm_answers_parked_polls(self):
        s = self.server()
        out = {}
        t = threading.Thread(target=poll, args=(s, "p", 30, out, "r"))
        t.start()
        time.sleep(0.3)
        self.assertEqual(s.stop(), 0)
        t.join(timeout=20)
        self.assertFalse(t.is_alive())
        self.assertIn(out["r"].status, (204, 503))


if __name__ == "__main__":
    unittest.main()
