"""Claims on leases: a lease is acted on by the worker it was granted to, and by nobody else. Its
id carries a tag (a keyed hash of the id, the worker's name and its user) that cannot be guessed
from other leases' ids; every heartbeat, complete and fail names its worker (?worker=). A call
from another worker or another user, or with a tag forged or changed, gets 404 exactly as a
lease never granted, and the lease is untouched: its own worker's complete then counts, once.
404s are limited per worker (429 with Retry-After past a burst). A tag survives a restart."""
import os

from harness import TallyTestCase, wait_for

SPEC = {"kernel": "count", "samples": 10_000, "batch_size": 1000, "seed": 3}
COUNTS = {"counts": {"samples": 1000}}  # what a one-batch lease of SPEC computes
NEVER = "99999-0123456789abcdef"  # an id no lease has
BURST = 10  # API_LEASE_MISSES


def grant(s, worker, headers=None):
    r = s.req("POST", "/v1/leases", {"worker": worker, "kernels": ["count"], "max_batches": 1},
              headers=headers)
    assert r.status == 200, r
    return r.json


def act(s, lid, action, worker, headers=None):
    query = "" if worker is None else f"?worker={worker}"
    return s.req("POST", f"/v1/leases/{lid}/{action}{query}",
                 COUNTS if action == "complete" else None, headers=headers)


class ClaimTest(TallyTestCase):
    def assert_missing(self, r, lid):
        """r answers exactly as a call about a lease never granted."""
        self.assertEqual((r.status, r.error()[0]), (404, "not_found"), (lid, r))
        self.assertEqual(r.error()[1], f"lease {lid}: no such lease")

    def test_only_its_worker_acts_on_a_lease(self):
        s = self.server()
        job = s.submit(**SPEC)
        a, b = grant(s, "node-a"), grant(s, "node-b")
        for lease in (a, b):
            self.assertRegex(lease["id"], r"^[1-9][0-9]*-[0-9a-f]{16}$")
        self.assert_missing(act(s, NEVER, "heartbeat", "node-b"), NEVER)

        # Worker B with A's lease, by its real id: no such lease, whatever B asks.
        for action in ("heartbeat", "complete", "fail"):
            self.assert_missing(act(s, a["id"], action, "node-b"), a["id"])
        # A's own name with a tag forged or changed: the same.
        num, tag = a["id"].split("-")
        flipped = tag[:-1] + ("0" if tag[-1] != "0" else "1")
        for forged in (f"{num}-{flipped}", num, f"{num}-{b['id'].split('-')[1]}",
                       f"{int(num) + 1}-{tag}", f"{num}-{tag.upper()}", f"{num}-{tag}0"):
            if forged != a["id"]:
                self.assert_missing(act(s, forged, "complete", "node-a"), forged)
        # The worker name is required, and nothing else may ride along.
        for path in (f"/v1/leases/{a['id']}/heartbeat",
                     f"/v1/leases/{a['id']}/heartbeat?worker=",
                     f"/v1/leases/{a['id']}/heartbeat?worker=a/b",
                     f"/v1/leases/{a['id']}/heartbeat?worker=node-a&x=1"):
            r = s.req("POST", path)
            self.assertEqual((r.status, r.error()[0]), (400, "invalid_query"), (path, r))

        # None of it touched A's lease: it is live, and its own complete counts, once.
        j = s.job(job["id"])
        self.assertEqual((j["batches"]["leased"], j["batches"]["done"]), (2, 0), j)
        self.assertEqual(act(s, a["id"], "heartbeat", "node-a").status, 200)
        r = act(s, a["id"], "complete", "node-a")
        self.assertEqual((r.status, r.json),
                         (200, {"accepted": True, "duplicate": False, "job_ended": False}), r)
        self.assertEqual(act(s, a["id"], "complete", "node-a").json["duplicate"], True)
        self.assert_missing(act(s, a["id"], "complete", "node-b"), a["id"])
        self.assertEqual(act(s, b["id"], "complete", "node-b").status, 200)
        j = s.job(job["id"])
        self.assertEqual((j["batches"]["done"], j["counts"]["samples"]), (2, 2000), j)

        # B has had 5 404s; at the burst its calls get 429, even about its own lease, for a
        # while; other workers are not held.
        statuses = [act(s, NEVER, "heartbeat", "node-b") for _ in range(BURST + 5)]
        first = next(i for i, r in enumerate(statuses) if r.status == 429)
        self.assertGreaterEqual(5 + first, BURST, statuses)
        self.assertTrue(all(r.status == 404 for r in statuses[:first]), statuses)
        limited = statuses[first]
        self.assertEqual(limited.error()[0], "too_many_requests", limited)
        self.assertIn("node-b", limited.error()[1])
        self.assertIn(limited.headers.get("retry-after"), ("1", "2"), limited.headers)
        b2 = grant(s, "node-b")  # asking for work is not limited
        self.assertEqual(act(s, b2["id"], "heartbeat", "node-b").status, 429)
        self.assert_missing(act(s, NEVER, "heartbeat", "node-c"), NEVER)
        wait_for("node-b let through again",
                 lambda: act(s, b2["id"], "heartbeat", "node-b").status == 200, 10)

        # The tag is kept with the store: after a restart the lease is still its worker's.
        s.req("GET", f"/v1/jobs/{job['id']}")  # a reply that waits for the grant's commit
        s.stop()
        s.start()
        self.assert_missing(act(s, b2["id"], "complete", "node-a"), b2["id"])
        self.assertEqual(act(s, b2["id"], "complete", "node-b").status, 200)
        self.assertEqual(s.job(job["id"])["counts"]["samples"], 3000)

    def test_a_lease_is_its_users(self):
        tokens = {"w1": "w1-token-" + "1" * 20, "w2": "w2-token-" + "2" * 20}
        path = os.path.join(self.tmpdir, "users")
        with open(path, "w") as f:
            f.write("".join(f"{n} worker {t}\n" for n, t in tokens.items()))
            f.write("root admin root-token-" + "r" * 20 + "\n")
        os.chmod(path, 0o600)
        s = self.server("--users", path)
        r = s.req("POST", "/v1/jobs", SPEC,
                  headers={"Authorization": "Bearer root-token-" + "r" * 20})
        self.assertEqual(r.status, 201, r)
        as1, as2 = ({"Authorization": "Bearer " + tokens[n]} for n in ("w1", "w2"))
        lease = grant(s, "node", as1)
        # Another user's token, with the same worker name and the real id: no such lease.
        for action in ("heartbeat", "complete", "fail"):
            self.assert_missing(act(s, lease["id"], action, "node", as2), lease["id"])
        self.assertEqual(act(s, lease["id"], "complete", "node", as1).status, 200)
