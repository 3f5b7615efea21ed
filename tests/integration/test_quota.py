"""Quotas (--max-unfinished-jobs, --max-jobs-in-memory): a user at its limit of queued and running
jobs gets 429 quota_exceeded with Retry-After and the limit named, another user still submits, a
cancel frees a slot, a retry under an Idempotency-Key is answered as before; the global limit
answers 429 server_full; GET /metrics shows unfinished jobs by owner and the fair share's lead;
the limits hold across a restart. No worker runs: the jobs stay queued."""
import os
import re
import subprocess
import unittest

from harness import TallyTestCase, binary
from test_metrics import scrape

TOKENS = {name: f"{name}-token-" + name[0] * 20 for name in ("root", "alice", "bob", "carol")}
USERS = "".join(f"{n} {'admin' if n == 'root' else 'user'} {t}\n" for n, t in TOKENS.items())
SPEC = {"kernel": "count", "samples": 10**12, "batch_size": 10**6, "seed": 1}


def bearer(name):
    return {"Authorization": "Bearer " + TOKENS[name]}


class QuotaTest(TallyTestCase):
    def users_file(self):
        path = os.path.join(self.tmpdir, "users")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(USERS)
        return path

    def submit(self, s, who, status=201, headers=None, **extra):
        r = s.req("POST", "/v1/jobs", dict(SPEC, **extra),
                  headers=dict(bearer(who), **(headers or {})))
        self.assertEqual(r.status, status, r)
        return r

    def test_user_quota(self):
        s = self.server("--users", self.users_file(), "--max-unfinished-jobs", "3")
        a = [self.submit(s, "alice", headers={"Idempotency-Key": "k0"}).json]
        a += [self.submit(s, "alice").json for _ in range(2)]
        r = self.submit(s, "alice", 429)
        self.assertEqual(r.error()[0], "quota_exceeded", r)
        self.assertIn("--max-unfinished-jobs 3", r.error()[1])
        self.assertIn("alice", r.error()[1])
        self.assertEqual(r.headers.get("retry-after"), "30")
        # A retry of a job that was is answered as before, quota or not.
        r = self.submit(s, "alice", 200, headers={"Idempotency-Key": "k0"})
        self.assertEqual(r.json["id"], a[0]["id"])
        # Bob is not Alice.
        b = self.submit(s, "bob").json
        self.assertEqual(b["owner"], "bob")
        m = scrape(s)
        self.assertEqual(m[("tally_jobs_by_owner", '{owner="alice",state="queued"}')], 3)
        self.assertEqual(m[("tally_jobs_by_owner", '{owner="bob",state="queued"}')], 1)
        self.assertEqual(m[("tally_jobs_by_owner", '{owner="alice",state="running"}')], 0)
        # No lease granted yet: every owner with work waiting is at the virtual time.
        self.assertEqual(m[("tally_fair_lead_leases", '{owner="alice",priority="0"}')], 0)
        self.assertEqual(m[("tally_fair_lead_leases", '{owner="bob",priority="0"}')], 0)
        # A cancel frees one slot, and only one.
        r = s.req("POST", f"/v1/jobs/{a[1]['id']}/cancel", headers=bearer("alice"))
        self.assertEqual(r.status, 200, r)
        self.submit(s, "alice")
        self.assertEqual(self.submit(s, "alice", 429).error()[0], "quota_exceeded")
        m = scrape(s)
        self.assertEqual(m[("tally_jobs_by_owner", '{owner="alice",state="queued"}')], 3)
        # The counts come back with the jobs after a restart.
        s.stop()
        s.start()
        self.assertEqual(self.submit(s, "alice", 429).error()[0], "quota_exceeded")
        self.submit(s, "bob")

    def test_global_cap(self):
        s = self.server("--users", self.users_file(), "--max-jobs-in-memory", "4")
        jobs = [self.submit(s, who).json for who in ("alice", "alice", "bob", "root")]
        r = self.submit(s, "carol", 429)
        self.assertEqual(r.error()[0], "server_full", r)
        self.assertIn("--max-jobs-in-memory 4", r.error()[1])
        self.assertEqual(r.headers.get("retry-after"), "30")
        r = s.req("POST", f"/v1/jobs/{jobs[2]['id']}/cancel", headers=bearer("root"))
        self.assertEqual(r.status, 200, r)
        self.submit(s, "carol")
        self.assertEqual(self.submit(s, "bob", 429).error()[0], "server_full")

    def test_flood_from_one_user(self):
        """One user floods submits from 8 connections at once, made-up kernel names and all:
        past its quota every one is refused, memory stays bounded, and another user submits and
        the server answers as before."""
        import threading
        s = self.server("--users", self.users_file(), "--max-unfinished-jobs", "50")
        statuses = []

        def flood(k):
            for i in range(40):
                spec = dict(SPEC, kernel=f"made-up-{k}-{i}")
                statuses.append(s.req("POST", "/v1/jobs", spec, headers=bearer("alice")).status)

        threads = [threading.Thread(target=flood, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(set(statuses)), [201, 429], statuses[:10])
        self.assertEqual(statuses.count(201), 50)
        self.assertEqual(statuses.count(429), 8 * 40 - 50)
        self.submit(s, "bob")
        self.assertEqual(s.req("GET", "/healthz").status, 200)
        m = scrape(s)
        self.assertEqual(m[("tally_jobs_by_owner", '{owner="alice",state="queued"}')], 50)

    def test_open_coordinator_and_options(self):
        s = self.server("--max-unfinished-jobs", "2")
        s.submit(**SPEC)
        s.submit(**SPEC)
        r = s.req("POST", "/v1/jobs", SPEC)
        self.assertEqual((r.status, r.error()[0]), (429, "quota_exceeded"), r)
        self.assertEqual(scrape(s)[("tally_jobs_by_owner", '{owner="",state="queued"}')], 2)
        out = subprocess.run([binary("tally-server"), "--help"], capture_output=True,
                             text=True, timeout=30)
        for opt in ("--max-unfinished-jobs", "--max-jobs-in-memory"):
            self.assertIn(opt, out.stdout + out.stderr)

    def test_env_sets_the_limit(self):
        os.environ["TALLY_MAX_UNFINISHED_JOBS"] = "1"
        try:
            s = self.server()
        finally:
            del os.environ["TALLY_MAX_UNFINISHED_JOBS"]
        s.submit(**SPEC)
        r = s.req("POST", "/v1/jobs", SPEC)
        self.assertEqual(r.status, 429, r)
        self.assertTrue(re.search(r"--max-unfinished-jobs 1\b", r.error()[1]), r)


if __name__ == "__main__":
    unittest.main()
