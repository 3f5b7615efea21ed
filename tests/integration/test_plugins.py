"""Kernel plug-ins through the service: the example dice (docs/kernels.md) and primes
(libprimesieve), loaded by real workers with --kernel-dir, with and without the coordinator
having them too.

primes is checked against an outside truth: the number of primes below 10^k, k = 1..10, and a
window counted here by trial division.
"""
import ctypes
import os
import subprocess
import time
import unittest

from harness import TallyTestCase

KERNELS = os.path.join(os.path.dirname(os.environ.get("TALLY_BIN", "build/bin")), "kernels")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAVE_PRIMES = os.path.exists(os.path.join(KERNELS, "primes.so"))
PI_OF_10 = [4, 25, 168, 1229, 9592, 78498, 664579, 5761455, 50847534, 455052511]


def primes_in(start, width):
    """The primes in [start, start + width), by a segmented sieve of Eratosthenes."""
    limit = int((start + width) ** 0.5) + 1
    small = bytearray([1]) * (limit + 1)
    small[0:2] = b"\0\0"
    for i in range(2, int(limit ** 0.5) + 1):
        if small[i]:
            small[i * i::i] = bytearray(len(small[i * i::i]))
    window = bytearray([1]) * width
    for q in (i for i in range(2, limit + 1) if small[i]):
        first = max(q * q, (start + q - 1) // q * q)
        window[first - start::q] = bytearray(len(window[first - start::q]))
    return sum(window[i] for i in range(width) if start + i >= 2)


class Batch(ctypes.Structure):
    _fields_ = [("seed", ctypes.c_uint64), ("batch", ctypes.c_uint64),
                ("first", ctypes.c_uint64), ("samples", ctypes.c_uint64),
                ("stop", ctypes.c_void_p)]


RUN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(Batch),
                       ctypes.POINTER(ctypes.c_uint64), ctypes.c_char_p, ctypes.c_size_t)


class Kernel(ctypes.Structure):
    _fields_ = [("abi", ctypes.c_uint), ("name", ctypes.c_char_p), ("version", ctypes.c_uint),
                ("keys", ctypes.POINTER(ctypes.c_char_p)), ("open", ctypes.c_void_p),
                ("close", ctypes.c_void_p), ("run", RUN), ("check", ctypes.c_void_p),
                ("result", ctypes.c_void_p)]


def run_plugin(path, seed, batch, first, samples):
    """One batch of a plug-in, called here through its ABI as a worker would: {name: count}."""
    lib = ctypes.CDLL(path)
    lib.tally_kernel_v1.restype = ctypes.POINTER(Kernel)
    k = lib.tally_kernel_v1().contents
    names = []
    while k.keys[len(names)]:
        names.append(k.keys[len(names)].decode())
    counts = (ctypes.c_uint64 * 8)()
    err = ctypes.create_string_buffer(256)
    assert k.run(None, ctypes.byref(Batch(seed, batch, first, samples, None)), counts, err,
                 256) == 0
    return dict(zip(names, counts))


class PluginTest(TallyTestCase):
    def test_dice_waits_for_a_worker_then_runs(self):
        s = self.server()
        self.worker(s, 1, "plain")  # offers no dice
        job = s.submit(kernel="dice", samples=2_000_000, batch_size=300_000, seed=5)
        self.assertEqual(job["kernel_version"], 0)
        self.assertIn("dice", job["waiting_for"])
        time.sleep(1.5)
        self.assertEqual(s.job(job["id"])["state"], "queued")
        self.worker(s, 2, "dicey", "--kernel-dir", KERNELS)
        done = s.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["kernel_version"], 1)  # the version the worker offered
        self.assertNotIn("waiting_for", done)
        self.assertIsNone(done["result"])  # the coordinator has no code for dice
        counts = done["counts"]
        self.assertEqual(counts["samples"], 2_000_000)
        p = counts["doubles"] / counts["samples"]
        self.assertLess(abs(p - 1 / 6), 5 * (1 / 6 * 5 / 6 / 2_000_000) ** 0.5)

        # The coordinator with the plug-in: the same counts, a result, params checked.
        s2 = self.server("--kernel-dir", KERNELS, db=os.path.join(self.tmpdir, "with.db"))
        self.worker(s2, 1, "d1", "--kernel-dir", KERNELS)
        self.worker(s2, 1, "d2", "--kernel-dir", KERNELS)
        again = s2.wait_job(s2.submit(kernel="dice", samples=2_000_000, batch_size=300_000,
                                      seed=5)["id"])
        self.assertEqual(again["counts"], counts)
        self.assertEqual(again["result"]["p"], p)
        self.assertGreater(again["result"]["stderr"], 0)
        r = s2.req("POST", "/v1/jobs", {"kernel": "dice", "samples": 10, "params": {"x": 1}})
        self.assertEqual(r.status, 400, r)
        self.assertIn("params.x", r.error()[1])
        # Early stopping with a plug-in's stderr.
        stop = s2.wait_job(s2.submit(kernel="dice", samples=10**9, batch_size=100_000, seed=5,
                                     target_stderr=0.001)["id"])
        self.assertTrue(stop["stopped_early"], stop)
        self.assertLessEqual(stop["result"]["stderr"], 0.001)

    def test_names_learnt_in_another_order_then_the_plug_in_loaded(self):
        """A worker of another make sends dice's counts in another order while the coordinator
        lacks the plug-in; restarted with it, the coordinator maps them by name."""
        spec = dict(kernel="dice", samples=1_000_000, batch_size=100_000, seed=7)
        s = self.server()
        job = s.submit(**spec)
        lease = s.req("POST", "/v1/leases", {"worker": "foreign", "kernels": ["dice@1"],
                                             "max_batches": 1}).json
        # Its own build of dice.c (plain cc: a sanitizer build's .so cannot load into python).
        so = os.path.join(self.tmpdir, "dice.so")
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-I", os.path.join(ROOT, "include"),
                        "-o", so, os.path.join(ROOT, "examples", "kernels", "dice", "dice.c"),
                        "-lm"], check=True, timeout=120)
        c = run_plugin(so, 7, lease["first_batch"], lease["first_batch"] * 100_000, 100_000)
        body = {"counts": {"samples": c["samples"], "doubles": c["doubles"]}}  # in this order
        r = s.req("POST", f"/v1/leases/{lease['id']}/complete?worker=foreign", body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(list(s.job(job["id"])["counts"]), ["samples", "doubles"])
        s.stop()
        s.args += ["--kernel-dir", KERNELS]
        s.start()
        self.worker(s, 2, "w", "--kernel-dir", KERNELS)
        done = s.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded", done)
        s2 = self.server("--kernel-dir", KERNELS, db=os.path.join(self.tmpdir, "ref.db"))
        self.worker(s2, 2, "ref", "--kernel-dir", KERNELS)
        ref = s2.wait_job(s2.submit(**spec)["id"])
        self.assertEqual(done["counts"], ref["counts"])
        self.assertEqual(done["result"], ref["result"])

    @unittest.skipUnless(HAVE_PRIMES, "primes.so not built (no libprimesieve)")
    def test_primes_below_powers_of_ten(self):
        s = self.server("--kernel-dir", KERNELS)
        self.worker(s, 2, "p", "--kernel-dir", KERNELS)
        for k in range(1, 11):
            n = 10 ** k
            bs = max(1, n // 7 + 3)  # uneven batches: a short last one
            done = s.wait_job(s.submit(kernel="primes", samples=n, batch_size=bs)["id"])
            self.assertEqual(done["state"], "succeeded", done)
            self.assertEqual(done["counts"], {"primes": PI_OF_10[k - 1]}, k)
        start, width = 10**12 - 5000, 10_000
        expect = primes_in(start, width)
        self.assertEqual(primes_in(0, 1000), 168)  # the sieve itself, against a known value
        done = s.wait_job(s.submit(kernel="primes", samples=width, batch_size=999,
                                   params={"start": start})["id"])
        self.assertEqual(done["counts"], {"primes": expect})
        self.assertEqual(done["params"], {"start": start})
        r = s.req("POST", "/v1/jobs", {"kernel": "primes", "samples": 10,
                                       "params": {"start": -1}})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.error()[0], "invalid_field", r)
        self.assertIn("params.start", r.error()[1])
        # A member the plug-in does not know is named as such (TALLY_KERNEL_PARAMS_UNKNOWN).
        r = s.req("POST", "/v1/jobs", {"kernel": "primes", "samples": 10,
                                       "params": {"stop": 1}})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.error()[0], "unknown_field", r)
        self.assertIn('unknown member "stop"', r.error()[1])
        # primes' result has no stderr: a job cannot stop early on it.
        r = s.req("POST", "/v1/jobs", {"kernel": "primes", "samples": 10, "target_stderr": 0.1})
        self.assertEqual(r.status, 400, r)
        self.assertIn("target_stderr", r.error()[1])

    @unittest.skipUnless(HAVE_PRIMES, "primes.so not built (no libprimesieve)")
    def test_bad_params_fail_on_workers_when_the_coordinator_lacks_the_kernel(self):
        s = self.server("--max-failures", "1")
        self.worker(s, 1, "p", "--kernel-dir", KERNELS)
        done = s.wait_job(s.submit(kernel="primes", samples=10, params={"begin": 3})["id"])
        self.assertEqual(done["state"], "failed", done)
        self.assertIn("params", done["error"])


if __name__ == "__main__":
    unittest.main()
