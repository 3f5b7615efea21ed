"""The tally command line: `tally run` computes on this machine when TALLY_SERVER is unset and on
a cluster when it is set, with the same counts; submit, status, wait, list and cancel against a
real coordinator; a progress bar on a terminal, plain lines otherwise; clear errors and exit
statuses."""
import json
import os
import re
import pty
import select
import signal
import subprocess
import time
import unittest

from harness import TallyTestCase, binary, wait_for

SPEC = ["--samples", "2e8", "--batch-size", "1e6", "--seed", "42"]


class CliTest(TallyTestCase):
    def tally(self, *args, server=None, token=None, timeout=120, env_extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        env["TMPDIR"] = self.tmpdir
        if server:
            env["TALLY_SERVER"] = server.url
        if token:
            env["TALLY_TOKEN"] = token
        env.update(env_extra or {})
        return subprocess.run([binary("tally")] + list(args), env=env, capture_output=True,
                              text=True, timeout=timeout)

    def cluster(self, *server_args, env=None):
        s = self.server(*server_args)
        self.worker(s, threads=2)
        return s

    def test_run_here_and_on_a_cluster_give_the_same_counts(self):
        here = self.tally("run", "pi", *SPEC, "--json")
        self.assertEqual(here.returncode, 0, here.stderr)
        local = json.loads(here.stdout)
        self.assertEqual(local["state"], "succeeded")
        self.assertEqual(local["counts"]["samples"], 200_000_000)
        # The embedded coordinator's temporary store is gone with it.
        self.assertEqual([f for f in os.listdir(self.tmpdir) if f.startswith("tally-run")], [])
        s = self.cluster()
        there = self.tally("run", "pi", *SPEC, "--json", server=s)
        self.assertEqual(there.returncode, 0, there.stderr)
        remote = json.loads(there.stdout)
        self.assertEqual(remote["counts"], local["counts"])
        self.assertEqual(remote["result"], local["result"])
        # ... and the same as the job submitted straight to the API.
        direct = s.wait_job(s.submit(kernel="pi", samples=200_000_000, batch_size=1_000_000,
                                     seed=42)["id"])
        self.assertEqual(direct["counts"], local["counts"])

    def test_plain_output_when_not_a_terminal(self):
        r = self.tally("run", "pi", "--samples", "3e9", "--seed", "7")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertNotIn("\r", r.stdout)
        self.assertNotIn("[", r.stdout)
        self.assertIn("100.0%  3e9/3e9 samples", lines[-2])
        self.assertRegex(lines[-1], r"^job 1: succeeded, 100\.0% of 3e9 samples in [0-9.]+ s "
                                    r"\([0-9.e]+ samples/s\); pi = 3\.14[0-9]* \+- [0-9.e-]+$")

    def test_progress_bar_on_a_terminal(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        env["TMPDIR"] = self.tmpdir
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(binary("tally"), ["tally", "run", "pi", "--samples", "4e9"], env)
        out, deadline = b"", time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        text = out.decode(errors="replace")
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, text)
        self.assertIn("\r[" + "#" * 24 + "] 100.0%", text)  # redrawn in place, full at the end
        self.assertIn("\x1b[K", text)
        self.assertIn("succeeded", text)

    def test_commands_against_a_cluster(self):
        s = self.cluster()
        sub = self.tally("submit", "pi", *SPEC, "--json", server=s)
        self.assertEqual(sub.returncode, 0, sub.stderr)
        job = json.loads(sub.stdout)
        self.assertEqual((job["samples"], job["batch_size"], job["seed"]),
                         (200_000_000, 1_000_000, 42))
        w = self.tally("wait", job["id"], server=s)
        self.assertEqual(w.returncode, 0, w.stderr)
        self.assertIn(f"job {job['id']}: succeeded", w.stdout)
        st = self.tally("status", job["id"], "--json", server=s)
        self.assertEqual(json.loads(st.stdout)["state"], "succeeded")
        human = self.tally("status", job["id"], server=s)
        self.assertTrue(human.stdout.startswith(f"job {job['id']}: succeeded, 100.0% of 2e8"))
        plain = self.tally("submit", "count", "--samples", "10", server=s)
        self.assertRegex(plain.stdout, r"^submitted job [0-9]+\n$")
        ls = self.tally("list", "--json", "--limit", "5", server=s)
        ids = [j["id"] for j in json.loads(ls.stdout)["jobs"]]
        self.assertIn(job["id"], ids)
        self.assertEqual(self.tally("list", "--state", "succeeded", server=s).returncode, 0)
        # A job too big to finish, cancelled: cancel succeeds, wait then says it did not.
        big = json.loads(self.tally("submit", "pi", "--samples", "1e15", "--json",
                                    server=s).stdout)
        c = self.tally("cancel", big["id"], server=s)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertIn("cancelled", c.stdout)
        self.assertEqual(self.tally("wait", big["id"], server=s).returncode, 1)

    def test_wait_interrupted_leaves_the_job_running(self):
        s = self.server()  # no worker: the job waits
        job = s.submit(kernel="pi", samples=10**9)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        env["TALLY_SERVER"] = s.url
        p = subprocess.Popen([binary("tally"), "wait", job["id"]], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for("a progress line", lambda: s.job(job["id"]) and p.poll() is None, 10)
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"job {job['id']} goes on (tally wait {job['id']})", err)
        self.assertEqual(s.job(job["id"])["state"], "queued")

    def test_errors(self):
        s = self.server("--insecure")
        cases = [
            (["run", "pi", "--samples", "lots"], 2, "--samples: expected a whole number"),
            (["run", "pi", "--samples", "1.5"], 2, "--samples"),
            (["run", "pi"], 2, "--samples is required"),
            (["run", "--samples", "10"], 2, "which kernel"),
            (["run", "pi", "--samples", "10", "--verify", "2"], 2, "--verify"),
            (["run", "pi", "--samples", "10", "--seed", "-1"], 2, "--seed"),
            (["frobnicate"], 2, "unknown command 'frobnicate'"),
            (["status"], 2, "which job"),
            (["status", "abc"], 2, "expected a job id"),
            (["submit", "pi", "--samples", "10", "--bogus"], 2, "unknown option '--bogus'"),
        ]
        for args, code, msg in cases:
            r = self.tally(*args, server=s)
            self.assertEqual(r.returncode, code, (args, r.stderr))
            self.assertIn(msg, r.stderr, args)
        r = self.tally("status", "99", server=s)
        self.assertEqual(r.returncode, 1)
        self.assertIn("404: job 99: no such job", r.stderr)
        r = self.tally("run", "nope", "--samples", "10", server=s)
        self.assertEqual(r.returncode, 1)
        self.assertIn("kernel 'nope': unknown to the coordinator and offered by no worker",
                      r.stderr)
        self.assertEqual(s.job(re.search(r"job (\d+) cancelled", r.stderr)[1])["state"],
                         "cancelled")
        r = self.tally("status", "1")  # no TALLY_SERVER: only run works here
        self.assertEqual(r.returncode, 2)
        self.assertIn("set TALLY_SERVER", r.stderr)
        s.stop()
        r = self.tally("status", "1", server=s)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot reach the coordinator", r.stderr)
        self.assertRegex(self.tally("--version").stdout, r"^tally [0-9]+\.[0-9]+")
        self.assertIn("run KERNEL --samples N", self.tally("--help").stdout)

    def test_tokens(self):
        env = dict(TALLY_TOKEN="c" * 32, TALLY_WORKER_TOKEN="w" * 32)
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            s = self.server()
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        r = self.tally("submit", "count", "--samples", "10", server=s)
        self.assertEqual(r.returncode, 1)
        self.assertIn("401", r.stderr)
        r = self.tally("submit", "count", "--samples", "10", server=s, token="c" * 32)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
