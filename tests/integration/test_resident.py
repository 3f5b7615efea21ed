"""Kernel exec with "resident": true: a program started once per worker thread and fed its batches
as JSON lines on stdin (issue 16).

The protocol end to end: the lines the programs get are exactly the batches' own, the job's counts
equal the same program fed those lines here, and a rerun on another fleet gives them again; each
thread started its program once, in a cleared environment with TALLY_JOB_ID and TALLY_RESIDENT=1.
Every way a program can fail (exit, signal, exit 0 before answering, timeout with a lingering
child, a line that is not an object of counts, bad counts, 64 KiB without a newline, --exec-max-rss)
fails its batch with a reason naming it, and the program is killed; a crash is followed by a
restart and exact counts. No program outlives its worker (kill -9, SIGTERM), its job's end on that
worker, or --exec-idle; none is shared between jobs. The allowlist and environment rules of plain
exec hold, and "resident" must be a boolean.
"""
import json
import os
import signal
import stat
import subprocess
import sys
import time
import unittest

from harness import TallyTestCase, wait_for

# The resident program of most tests (Python, stdlib only). It notes its start (pid, parent,
# start time, environment and descriptors as execve gave them) and every line it reads in the
# file argv[1], one JSON record a line. Options in argv[2:]: sleep=S before each answer,
# crash_once=B (SIGKILL itself on batch B, once: a marker file next to its log remembers),
# grow=MIB (after its answer, hold MIB more memory, touched). With HOLD=<path> in its
# environment, it answers only once that file exists (and never grows).
# Its counts depend only on the batch: 200 points drawn from random.Random(f"{seed}/{batch}"),
# the batch's samples and first sample, and a hash of all four.
RESIDENT = r'''#!{python}
import hashlib, json, os, random, sys, time

log, opts = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])


def note(**rec):
    rec["pid"] = os.getpid()
    with open(log, "a") as f:
        f.write(json.dumps(rec) + "\n")


def counts(msg):
    seed, b, first, n = int(msg["seed"]), msg["batch"], msg["first_sample"], msg["samples"]
    r = random.Random(f"{{seed}}/{{b}}")
    inside = sum(r.random() ** 2 + r.random() ** 2 <= 1 for _ in range(200))
    h = hashlib.sha256(f"{{seed}}/{{b}}/{{first}}/{{n}}".encode()).digest()
    return {{"inside": inside, "samples": n, "first": first, "hash": h[0] * 256 + h[1],
            "batches": 1}}


with open("/proc/self/stat") as f:
    starttime = f.read().rsplit(")", 1)[1].split()[19]
with open("/proc/self/environ", "rb") as f:
    env = dict(v.decode().split("=", 1) for v in f.read().split(b"\0") if v)
fds = {{}}
for fd in os.listdir("/proc/self/fd"):
    try:
        fds[fd] = os.readlink(f"/proc/self/fd/{{fd}}")
    except OSError:
        pass
note(start=True, ppid=os.getppid(), starttime=starttime, env=env, fds=fds)
while True:
    raw = sys.stdin.buffer.readline()
    if not raw:
        break
    msg = json.loads(raw)
    note(line=raw.decode(), job=env.get("TALLY_JOB_ID"))
    if msg["batch"] == int(opts.get("crash_once", -1)) and not os.path.exists(log + ".crashed"):
        open(log + ".crashed", "w").close()
        os.kill(os.getpid(), 9)
    time.sleep(float(opts.get("sleep", 0)))
    while env.get("HOLD") and not os.path.exists(env["HOLD"]):
        time.sleep(0.05)
    sys.stdout.write(json.dumps(counts(msg)) + "\n")
    sys.stdout.flush()
    if "grow" in opts and not env.get("HOLD"):
        fat = b"x" * (int(opts["grow"]) << 20)
        note(grown=True)
'''


def batch_lines(job_id, seed, samples, batch_size):
    """The lines a worker writes for a job's batches: compact JSON, keys in this order, a seed
    above 2^63-1 as a decimal string (as in the lease)."""
    wire = seed if seed < 2 ** 63 else str(seed)
    return [json.dumps({"job_id": job_id, "seed": wire, "batch": b,
                        "first_sample": b * batch_size,
                        "samples": min(batch_size, samples - b * batch_size)},
                       separators=(",", ":"))
            for b in range((samples + batch_size - 1) // batch_size)]


def running(pid, starttime=None):
    """Whether pid is a live process (a zombie is not), and the same one when its start time
    (field 22 of /proc/<pid>/stat) is given."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and (starttime is None or fields[19] == starttime)


class ResidentTest(TallyTestCase):
    def setUp(self):
        super().setUp()
        self.bin = os.path.join(self.tmpdir, "b")  # allowed by the workers
        self.logs = os.path.join(self.tmpdir, "logs")
        os.makedirs(self.bin)
        os.makedirs(self.logs)
        self.resident = self.executable("res", RESIDENT.format(python=sys.executable))

    def tearDown(self):
        # Programs that outlived their workers (a failure of this suite) are ended here, by
        # their ids, once the harness has stopped the workers: only processes running a
        # program of this test's.
        notes = [n for name in os.listdir(self.logs) for n in self.notes(name)]
        super().tearDown()
        for n in notes:
            pid = n.get("pid")
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    mine = self.tmpdir.encode() in f.read()
            except (OSError, TypeError):
                continue
            if mine and running(pid, n.get("starttime")):
                print(f"\n{self.id()}: ending program {pid}, left running")
                os.kill(pid, signal.SIGKILL)

    def executable(self, name, text):
        path = os.path.join(self.bin, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
        return path

    def script(self, name, body):
        """A shell program that notes its pid in logs/<name> and runs body."""
        log = os.path.join(self.logs, name)
        return self.executable(name, f'#!/bin/sh\necho "{{\\"start\\": true, \\"pid\\": $$}}" '
                                     f'>> {log}\n{body}\n')

    def notes(self, name):
        """The records in logs/<name>."""
        try:
            with open(os.path.join(self.logs, name)) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def starts(self, name):
        return [n for n in self.notes(name) if n.get("start")]

    def lines(self, name):
        return [n for n in self.notes(name) if "line" in n]

    def argv(self, name, *opts):
        """params.argv of the resident program noting in logs/<name>."""
        return [self.resident, os.path.join(self.logs, name)] + list(opts)

    def by_hand(self, lines, job_id):
        """The resident program fed lines here: its answers, summed."""
        env = {"TALLY_JOB_ID": job_id, "TALLY_RESIDENT": "1"}
        p = subprocess.run(self.argv("by-hand"), input="".join(x + "\n" for x in lines).encode(),
                           env=env, capture_output=True, check=True, timeout=120)
        total = {}
        answers = p.stdout.decode().splitlines()
        self.assertEqual(len(answers), len(lines))
        for a in answers:
            for k, v in json.loads(a).items():
                total[k] = total.get(k, 0) + v
        return total

    def wait_gone(self, starts, what, timeout=10):
        wait_for(what, lambda: not any(running(n["pid"], n.get("starttime")) for n in starts),
                 timeout)

    def check_run(self, name, job, workers, seed):
        """The notes of a resident job's run: exactly its batch lines, each program started at
        most once per worker thread, in the resident environment, with no socket of the
        worker's."""
        lines, starts = self.lines(name), self.starts(name)
        want = batch_lines(job["id"], seed, job["samples"], job["batch_size"])
        got = {n["line"] for n in lines}
        self.assertTrue(all(n["line"].endswith("\n") for n in lines))
        self.assertEqual(sorted(x.rstrip("\n") for x in got), sorted(want))
        pids = [n["pid"] for n in starts]
        self.assertEqual(len(pids), len(set(pids)), starts)
        self.assertLessEqual({n["pid"] for n in lines}, set(pids))
        for w, threads in workers:
            mine = [n for n in starts if n["ppid"] == w.proc.pid]
            self.assertLessEqual(len(mine), threads, (w.name, mine))
        self.assertEqual({n["ppid"] for n in starts} - {w.proc.pid for w, _ in workers}, set())
        for n in starts:
            self.assertEqual(n["env"], {"TALLY_JOB_ID": job["id"], "TALLY_RESIDENT": "1"})
            self.assertFalse([t for t in n["fds"].values() if t.startswith("socket:")], n)

    # 1. The protocol end to end.
    def test_counts_equal_the_program_fed_by_hand_and_a_rerun(self):
        seed = 2 ** 64 - 1234567  # above 2^63-1: a string in the lines
        spec = dict(kernel="exec", samples=24 * 5_000_000 - 1_234_567, batch_size=5_000_000,
                    seed=str(seed))
        s = self.server("--max-speculative", "0")
        job = s.submit(**spec, params={"argv": self.argv("first"), "resident": True})
        workers = [(self.worker(s, 2, "a", "--allow-exec", self.bin), 2),
                   (self.worker(s, 1, "b", "--allow-exec", self.bin), 1)]
        done = s.wait_job(job["id"], timeout=120)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertIs(done["params"].get("resident"), True, done)
        counts = done["counts"]
        self.assertEqual(counts["batches"], 24)
        self.assertEqual(counts["samples"], spec["samples"])
        self.check_run("first", done, workers, seed)
        # The program fed the batches' lines here: the same counts, exactly.
        self.assertEqual(counts, self.by_hand(batch_lines(done["id"], seed, spec["samples"],
                                                          spec["batch_size"]), done["id"]))
        # A rerun on another coordinator and fleet (1 and 3 threads): the same counts.
        s2 = self.server("--max-speculative", "0", db=os.path.join(self.tmpdir, "second.db"))
        job2 = s2.submit(**spec, params={"argv": self.argv("second"), "resident": True})
        workers2 = [(self.worker(s2, 1, "c", "--allow-exec", self.bin), 1),
                    (self.worker(s2, 3, "d", "--allow-exec", self.bin), 3)]
        again = s2.wait_job(job2["id"], timeout=120)
        self.assertEqual(again["state"], "succeeded", again)
        self.assertEqual(again["counts"], counts)
        self.check_run("second", again, workers2, seed)

    # 2. Every failure mode, named in the job's error; the program killed.
    def test_failures_name_their_cause(self):
        child = os.path.join(self.tmpdir, "child.pid")
        hold = "read more"  # after a bad answer: wait to be killed, not exit
        cases = {
            "status": ("read l; echo boom-on-stderr >&2; exit 3",
                       "exited with status 3", "boom-on-stderr"),
            "signal": ("read l; kill -9 $$", "killed by signal 9", None),
            "zero": ("read l; echo bye >&2; exit 0", "exited with status 0", "bye"),
            "early": ("echo early-stderr >&2; exit 5", "exited with status 5", "early-stderr"),
            "timeout": (f"read l; sleep 1000 & echo $! > {child}; echo waiting >&2; sleep 1000",
                        "timed out after 2s (its process group was killed)", "waiting"),
            "garbage": (f"read l; echo garbage-stderr >&2; echo not json; {hold}",
                        "answered a line that is not a JSON object of counts", "garbage-stderr"),
            "array": (f"read l; echo '[1,2]'; {hold}",
                      "answered a line that is not a JSON object of counts", None),
            "negative": (f"read l; echo '{{\"x\": -1}}'; {hold}", "answered ",
                         "counts.x: must be a non-negative integer"),
            "fraction": (f"read l; echo '{{\"x\": 1.5}}'; {hold}", "answered ",
                         "counts.x: must be a non-negative integer"),
            "big": (f"read l; head -c 100000 /dev/zero | tr '\\0' a; {hold}",
                    "answered more than 65536 bytes without a newline", None),
            "rss": (f"read l; exec {sys.executable} -c 'import time; b = b\"x\" * (160 << 20); "
                    "time.sleep(60)'", "grew past --exec-max-rss 64 MiB", None),
        }
        s = self.server("--max-failures", "1", "--max-speculative", "0")  # one run each
        progs = {name: self.script(name, body) for name, (body, _, _) in cases.items()}
        for name in ("w1", "w2"):
            self.worker(s, 1, name, "--allow-exec", self.bin, "--exec-max-rss", "64")
        jobs = {name: s.submit(kernel="exec", samples=1, params={
            "argv": [progs[name]], "resident": True,
            "timeout_s": 2 if name == "timeout" else 30})["id"] for name in cases}
        for name, (_, why, also) in cases.items():
            done = s.wait_job(jobs[name], timeout=60)
            self.assertEqual(done["state"], "failed", (name, done))
            self.assertIn(f"exec batch 0: {progs[name]} (resident) {why}", done["error"], name)
            if also:
                self.assertIn(also, done["error"], name)
            started = self.starts(name)
            self.assertEqual(len(started), 1, (name, started))
            self.wait_gone(started, f"{name}: the program to be killed")
        # The timed-out program's own child went with its process group.
        with open(child) as f:
            pid = int(f.read())
        wait_for("the timed-out program's child to be killed", lambda: not running(pid), 10)
        # The workers go on: a good resident job succeeds.
        done = s.wait_job(s.submit(kernel="exec", samples=4, batch_size=1, params={
            "argv": self.argv("good"), "resident": True})["id"], timeout=60)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["counts"]["batches"], 4)

    def test_over_exec_max_rss_between_batches_it_is_just_restarted(self):
        s = self.server("--max-speculative", "0")
        release = os.path.join(self.tmpdir, "release")
        job = s.submit(kernel="exec", samples=2 * 10 ** 8, batch_size=10 ** 8, seed=5, params={
            "argv": self.argv("rss", "grow=160"), "resident": True})
        # Worker "hold" takes batch 0 (a lease is one batch: the default rate is 2e7/s) and
        # holds it until released, so that the job is neither done nor has a batch to lease.
        saved = dict(os.environ)
        os.environ["HOLD"] = release
        try:
            self.worker(s, 1, "hold", "--allow-exec", self.bin, "--exec-env", "HOLD")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        wait_for("worker hold to take batch 0", lambda: self.lines("rss"), 30)
        # Worker "lean" computes batch 1; its program then grows past the limit, and idles.
        lean = self.worker(s, 1, "lean", "--allow-exec", self.bin, "--exec-max-rss", "64")
        wait_for("the program to grow", lambda: any(n.get("grown") for n in self.notes("rss")),
                 30)
        # Batch 2 goes to a fresh program, not through a failure.
        r = s.req("POST", f"/v1/jobs/{job['id']}/extend", {"samples": 3 * 10 ** 8})
        self.assertEqual(r.status, 200, r)
        wait_for("batch 2 to be computed", lambda: s.job(job["id"])["batches"]["done"] == 2, 30)
        with open(release, "w"):
            pass
        done = s.wait_job(job["id"], timeout=60)
        self.assertEqual(done["state"], "succeeded", done)
        lines = batch_lines(done["id"], 5, 3 * 10 ** 8, 10 ** 8)
        self.assertEqual(done["counts"], self.by_hand(lines, done["id"]))
        leans = [n for n in self.starts("rss") if n["ppid"] == lean.proc.pid]
        self.assertEqual(len(leans), 2, self.notes("rss"))
        got = {}
        for n in self.lines("rss"):
            got.setdefault(n["pid"], []).append(n["line"])
        self.assertEqual([got.get(n["pid"]) for n in leans],
                         [[lines[1] + "\n"], [lines[2] + "\n"]])
        self.assertEqual([n["line"] for n in self.lines("rss")].count(lines[2] + "\n"), 1)
        self.wait_gone(leans[:1], "the program past --exec-max-rss to be stopped")

    # 3. A crash: the program is started again and the job's counts are exact.
    def test_restarted_after_a_crash(self):
        spec = dict(kernel="exec", samples=6 * 5_000_000, batch_size=5_000_000, seed=8)
        s = self.server()
        self.worker(s, 1, "w", "--allow-exec", self.bin)
        done = s.wait_job(s.submit(**spec, params={"argv": self.argv("crash", "crash_once=2"),
                                                   "resident": True})["id"], timeout=60)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertTrue(os.path.exists(os.path.join(self.logs, "crash.crashed")))
        lines = batch_lines(done["id"], 8, spec["samples"], spec["batch_size"])
        self.assertEqual(done["counts"], self.by_hand(lines, done["id"]))
        # Started, crashed on batch 2, started again for the next batch (one thread: twice).
        self.assertEqual(len(self.starts("crash")), 2, self.notes("crash"))
        self.assertEqual([n["line"] for n in self.lines("crash")].count(lines[2] + "\n"), 2)

    # 4. No program outlives its worker.
    def busy_worker(self, name, threads):
        """A worker whose programs are each in a long batch; returns it and their starts."""
        s = self.server()
        w = self.worker(s, threads, name, "--allow-exec", self.bin)
        s.submit(kernel="exec", samples=8 * 5_000_000, batch_size=5_000_000, params={
            "argv": self.argv(name, "sleep=600"), "resident": True})
        # The first lease has 4 batches (by the default rate): every thread gets one.
        wait_for("every thread's program to be in a batch",
                 lambda: len({n["pid"] for n in self.lines(name)}) == threads, 30)
        starts = self.starts(name)
        self.assertEqual(len(starts), threads)
        self.assertTrue(all(running(n["pid"], n["starttime"]) for n in starts))
        return w, starts

    def test_kill_9_of_the_worker_kills_its_programs(self):
        w, starts = self.busy_worker("k", 2)
        w.kill(signal.SIGKILL)
        self.wait_gone(starts, "the programs of a worker killed with -9")

    def test_sigterm_of_the_worker_stops_its_programs(self):
        w, starts = self.busy_worker("t", 2)
        w.proc.send_signal(signal.SIGTERM)
        wait_for("the worker to exit on SIGTERM", lambda: w.proc.poll() is not None, 15)
        self.wait_gone(starts, "the programs of a worker stopped with SIGTERM")

    # 5. Stopped when their job ends on the worker, and after --exec-idle.
    def test_stopped_when_their_job_ends_here(self):
        s = self.server()
        self.worker(s, 2, "w", "--allow-exec", self.bin)
        done = s.wait_job(s.submit(kernel="exec", samples=8 * 5_000_000, batch_size=5_000_000,
                                   params={"argv": self.argv("end", "sleep=0.05"),
                                           "resident": True})["id"], timeout=60)
        self.assertEqual(done["state"], "succeeded", done)
        starts = self.starts("end")
        self.assertTrue(starts)
        # Well before --exec-idle's default 30 s.
        self.wait_gone(starts, "the programs of a job that ended", 5)

    def cancelled_mid_job(self, name, *args, env=None):
        """A one-thread worker running a resident job of 0.3 s batches, which is cancelled
        once the program answered a batch: no complete ends the job on that worker. Returns
        the worker and the program's starts."""
        s = self.server()
        saved = dict(os.environ)
        os.environ.update(env or {})
        try:
            w = self.worker(s, 1, name, "--allow-exec", self.bin, "--wait", "20", *args)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        job = s.submit(kernel="exec", samples=100 * 10 ** 8, batch_size=10 ** 8, params={
            "argv": self.argv(name, "sleep=0.3"), "resident": True})
        wait_for("a batch to be answered", lambda: len(self.lines(name)) >= 2, 30)
        r = s.req("POST", f"/v1/jobs/{job['id']}/cancel")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(s.job(job["id"])["state"], "cancelled")
        starts = self.starts(name)
        self.assertEqual(len(starts), 1, starts)
        self.cancelled_server = s
        return w, starts

    def test_stopped_after_exec_idle(self):
        # TALLY_EXEC_IDLE=1; the worker long-polls 20 s at a time meanwhile.
        w, starts = self.cancelled_mid_job("idle", env={"TALLY_EXEC_IDLE": "1"})
        self.wait_gone(starts, "the program idle for 1 s to be stopped", 10)
        self.assertTrue(w.alive())

    def test_stopped_after_exec_idle_while_another_job_computes(self):
        # The worker's next lease is another job's single batch of 30 s: the idle program of
        # the cancelled job is stopped while that lease computes, not after it.
        w, starts = self.cancelled_mid_job("idle2", env={"TALLY_EXEC_IDLE": "1"})
        long = self.script("long", 'sleep 30\necho \'{"n": 1}\'')
        s = self.cancelled_server
        job = s.submit(kernel="exec", samples=1, batch_size=1, params={"argv": [long]})
        wait_for("the other job's program to start", lambda: self.starts("long"), 30)
        self.wait_gone(starts, "the program idle for 1 s, during another job's lease", 10)
        self.assertEqual(s.job(job["id"])["state"], "running")
        self.assertTrue(running(self.starts("long")[0]["pid"]))

    def test_exec_idle_0_keeps_them_until_the_worker_stops(self):
        w, starts = self.cancelled_mid_job("keep", "--exec-idle", "0")
        time.sleep(4)  # its lease ends within about a second; idle, it is kept
        self.assertTrue(running(starts[0]["pid"], starts[0]["starttime"]), starts)
        w.proc.send_signal(signal.SIGTERM)
        wait_for("the worker to exit on SIGTERM", lambda: w.proc.poll() is not None, 15)
        self.wait_gone(starts, "the idle program of a worker stopped with SIGTERM")

    # 6. Never shared between jobs.
    def test_never_shared_between_jobs(self):
        s = self.server()
        jobs = [s.submit(kernel="exec", samples=3 * 10 ** 8, batch_size=10 ** 8, params={
            "argv": self.argv("shared", "sleep=0.1"), "resident": True})["id"]
            for _ in range(2)]
        self.worker(s, 1, "w", "--allow-exec", self.bin)
        for j in jobs:
            done = s.wait_job(j, timeout=60)
            self.assertEqual(done["state"], "succeeded", done)
            self.assertEqual(done["counts"]["batches"], 3)
        starts = self.starts("shared")
        by_job = {j: [n["pid"] for n in starts if n["env"]["TALLY_JOB_ID"] == j] for j in jobs}
        # One thread, two jobs: one program each, kept across that job's leases.
        self.assertEqual([len(p) for p in by_job.values()], [1, 1], starts)
        self.assertNotEqual(by_job[jobs[0]], by_job[jobs[1]])
        for n in self.lines("shared"):
            self.assertEqual(json.loads(n["line"])["job_id"], n["job"], n)
            self.assertEqual(by_job[n["job"]], [n["pid"]], n)

    # 7. Plain exec's rules, unchanged; "resident" is a boolean.
    def test_outside_the_allowlist_is_never_run(self):
        other = self.executable("other", "#!/bin/sh\necho '{}'\n")
        s = self.server("--max-failures", "1")
        w = self.worker(s, 1, "w", "--allow-exec", other)
        job = s.submit(kernel="exec", samples=2, batch_size=1, params={
            "argv": self.argv("outside"), "resident": True})
        wait_for("the worker to pass the job over", lambda: "job skipped" in w.log(), 20)
        time.sleep(1)
        j = s.job(job["id"])
        self.assertIn(j["state"], ("queued", "running"))
        self.assertEqual(j["batches"]["done"], 0)
        self.assertIn("params.argv[0]", j["last_failure"])
        self.assertEqual(self.notes("outside"), [])  # never started
        self.worker(s, 1, "allowed", "--allow-exec", self.bin)
        done = s.wait_job(job["id"], timeout=60)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["counts"]["batches"], 2)

    def test_environment_is_cleared_but_for_tally_and_passed_variables(self):
        saved = dict(os.environ)
        os.environ.update(MY_SETTING="kept", NOT_MINE="dropped",
                          TALLY_SEED="1000", TALLY_BATCH="7")  # the worker's own
        try:
            s = self.server()
            w = self.worker(s, 2, "w", "--allow-exec", self.bin, "--exec-env", "MY_SETTING")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        done = s.wait_job(s.submit(kernel="exec", samples=4 * 5_000_000, batch_size=5_000_000,
                                   params={"argv": self.argv("env"), "resident": True})["id"],
                          timeout=60)
        self.assertEqual(done["state"], "succeeded", done)
        starts = self.starts("env")
        self.assertTrue(starts)
        for n in starts:
            self.assertEqual(n["env"], {"TALLY_JOB_ID": done["id"], "TALLY_RESIDENT": "1",
                                        "MY_SETTING": "kept"})
            self.assertEqual(n["ppid"], w.proc.pid)
            self.assertFalse([t for t in n["fds"].values() if t.startswith("socket:")], n)

    def test_resident_is_a_boolean_and_false_is_plain_exec(self):
        s = self.server()
        for bad in ("true", 1, 0, None, [], {}):
            r = s.req("POST", "/v1/jobs", {"kernel": "exec", "samples": 1, "params": {
                "argv": [self.resident], "resident": bad}})
            self.assertEqual(r.status, 400, (bad, r))
            self.assertIn("params.resident", r.error()[1] or "", (bad, r))
        # "resident": false is plain exec: a process per batch, with the batch's variables.
        prog = self.script("plain", r'''
seeded=$( [ -n "$TALLY_SEED" ] && [ -n "$TALLY_BATCH" ] && echo 1 || echo 0 )
echo "{\"n\": $TALLY_SAMPLES, \"seeded\": $seeded, \"resident\": ${TALLY_RESIDENT:-0}}"''')
        self.worker(s, 2, "w", "--allow-exec", self.bin)
        done = s.wait_job(s.submit(kernel="exec", samples=10, batch_size=4, params={
            "argv": [prog], "resident": False})["id"], timeout=60)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["counts"], {"n": 10, "seeded": 3, "resident": 0})
        self.assertEqual(len({n["pid"] for n in self.starts("plain")}), 3)


if __name__ == "__main__":
    unittest.main()
