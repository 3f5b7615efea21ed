"""Priority and fair share on a real server and one real worker (server/fair.h; docs/
architecture.md, "Inside the coordinator"). A priority-50 job submitted while a long priority-0
job holds the only worker finishes within seconds, the long job still running: leases are sized
to --lease-target-ms (1 s by default), so it takes the worker at the long job's next lease. Two
owners' long pi jobs on one worker: each owner gets between 35% and 65% of the samples computed
over a 10 s window, whichever job came first.

Owners are users with their own tokens (--users FILE: lines NAME ROLE TOKEN, ROLE user, admin or
worker, mode 0600); a submission carries "priority": N. Until the server has users and a job
says its "owner" and "priority", these tests skip, saying why.
"""
import os
import subprocess
import time
import unittest

from harness import TallyTestCase, binary, request, wait_for

USERS = {
    "ann": ("user", "ann-token-" + "a" * 24),
    "bob": ("user", "bob-token-" + "b" * 24),
    "fleet": ("worker", "fleet-token-" + "w" * 24),
}
LONG = 10 ** 13  # samples: a job that outlasts every test here
WINDOW_S = 10


def auth(user):
    return {"Authorization": "Bearer " + USERS[user][1]}


def samples_done(job):
    """The samples computed so far: pi counts them; other kernels, from the progress."""
    counts = job.get("counts") or {}
    if "samples" in counts:
        return counts["samples"]
    return round(job["progress"] * job["samples"])


class FairTest(TallyTestCase):
    def setUp(self):
        super().setUp()
        usage = subprocess.run([binary("tally-server"), "--help"], capture_output=True,
                               timeout=10).stdout.decode(errors="replace")
        if "--users" not in usage:
            self.skipTest("tally-server has no --users option yet (users, roles and owners: "
                          "the other half of the shared-fleet issue)")

    def start(self):
        """A server with the users file, and one worker of one thread with the worker's token.
        Skips when a job does not say its owner and priority."""
        users = os.path.join(self.tmpdir, "users")
        with open(users, "w") as f:
            for name, (role, token) in USERS.items():
                f.write(f"{name} {role} {token}\n")
        os.chmod(users, 0o600)
        token = os.path.join(self.tmpdir, "fleet.token")
        with open(token, "w") as f:
            f.write(USERS["fleet"][1] + "\n")
        os.chmod(token, 0o600)
        s = self.server("--users", users)
        probe = self.submit(s, "ann", kernel="count", samples=1000, priority=0)
        if "owner" not in probe or "priority" not in probe:
            self.skipTest("a job has no \"owner\" and \"priority\" yet (the API's part of the "
                          f"shared-fleet issue): {sorted(probe)}")
        self.assertEqual((probe["owner"], probe["priority"]), ("ann", 0), probe)
        self.worker(s, 1, "solo", "--token-file", token)
        self.wait(s, "ann", probe["id"], lambda j: j["state"] == "succeeded", 60)
        return s

    def submit(self, s, user, **spec):
        r = s.req("POST", "/v1/jobs", spec, headers=auth(user))
        if r.status == 400 and r.error()[0] == "unknown_field":
            self.skipTest(f"the API refuses a submission's priority yet: {r.error()[1]}")
        self.assertEqual(r.status, 201, r)
        return r.json

    def job(self, s, user, job_id):
        r = request(s.port, "GET", f"/v1/jobs/{job_id}", headers=auth(user))
        self.assertEqual(r.status, 200, r)
        return r.json

    def wait(self, s, user, job_id, pred, timeout):
        """Polls job_id until pred(job); returns it. Fails after timeout seconds."""
        box = {}

        def ok():
            box["job"] = self.job(s, user, job_id)
            return pred(box["job"])
        wait_for(f"job {job_id}", ok, timeout)
        return box["job"]

    def test_priority_overtakes_a_running_job(self):
        s = self.start()
        long = self.submit(s, "ann", kernel="pi", samples=LONG, priority=0)
        # Running, with a few leases done: its rate says what the worker does in a second.
        running = self.wait(s, "ann", long["id"],
                            lambda j: j["state"] == "running" and samples_done(j) > 0 and
                            j["elapsed_s"] and j["elapsed_s"] >= 2, 60)
        per_s = max(int(running["rate"]), 100_000)
        urgent = self.submit(s, "ann", kernel="pi", samples=per_s * 3 // 100_000 * 100_000,
                             priority=50)
        self.assertEqual(urgent["priority"], 50)
        submitted = time.monotonic()
        done = self.wait(s, "ann", urgent["id"],
                         lambda j: j["state"] in ("succeeded", "failed", "cancelled"), 60)
        took = time.monotonic() - submitted
        self.assertEqual(done["state"], "succeeded", done)
        # About 3 s of the worker's time and a lease of the long job's to wait for: within
        # seconds, not at the long job's end (weeks away).
        self.assertLess(took, 20, done)
        still = self.job(s, "ann", long["id"])
        self.assertEqual(still["state"], "running", still)
        self.assertLess(samples_done(still), LONG)
        # And the long job goes on once the urgent one is done.
        before = samples_done(still)
        self.wait(s, "ann", long["id"], lambda j: samples_done(j) > before, 30)

    def shares(self, first, second):
        """Each owner's share of the samples over a 10 s window with both jobs running."""
        s = self.start()
        a = self.submit(s, first, kernel="pi", samples=LONG, priority=0)
        self.wait(s, first, a["id"], lambda j: samples_done(j) > 0, 60)
        b = self.submit(s, second, kernel="pi", samples=LONG, priority=0)
        self.assertEqual((a["owner"], b["owner"]), (first, second))
        # The second has had a lease done: both are in the rotation.
        self.wait(s, second, b["id"], lambda j: samples_done(j) > 0, 60)
        start_a = samples_done(self.job(s, first, a["id"]))
        start_b = samples_done(self.job(s, second, b["id"]))
        time.sleep(WINDOW_S)  # the measuring window itself
        got_a = samples_done(self.job(s, first, a["id"])) - start_a
        got_b = samples_done(self.job(s, second, b["id"])) - start_b
        total = got_a + got_b
        self.assertGreater(total, 0)
        share = got_a / total
        self.assertTrue(0.35 <= share <= 0.65,
                        f"{first} (first) got {got_a} and {second} got {got_b} samples in "
                        f"{WINDOW_S} s: {share:.2f} for {first}")

    def test_fair_share_ann_first(self):
        self.shares("ann", "bob")

    def test_fair_share_bob_first(self):
        self.shares("bob", "ann")


if __name__ == "__main__":
    unittest.main()
