"""Kernel exec: a job's program run per batch by real workers, under their --allow-exec.

The seed post's sample() (examples/sample.py) runs through the service, and its counts are checked
against the same program run here batch by batch, and against a rerun on another fleet. Programs
that fail (exit status, timeout with a lingering child, bad or oversized output, a program
outside the allowlist) fail their batches with a reason that names the failure and quotes stderr.
"""
import json
import math
import os
import stat
import subprocess
import time
import unittest

from harness import BIN, TallyTestCase, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(ROOT, "examples", "sample.py")


def local_counts(seed, samples, batch_size):
    """examples/sample.py run here for every batch, as a worker would, summed."""
    inside = total = 0
    for b in range((samples + batch_size - 1) // batch_size):
        n = min(batch_size, samples - b * batch_size)
        env = {"TALLY_JOB_ID": "0", "TALLY_SEED": str(seed), "TALLY_BATCH": str(b),
               "TALLY_FIRST_SAMPLE": str(b * batch_size), "TALLY_SAMPLES": str(n)}
        out = json.loads(subprocess.run([SAMPLE], env=env, check=True, capture_output=True,
                                        timeout=60).stdout)
        inside += out["inside"]
        total += out["samples"]
    return {"inside": inside, "samples": total}


class ExecTest(TallyTestCase):
    def script(self, name, body):
        """An executable shell script in the test's directory (allowed by the workers)."""
        path = os.path.join(self.tmpdir, "bin", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
        return path

    def test_seed_sample_through_the_service(self):
        spec = dict(kernel="exec", samples=200_000, batch_size=20_000, seed=11,
                    params={"argv": [SAMPLE]})
        s = self.server()
        self.worker(s, 2, "py", "--allow-exec", SAMPLE)
        done = s.wait_job(s.submit(**spec)["id"], timeout=240)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["params"], {"argv": [SAMPLE]})
        counts = done["counts"]
        self.assertEqual(set(counts), {"inside", "samples"})
        self.assertEqual(counts["samples"], 200_000)
        p = counts["inside"] / counts["samples"]
        self.assertLess(abs(4 * p - math.pi), 5 * 4 * math.sqrt(p * (1 - p) / 200_000))
        # The same program run here, batch by batch: the same counts, exactly.
        self.assertEqual(counts, local_counts(11, 200_000, 20_000))
        # A rerun on another fleet (two one-thread workers) gives them again.
        s2 = self.server(db=os.path.join(self.tmpdir, "second.db"))
        self.worker(s2, 1, "py-a", "--allow-exec", os.path.dirname(SAMPLE))
        self.worker(s2, 1, "py-b", "--allow-exec", os.path.dirname(SAMPLE))
        again = s2.wait_job(s2.submit(**spec)["id"], timeout=240)
        self.assertEqual(again["counts"], counts)

    def test_exec_is_off_unless_allowed(self):
        prog = self.script("one", 'echo "{\\"n\\": $TALLY_SAMPLES}"\n')
        s = self.server()
        self.worker(s, 1, "plain")
        job = s.submit(kernel="exec", samples=10, batch_size=5, params={"argv": [prog]})
        time.sleep(1.5)  # the worker has polled (--wait 2) and was offered nothing
        j = s.job(job["id"])
        self.assertEqual(j["state"], "queued")
        self.assertIn("exec", j.get("waiting_for", ""))
        self.worker(s, 1, "allowed", "--allow-exec", os.path.dirname(prog))
        done = s.wait_job(job["id"], timeout=60)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["counts"], {"n": 10})
        self.assertNotIn("waiting_for", done)

    def test_outside_the_allowlist_is_never_run(self):
        allowed = self.script("allowed", "echo '{}'\n")
        os.makedirs(os.path.join(self.tmpdir, "other"))
        os.symlink("/bin/echo", os.path.join(self.tmpdir, "bin", "echo-link"))
        s = self.server("--max-failures", "1")
        w = self.worker(s, 1, "w", "--allow-exec", allowed)
        argv0s = ["/bin/echo", os.path.join(self.tmpdir, "bin", "..", "other", "x"), "sh",
                  os.path.join(self.tmpdir, "bin", "echo-link")]
        jobs = [s.submit(kernel="exec", samples=1, params={"argv": [a, "{}"]}) for a in argv0s]
        # The worker passes them over (skip_jobs): they are neither run nor failed, and wait
        # for a worker that allows their program.
        wait_for("the worker to pass every job over",
                 lambda: w.log().count("job skipped") >= len(argv0s), 20)
        time.sleep(1)
        for j in jobs:
            job = s.job(j["id"])
            self.assertIn(job["state"], ("queued", "running"))
            self.assertEqual(job["batches"]["done"], 0)
            self.assertIn("params.argv[0]", job["last_failure"])  # why it makes no progress
        log = w.log()
        self.assertRegex(log, r"argv\[0\]: sh \(/\S+\) is not allowed")  # found in PATH
        self.assertIn("echo-link (/usr/bin/echo) is not allowed", log)  # symlinks followed
        self.assertIn("other/x: not an executable file", log)

    def test_environment_is_cleared_but_for_tally_and_passed_variables(self):
        prog = self.script("env", r'''
other=$(env | grep -v '^TALLY_' | grep -v '^PWD=' | grep -v '^SHLVL=' | grep -v '^_=' | wc -l)
mine=$( [ "$MY_SETTING" = "kept" ] && echo 1 || echo 0 )
first=$(( TALLY_FIRST_SAMPLE == TALLY_BATCH * 4 ))
job=$( [ -n "$TALLY_JOB_ID" ] && [ -n "$TALLY_SEED" ] && echo 1 || echo 0 )
echo "{\"other\": $other, \"mine\": $mine, \"first_ok\": $first, \"job\": $job, \"n\": $TALLY_SAMPLES}"
''')
        os.environ["MY_SETTING"] = "kept"
        os.environ["NOT_MINE"] = "dropped"
        os.environ["TALLY_BATCH"] = "1000"  # the worker's own: never the program's
        try:
            s = self.server()
            self.worker(s, 2, "w", "--allow-exec", prog, "--exec-env", "MY_SETTING")
        finally:
            del os.environ["MY_SETTING"], os.environ["NOT_MINE"], os.environ["TALLY_BATCH"]
        done = s.wait_job(s.submit(kernel="exec", samples=10, batch_size=4, seed=5,
                                   params={"argv": [prog]})["id"], timeout=60)
        self.assertEqual(done["state"], "succeeded", done)
        # 3 batches: MY_SETTING is the only variable besides TALLY_* (and the shell's own).
        self.assertEqual(done["counts"], {"other": 3, "mine": 3, "first_ok": 3, "job": 3,
                                          "n": 10})

    def test_tally_variables_cannot_be_passed_through(self):
        """--exec-env TALLY_BATCH would override the batch's own variable for some programs:
        the worker refuses it at start (in the option or in TALLY_EXEC_ENV)."""
        for args, env in [(["--exec-env", "TALLY_BATCH"], {}),
                          (["--exec-env", "HOME:TALLY_SEED"], {}),
                          ([], {"TALLY_EXEC_ENV": "TALLY_FIRST_SAMPLE"})]:
            r = subprocess.run([os.path.join(BIN, "tally-worker"), "--server",
                                "http://127.0.0.1:9", "--allow-exec", "/bin/true"] + args,
                               env=dict(os.environ, TALLY_BATCH="1000", **env),
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, (args, env, r.stderr))
            self.assertIn("--exec-env", r.stderr)
            self.assertIn("TALLY_* variables are the batch's own", r.stderr)

    def test_programs_get_no_descriptor_of_the_worker(self):
        prog = self.script("fds", r'''
n=$(ls -l /proc/self/fd/ | grep -c 'socket:')
echo "{\"sockets\": $n, \"n\": 1}"
''')
        s = self.server()
        self.worker(s, 2, "w", "--allow-exec", prog)
        done = s.wait_job(s.submit(kernel="exec", samples=4, batch_size=1,
                                   params={"argv": [prog]})["id"], timeout=60)
        self.assertEqual(done["state"], "succeeded", done)
        # None of the worker's sockets (to the coordinator, libcurl's own) reach a program.
        self.assertEqual(done["counts"], {"sockets": 0, "n": 4})

    def test_a_worker_without_the_program_passes_the_job_on(self):
        prog = self.script("here", "echo '{\"n\": 1}'\n")
        s = self.server("--max-failures", "1")
        for i in range(2):  # exec on, but not this program: they give its leases back
            self.worker(s, 1, f"other{i}", "--allow-exec", "/bin/true")
        jobs = [s.submit(kernel="exec", samples=3, batch_size=1, params={"argv": [prog]})
                for _ in range(3)]
        time.sleep(2)
        self.assertEqual({s.job(j["id"])["state"] for j in jobs} - {"queued", "running"}, set())
        self.worker(s, 1, "owner", "--allow-exec", prog)
        for j in jobs:
            done = s.wait_job(j["id"], timeout=60)
            self.assertEqual(done["state"], "succeeded", done)
            self.assertEqual(done["counts"], {"n": 3})

    def test_unrunnable_jobs_do_not_starve_a_runnable_one(self):
        # Issue 14: behind 17 jobs whose program no worker allows, a runnable one waited more
        # than 41 s (the worker's skip list held 16, and it backed off after each skip).
        prog = self.script("ok", "echo '{\"n\": 1}'\n")
        s = self.server()
        bad = [s.submit(kernel="exec", samples=1, params={"argv": ["/bin/echo", "{}"]})
               for _ in range(20)]
        good = s.submit(kernel="exec", samples=1, params={"argv": [prog]})
        t0 = time.monotonic()
        w = self.worker(s, 1, "w", "--allow-exec", prog)
        done = s.wait_job(good["id"], timeout=20)
        self.assertEqual(done["state"], "succeeded", done)
        took = time.monotonic() - t0
        # The coordinator remembers what this worker cannot run: each bad job is offered to it
        # once, and it does not back off after giving one back.
        self.assertLessEqual(w.log().count("job skipped"), len(bad), w.log())
        self.assertLess(took, 10, f"the runnable job took {took:.1f}s")
        for j in bad:
            job = s.job(j["id"])
            self.assertIn(job["state"], ("queued", "running"))
            self.assertEqual(job["batches"]["done"], 0)

    def test_a_reason_cut_inside_a_character_is_still_shown(self):
        s = self.server()
        job = s.submit(kernel="pi", samples=1000, batch_size=100)
        lease = s.req("POST", "/v1/leases", {"worker": "t", "kernels": ["pi"]}).json
        reason = "x" * 199 + "\u00e9" * 5  # kept to 200 bytes: the cut splits a character
        r = s.req("POST", f"/v1/leases/{lease['id']}/fail?worker=t",
                  {"error": reason, "fault": False})
        self.assertEqual(r.status, 200, r)
        j = s.job(job["id"])
        self.assertTrue(j["last_failure"].startswith("x" * 199), j)

    def test_batches_may_name_their_own_counts(self):
        prog = self.script("odd", r'''
if [ $((TALLY_BATCH % 2)) -eq 0 ]; then echo '{"even": 1}'; else echo '{"odd": 2, "even": 0}'; fi
''')
        s = self.server()
        self.worker(s, 2, "w", "--allow-exec", prog)
        done = s.wait_job(s.submit(kernel="exec", samples=10, batch_size=1,
                                   params={"argv": [prog]})["id"], timeout=60)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["counts"], {"even": 5, "odd": 10})

    def test_failures_name_their_cause(self):
        marker = os.path.join(self.tmpdir, "child.pid")
        cases = {
            "status": ('echo boom-on-stderr >&2; exit 3\n', "exited with status 3"),
            "signal": ('kill -9 $$\n', "killed by signal 9"),
            "timeout": (f'sleep 1000 & echo $! > {marker}; echo waiting >&2; sleep 1000\n',
                        "timed out after 0.5s"),
            "garbage": ('echo not json; echo garbage-stderr >&2\n', "one JSON object"),
            "array": ("echo '[1, 2]'\n", "one JSON object"),
            "negative": ("echo '{\"x\": -1}'\n", "non-negative integer"),
            "badname": ("echo '{\"X Y\": 1}'\n", "count name"),
            "big": ("head -c 100000 /dev/zero | tr '\\0' 'a'\n", "more than 65536 bytes"),
            "binary": ("printf 'bad \\377 byte' >&2; exit 4\n", "exited with status 4"),
        }
        s = self.server("--max-failures", "1")
        for name, (body, _) in cases.items():
            self.script(name, body)
        self.worker(s, 2, "w", "--allow-exec", os.path.join(self.tmpdir, "bin"))
        for name, (_, why) in cases.items():
            prog = os.path.join(self.tmpdir, "bin", name)
            done = s.wait_job(s.submit(kernel="exec", samples=1, params={
                "argv": [prog], "timeout_s": 0.5})["id"], timeout=60)
            self.assertEqual(done["state"], "failed", (name, done))
            self.assertIn(why, done["error"], name)
            if name == "status":
                self.assertIn("boom-on-stderr", done["error"])
            if name == "garbage":
                self.assertIn("garbage-stderr", done["error"])
        # The timed-out program's own child went with its process group.
        with open(marker) as f:
            pid = int(f.read())

        def gone():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().split(")")[1].split()[0] == "Z"
            except FileNotFoundError:
                return True
        wait_for("the timed-out program's child to be killed", gone, 10)


if __name__ == "__main__":
    unittest.main()
