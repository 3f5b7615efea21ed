"""Storage faults (issue 4, "Faults", item 4): the disk filling up and the database file turning
read-only under a running job; a database locked by another process, read-only, or corrupt at
start.

Under a running job, every reply that reports a change becomes 503 with a JSON body naming the
storage failure (no crash, no hang, none of those changes made), and once the disk is writable
again service resumes: the job ends with counts bit-identical to an undisturbed run and the file
passes PRAGMA integrity_check. At start, tally-server exits 1 within seconds with a message that
names the file and the reason, and leaves a corrupt file as it was.

We run as root, which ignores file modes: read-only is made with chattr +i or a read-only tmpfs
mount, and the full disk is a small tmpfs filled up by a filler file. Where mounting is not
allowed (or TALLY_STORAGE_FSIZE=1), RLIMIT_FSIZE on the server stands in for the full disk.
Mounts are undone, and immutable flags cleared, however a test ends."""
import errno
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

import test_faults
from harness import TallyTestCase, binary, wait_for

# A few seconds on two cores: still running when the fault strikes.
SPEC = dict(kernel="pi", samples=10_000_000_000, batch_size=2_000_000, seed=404)
# The cheapest job: a submit that has to be written.
SMALL = dict(kernel="count", samples=1000, batch_size=1000, seed=1)
KEY = {"Idempotency-Key": "storage-fault"}  # on every submit made through a fault
FAULT_S = 2.0  # how long the fault lasts once the workers have met it
READ_ONLY = r"(?i)read-only|readonly"

_references = {}


def chattr(flag, *paths):
    """Sets (+i) or clears (-i) the immutable flag; False where the filesystem lacks it."""
    return subprocess.run(["chattr", flag, *paths], capture_output=True).returncode == 0


def immutable_blocks_writes(where):
    """True when chattr +i stops writes through a descriptor opened before (not on tmpfs)."""
    probe = os.path.join(where, "immutable-probe")
    fd = os.open(probe, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not chattr("+i", probe):
            return False
        try:
            os.pwrite(fd, b"x", 0)
            return False
        except OSError as e:
            return e.errno == errno.EPERM
    finally:
        chattr("-i", probe)
        os.close(fd)
        os.unlink(probe)


def db_files(db):
    """The database and its WAL as they exist now."""
    return [p for p in (db, db + "-wal", db + "-shm") if os.path.exists(p)]


def integrity(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


class DiskFull:
    """A tmpfs filled up to its last page by a filler file; freed by deleting it."""

    server_kw = {}

    def __init__(self, mnt):
        self.filler = os.path.join(mnt, "filler")

    def apply(self, server):
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o644)
        chunk = b"\0" * (1 << 20)
        try:
            while True:
                os.write(fd, chunk)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)

    def remove(self):
        if os.path.exists(self.filler):
            os.unlink(self.filler)


def ignore_sigxfsz():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


class FileSizeLimit:
    """RLIMIT_FSIZE on the server at the size of its files: a write past their ends fails with
    EFBIG (SIGXFSZ ignored) as on a full disk; freed by raising the limit again."""

    server_kw = {"preexec_fn": ignore_sigxfsz}

    def __init__(self, db):
        self.db = db
        self.pid = None

    def apply(self, server):
        self.pid = server.proc.pid
        limit = max(os.path.getsize(p) for p in db_files(self.db))
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    def remove(self):
        if self.pid:
            try:
                resource.prlimit(self.pid, resource.RLIMIT_FSIZE,
                                 (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            except ProcessLookupError:
                pass


class Immutable:
    """The database and its WAL made immutable (chattr +i) under the running server: writes
    through its open descriptors fail with EPERM; made writable again with chattr -i."""

    server_kw = {}

    def __init__(self, db):
        self.db = db
        self.paths = []

    def apply(self, server):
        self.paths = db_files(self.db)
        if not chattr("+i", *self.paths):
            raise AssertionError(f"chattr +i {self.paths} failed")

    def remove(self):
        if self.paths:
            chattr("-i", *self.paths)


class StorageTest(TallyTestCase):
    def reference(self):
        """The counts of SPEC run undisturbed (once per run of the suite)."""
        if "spec" not in _references:
            _references["spec"] = test_faults.FaultTest.reference(self, **SPEC)
        return _references["spec"]

    def mount_tmpfs(self, size_mb):
        """A fresh tmpfs of size_mb MiB, unmounted once the test's processes are stopped; None
        where mounting is not allowed."""
        where = tempfile.mkdtemp(prefix="tally-mnt-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tally-test",
                            where], capture_output=True)
        if r.returncode:
            os.rmdir(where)
            return None
        self.addCleanup(self.unmount, where)  # cleanups run after tearDown stopped the servers
        return where

    def unmount(self, where):
        if subprocess.run(["umount", where], capture_output=True).returncode:
            for p in self.procs:  # one that ignored SIGTERM keeps the mount busy
                if p.proc.poll() is None:
                    p.proc.kill()
                    p.proc.wait(timeout=10)
            if subprocess.run(["umount", where], capture_output=True).returncode:
                subprocess.run(["umount", "-l", where], capture_output=True)
        os.rmdir(where)

    def store(self, name="store.db"):
        """A real store holding one job, written by a server now stopped; its path."""
        s = self.server(db=os.path.join(self.tmpdir, name))
        self.assertEqual(s.submit(**SMALL)["id"], "1")
        self.assertEqual(s.stop(), 0)
        self.assertEqual(db_files(s.db), [s.db])  # checkpointed: one self-contained file
        return s.db

    def refused_start(self, db, timeout=10):
        """Runs tally-server on db, which it must refuse: (stderr, seconds) once it has exited
        with status 1."""
        t0 = time.monotonic()
        try:
            p = subprocess.run([binary("tally-server"), "--listen", "127.0.0.1:0", "--db", db],
                               capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            self.fail(f"tally-server still running on {db} after {timeout}s: "
                      f"{e.stdout!r} {e.stderr!r}")
        took = time.monotonic() - t0
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 1, f"{p.stdout!r} {err}")
        self.assertIn(db, err, "the message names the file")
        return err, took

    def assert_unavailable(self, r, what):
        self.assertEqual(r.status, 503, f"{what}: {r}")
        code, message = r.error()
        self.assertEqual(code, "unavailable", f"{what}: {r}")
        self.assertIn("storage", message, f"{what}: {r}")

    def assert_answered(self, r, what):
        """A reply that may report state: 200, or 503 when the commit it waited for failed."""
        if r.status != 200:
            self.assert_unavailable(r, what)
        return r.status

    # --- under a running job ------------------------------------------------------------------

    def ride_out(self, fault, db):
        """Runs SPEC with two workers through fault: what it refuses while the fault lasts, how
        it resumes, and that it ends exact and with a sound file. Prints the timings and what
        the reads answered during the fault."""
        s = self.server("--lease-target-ms", "300", db=db, **fault.server_kw)
        workers = [self.worker(s, 1), self.worker(s, 1)]
        job = s.submit(**SPEC)
        s.wait_until(job["id"], lambda j: j["progress"] > 0.1, timeout=60)
        times, reads = {}, {}
        try:
            fault.apply(s)
            t0 = time.monotonic()
            # Every reply that reports a change is 503, promptly, and the change is not made.
            self.assert_unavailable(s.req("POST", "/v1/jobs", SMALL, headers=KEY, timeout=10),
                                    "submit")
            self.assert_unavailable(s.req("POST", f"/v1/jobs/{job['id']}/cancel", timeout=10),
                                    "cancel")
            times["first 503s"] = time.monotonic() - t0
            # The workers meet it too (their completes are retried), and nobody dies of it.
            wait_for("a worker's complete refused with 503",
                     lambda: any("status=503" in w.log() for w in workers), 15)
            time.sleep(FAULT_S)
            self.assertIsNone(s.proc.poll(), f"the coordinator died: {s.log()[-3000:]}")
            for w in workers:
                self.assertTrue(w.alive(), w.log()[-2000:])
            # Reads answer (200, or 503 when what they report could not be committed).
            for path in [f"/v1/jobs/{job['id']}", "/v1/jobs", "/healthz"]:
                reads[path] = self.assert_answered(s.req("GET", path, timeout=10), path)
            self.assert_unavailable(s.req("POST", "/v1/jobs", SMALL, headers=KEY, timeout=10),
                                    "submit, later")
            # /healthz says so: writes fail (a monitor must see it, though reads work).
            self.assert_unavailable(s.req("GET", "/healthz", timeout=10), "healthz")
        finally:
            fault.remove()
        # Writable again: the submit goes through within seconds, as new (its key was never
        # saved), and once only.
        t0 = time.monotonic()
        while True:
            r = s.req("POST", "/v1/jobs", SMALL, headers=KEY, timeout=10)
            if r.status != 503:
                self.assertEqual(r.status, 201, r)
                break
            self.assert_unavailable(r, "submit after the fault")
            self.assertLess(time.monotonic() - t0, 15, f"no recovery: {s.log()[-3000:]}")
            time.sleep(0.1)
        times["resumed after"] = time.monotonic() - t0
        health = s.req("GET", "/healthz", timeout=10)
        self.assertEqual((health.status, health.json), (200, {"ok": True}))
        done = s.wait_job(job["id"], timeout=120)
        times["job done after"] = time.monotonic() - t0
        self.assertEqual(done["state"], "succeeded", done)  # the refused cancel did not happen
        self.assertEqual(done["counts"]["samples"], SPEC["samples"])
        total = done["batches"]["total"]
        self.assertEqual(done["batches"], {"total": total, "done": total, "leased": 0,
                                           "pending": 0})
        again = s.req("POST", "/v1/jobs", SMALL, headers=KEY)
        self.assertEqual((again.status, again.json["id"]), (200, r.json["id"]), again)
        self.assertEqual(s.wait_job(r.json["id"], timeout=30)["state"], "succeeded")
        # The refused submits made no job.
        jobs = s.req("GET", "/v1/jobs").json["jobs"]
        self.assertEqual(sorted(j["id"] for j in jobs), sorted([job["id"], r.json["id"]]))
        for w in workers:
            w.kill(signal.SIGTERM)
        self.assertEqual(s.stop(), 0, s.log()[-3000:])
        self.assertEqual(integrity(db), [("ok",)])
        self.assertEqual(done["counts"], self.reference())
        print(f"\n{type(fault).__name__}: " + ", ".join(f"{k} {v:.2f}s" for k, v in times.items())
              + "; reads during it: " + ", ".join(f"GET {k} {v}" for k, v in reads.items()))

    def test_disk_full_while_running(self):
        mnt = None if os.environ.get("TALLY_STORAGE_FSIZE") else self.mount_tmpfs(32)
        if mnt:
            self.ride_out(DiskFull(mnt), os.path.join(mnt, "tally.db"))
        else:
            db = os.path.join(self.tmpdir, "tally.db")
            self.ride_out(FileSizeLimit(db), db)

    def test_read_only_while_running(self):
        if not immutable_blocks_writes(self.tmpdir):
            self.skipTest("chattr +i does not stop writes here")
        db = os.path.join(self.tmpdir, "tally.db")
        self.ride_out(Immutable(db), db)

    # --- at start -----------------------------------------------------------------------------

    def test_locked_by_another_process(self):
        db = self.store()
        with self.subTest("another tally-server"):
            first = self.server(db=db)
            err, took = self.refused_start(db)
            self.assertRegex(err, r"(?i)locked|busy")
            self.assertLess(took, 9)  # busy_timeout is 5 s
            self.assertEqual(first.stop(), 0)
        with self.subTest("sqlite3 holding BEGIN EXCLUSIVE"):
            other = sqlite3.connect(db, isolation_level=None, timeout=0)
            try:
                other.execute("BEGIN EXCLUSIVE")
                err, took = self.refused_start(db)
                self.assertRegex(err, r"(?i)locked|busy")
                self.assertLess(took, 9)
            finally:
                other.close()
        # Once let go, the store opens as it was.
        s = self.server(db=db)
        self.assertEqual(s.job("1")["samples"], SMALL["samples"])

    def test_read_only_at_start(self):
        db = self.store()
        with open(db, "rb") as f:
            before = f.read()
        with self.subTest("immutable file"):
            if not chattr("+i", db):
                self.skipTest("no chattr +i here")
            try:
                err, _ = self.refused_start(db)
            finally:
                chattr("-i", db)
            self.assertRegex(err, READ_ONLY)
            with open(db, "rb") as f:
                self.assertEqual(f.read(), before)
        with self.subTest("read-only mount"):
            mnt = self.mount_tmpfs(8)
            if not mnt:
                self.skipTest("cannot mount a tmpfs here")
            ro = shutil.copy(db, mnt)
            subprocess.run(["mount", "-o", "remount,ro", mnt], check=True, capture_output=True)
            err, _ = self.refused_start(ro)
            self.assertRegex(err, READ_ONLY)

    def test_corrupt_at_start(self):
        """Refused with a message naming the file, which is left byte for byte as it was. (The
        unit test test_open_rejects_garbage covers db_open on a text file; this is the binary,
        its exit status, and damage inside a real store.)"""
        good = self.store()
        with open(good, "rb") as f:
            store = f.read()
        conn = sqlite3.connect(f"file:{good}?mode=ro", uri=True)
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'jobs'").fetchone()[0]
        conn.close()
        damaged = bytearray(store)
        at = (root - 1) * page + (100 if root == 1 else 0)
        damaged[at:at + 12] = b"\xff" * 12  # the jobs table's b-tree page header
        cases = {
            "random bytes": random.Random(4).randbytes(8192),
            "truncated store": store[:len(store) // 2 + 1000],
            "damaged b-tree page": bytes(damaged),
        }
        for name, content in cases.items():
            with self.subTest(name):
                db = os.path.join(self.tmpdir, re.sub(r"\W", "-", name) + ".db")
                with open(db, "wb") as f:
                    f.write(content)
                err, took = self.refused_start(db)
                self.assertRegex(err, r"(?i)corrupt|malformed|not a database")
                self.assertLess(took, 5)
                with open(db, "rb") as f:
                    self.assertEqual(f.read(), content, "the file was changed")


if __name__ == "__main__":
    unittest.main()
