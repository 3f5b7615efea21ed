"""Users, roles and ownership (--users FILE): to a user another user's job does not exist on any
jobs route, and its list holds only its own; an admin sees every job and filters by ?owner=; a
worker token gets 403 on the jobs API and a user token 403 on the lease API; /v1/workers is for
admins; Idempotency-Keys are per owner; the server refuses a users file that group or others may
read, or a malformed one (exit 2); SIGHUP reads the file again (a new user works, a removed one
gets 401, a bad file is refused and the old users stay); TALLY_TOKEN and TALLY_WORKER_TOKEN
still work, as users admin and worker; priority is checked, stored and shown; the CLI's
--priority and list --owner."""
import json
import os
import signal
import subprocess
import unittest
from unittest import mock

from harness import TallyTestCase, binary, wait_for

TOKENS = {name: f"{name}-token-" + name[0] * 20 for name in
          ("root", "alice", "bob", "carol", "w1")}
USERS = f"""# the fleet's users
root   admin  {TOKENS['root']}
alice  user   {TOKENS['alice']}   # a data scientist
bob    user   {TOKENS['bob']}

w1     worker {TOKENS['w1']}
"""
SPEC = {"kernel": "count", "samples": 10**12, "batch_size": 10**6, "seed": 1}


def bearer(name):
    return {"Authorization": "Bearer " + TOKENS[name]}


class UsersTest(TallyTestCase):
    def users_file(self, text=USERS, mode=0o600, name="users"):
        path = os.path.join(self.tmpdir, name)
        tmp = path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)  # whole, as an operator's editor or config tool would
        return path

    def submit(self, s, who, status=201, headers=None, **extra):
        r = s.req("POST", "/v1/jobs", dict(SPEC, **extra), headers=dict(bearer(who),
                                                                        **(headers or {})))
        self.assertEqual(r.status, status, r)
        return r.json

    def ids(self, s, who, query=""):
        r = s.req("GET", "/v1/jobs" + query, headers=bearer(who))
        self.assertEqual(r.status, 200, r)
        return [j["id"] for j in r.json["jobs"]]

    def test_isolation_on_every_jobs_route(self):
        s = self.server("--users", self.users_file())
        a = self.submit(s, "alice", priority=5)
        b = self.submit(s, "bob")
        r0 = self.submit(s, "root", priority=-100)
        self.assertEqual((a["owner"], a["priority"]), ("alice", 5))
        self.assertEqual((b["owner"], b["priority"]), ("bob", 0))
        self.assertEqual((r0["owner"], r0["priority"]), ("root", -100))

        routes = [("GET", "/v1/jobs/{}", None), ("GET", "/v1/jobs/{}?wait_s=0", None),
                  ("GET", "/v1/jobs/{}/history", None),
                  ("POST", "/v1/jobs/{}/extend", {"samples": 2 * 10**12}),
                  ("POST", "/v1/jobs/{}/cancel", None)]
        for method, path, body in routes:
            # To Bob, Alice's job (and root's) answers exactly as a job never made.
            for other in (a["id"], r0["id"]):
                r = s.req(method, path.format(other), body, headers=bearer("bob"))
                none = s.req(method, path.format(999), body, headers=bearer("bob"))
                self.assertEqual((r.status, r.error()[0]), (404, "not_found"), (path, r))
                self.assertEqual(r.error()[1].replace(other, "999"), none.error()[1])
            # Workers get 403 on every jobs route, whoever's the job.
            r = s.req(method, path.format(a["id"]), body, headers=bearer("w1"))
            self.assertEqual((r.status, r.error()[0]), (403, "forbidden"), (path, r))
            self.assertIn("token", r.error()[1])
        # Nothing Bob tried happened to Alice's job.
        r = s.req("GET", f"/v1/jobs/{a['id']}", headers=bearer("alice"))
        self.assertEqual((r.json["state"], r.json["samples"]), ("queued", 10**12))
        # The owner and an admin reach it on every route; the cancel last.
        for who, job in (("alice", a), ("root", b)):
            for method, path, body in routes:
                r = s.req(method, path.format(job["id"]), body, headers=bearer(who))
                self.assertEqual(r.status, 200, (who, path, r))
                if path.endswith("history"):
                    self.assertEqual(r.json["job_id"], job["id"])
                else:
                    self.assertEqual(r.json["owner"], job["owner"])
        self.assertEqual(s.req("GET", f"/v1/jobs/{b['id']}", headers=bearer("bob")
                               ).json["state"], "cancelled")

        # Lists: one's own; an admin's, everyone's or one owner's.
        self.assertEqual(self.ids(s, "alice"), [a["id"]])
        self.assertEqual(self.ids(s, "bob"), [b["id"]])
        self.assertEqual(self.ids(s, "root"), [r0["id"], b["id"], a["id"]])
        self.assertEqual(self.ids(s, "root", "?owner=alice"), [a["id"]])
        self.assertEqual(self.ids(s, "root", "?owner=bob&state=cancelled"), [b["id"]])
        self.assertEqual(self.ids(s, "root", "?owner=bob&state=queued"), [])
        self.assertEqual(self.ids(s, "root", "?owner=nobody"), [])
        self.assertEqual(self.ids(s, "alice", "?owner=alice"), [a["id"]])
        self.assertEqual(self.ids(s, "alice", "?owner=bob"), [])
        self.assertEqual(self.ids(s, "alice", "?owner=root&limit=1"), [])
        for bad in ("", "a/b", "x" * 65, "%2F"):
            r = s.req("GET", "/v1/jobs?owner=" + bad, headers=bearer("root"))
            self.assertEqual((r.status, r.error()[0]), (400, "invalid_query"), (bad, r))
            self.assertIn("owner", r.error()[1])
        r = s.req("GET", "/v1/jobs", headers=bearer("w1"))
        self.assertEqual(r.status, 403, r)

        # The lease API is the workers': users and admins get 403, as do they on /v1/workers.
        lease = {"worker": "x", "kernels": ["count"]}
        for who in ("alice", "root"):
            for path, body in (("/v1/leases", lease), ("/v1/leases/1/heartbeat", None),
                               ("/v1/leases/1/complete", {"counts": {"samples": 1}}),
                               ("/v1/leases/1/fail", None)):
                r = s.req("POST", path, body, headers=bearer(who))
                self.assertEqual((r.status, r.error()[0]), (403, "forbidden"), (who, path, r))
        for who, status in (("root", 200), ("alice", 403), ("w1", 403)):
            self.assertEqual(s.req("GET", "/v1/workers", headers=bearer(who)).status, status,
                             who)
        for headers in ({}, {"Authorization": "Bearer " + "z" * 20}):
            r = s.req("GET", "/v1/jobs", headers=headers)
            self.assertEqual((r.status, r.error()[0]), (401, "unauthorized"), r)
            self.assertEqual(r.headers.get("www-authenticate"), "Bearer")

        # The worker's token runs a user's job; the job is still only its owner's.
        small = self.submit(s, "alice", samples=20_000, batch_size=1000)
        wfile = os.path.join(self.tmpdir, "w1.token")
        with open(wfile, "w") as f:
            f.write(TOKENS["w1"] + "\n")
        self.worker(s, 1, "node1", "--token-file", wfile)
        r = s.req("GET", f"/v1/jobs/{small['id']}?wait_s=30", headers=bearer("alice"))
        self.assertEqual((r.json["state"], r.json["counts"]["samples"]), ("succeeded", 20_000))
        (w,) = s.req("GET", "/v1/workers", headers=bearer("root")).json["workers"]
        self.assertEqual(w["name"], "node1")

    def test_idempotency_keys_are_per_owner(self):
        s = self.server("--users", self.users_file())
        key = {"Idempotency-Key": "nightly-run-1"}
        a = self.submit(s, "alice", headers=key)
        b = self.submit(s, "bob", headers=key)  # the same key: Bob's own job
        self.assertNotEqual(a["id"], b["id"])
        self.assertEqual(b["owner"], "bob")
        self.assertEqual(self.submit(s, "alice", 200, headers=key)["id"], a["id"])
        self.assertEqual(self.submit(s, "bob", 200, headers=key)["id"], b["id"])
        r = s.req("POST", "/v1/jobs", dict(SPEC, priority=9), headers=dict(bearer("bob"), **key))
        self.assertEqual((r.status, r.error()[0]), (409, "conflict"), r)
        self.assertIn(b["id"], r.error()[1])
        self.assertNotIn(a["id"], r.error()[1])
        # Also after a restart, from the store.
        s.stop()
        s.start()
        self.assertEqual(self.submit(s, "bob", 200, headers=key)["id"], b["id"])
        self.assertEqual(self.submit(s, "alice", 200, headers=key)["id"], a["id"])
        self.assertEqual(self.submit(s, "root", 201, headers=key)["owner"], "root")

    def start_raw(self, *args, env=None):
        env = env or {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        return subprocess.run([binary("tally-server"), "--listen", "127.0.0.1:0", "--db",
                               os.path.join(self.tmpdir, "r.db")] + list(args),
                              capture_output=True, timeout=10, env=env, stdin=subprocess.DEVNULL)

    def test_refuses_a_users_file_others_may_read_or_a_bad_one(self):
        for mode in (0o644, 0o640, 0o604, 0o620, 0o660):
            path = self.users_file(mode=mode)
            r = self.start_raw("--users", path)
            self.assertEqual(r.returncode, 2, (oct(mode), r.stderr))
            self.assertIn(b"permissions 0%o are too open" % mode, r.stderr)
            self.assertIn(b"chmod 600", r.stderr)
        # The environment variable names the file too.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        r = self.start_raw(env=dict(env, TALLY_USERS_FILE=self.users_file(mode=0o644)))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"too open", r.stderr)
        for text, why in (("alice admin\n", b":1: expected NAME ROLE TOKEN"),
                          (USERS + "dave root " + "d" * 20 + "\n", b":7: role 'root'"),
                          (USERS + "alice user " + "e" * 20 + "\n", b"'alice' is already"),
                          (USERS + "eve user " + TOKENS["bob"] + "\n", b"same token as user"),
                          ("frank user short\n", b"16 to 256")):
            r = self.start_raw("--users", self.users_file(text))
            self.assertEqual(r.returncode, 2, (text, r.stderr))
            self.assertIn(why, r.stderr)
            for t in TOKENS.values():
                self.assertNotIn(t.encode(), r.stderr)  # never a token in a message
        r = self.start_raw("--users", os.path.join(self.tmpdir, "missing"))
        self.assertEqual(r.returncode, 2)
        # Mode 0400 and 0600 are fine: it starts (and stops at once).
        self.server("--users", self.users_file(mode=0o400)).stop()

    def test_sighup_reads_the_file_again(self):
        path = self.users_file()
        s = self.server("--users", path)
        self.assertEqual(s.req("GET", "/v1/jobs", headers=bearer("carol")).status, 401)
        bobs = self.submit(s, "bob")
        self.assertEqual(self.ids(s, "bob"), [bobs["id"]])

        self.users_file(USERS.replace(f"bob    user   {TOKENS['bob']}",
                                      f"carol  user   {TOKENS['carol']}"))
        s.proc.send_signal(signal.SIGHUP)
        wait_for("carol to be let in", lambda: s.req(
            "GET", "/v1/jobs", headers=bearer("carol")).status == 200, 10)
        r = s.req("GET", "/v1/jobs", headers=bearer("bob"))
        self.assertEqual((r.status, r.error()[0]), (401, "unauthorized"), r)
        self.assertEqual(self.ids(s, "carol"), [])  # Bob's jobs stay Bob's
        self.assertEqual(self.ids(s, "root", "?owner=bob"), [bobs["id"]])
        self.assertIn("users file read again", s.log())

        # A bad file, or one others may read, is refused and the users stay as they were.
        for text, mode in (("carol wizard " + TOKENS["carol"] + "\n", 0o600),
                           (USERS, 0o644)):
            before = s.log().count("users file refused")
            self.users_file(text, mode)
            s.proc.send_signal(signal.SIGHUP)
            wait_for("the refusal in the log",
                     lambda: s.log().count("users file refused") > before, 10)
            self.assertEqual(s.req("GET", "/v1/jobs", headers=bearer("carol")).status, 200)
            self.assertEqual(s.req("GET", "/v1/jobs", headers=bearer("bob")).status, 401)
        self.assertTrue(s.proc.poll() is None)
        self.assertEqual(s.stop(), 0)

    def test_legacy_tokens_are_users_admin_and_worker(self):
        client, worker = "client-token-" + "c" * 20, "worker-token-" + "w" * 20
        env = {"TALLY_TOKEN": client, "TALLY_WORKER_TOKEN": worker}
        with mock.patch.dict(os.environ, env):
            s = self.server()
        r = s.req("POST", "/v1/jobs", dict(SPEC, samples=20_000, batch_size=1000),
                  headers={"Authorization": "Bearer " + client})
        self.assertEqual((r.status, r.json["owner"]), (201, "admin"), r)
        job_id = r.json["id"]
        with mock.patch.dict(os.environ, {"TALLY_WORKER_TOKEN": worker}):
            self.worker(s, 1, "legacy")
        r = s.req("GET", f"/v1/jobs/{r.json['id']}?wait_s=30",
                  headers={"Authorization": "Bearer " + client})
        self.assertEqual(r.json["state"], "succeeded", r)
        s.stop()

        # With a users file, they are two more users; names and tokens must not clash.
        with mock.patch.dict(os.environ, env):
            s = self.server("--users", self.users_file())
        self.assertEqual(self.ids(s, "root", "?owner=admin"), [job_id])
        self.assertEqual(self.ids(s, "alice"), [])
        r = s.req("GET", "/v1/jobs", headers={"Authorization": "Bearer " + client})
        self.assertEqual((r.status, len(r.json["jobs"])), (200, 1), r)
        r = s.req("POST", "/v1/leases", {"worker": "x", "kernels": ["count"]},
                  headers={"Authorization": "Bearer " + worker})
        self.assertEqual(r.status, 204, r)
        s.stop()
        clash = self.users_file(USERS + "admin user " + "a" * 20 + "\n", name="clash")
        base = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        r = self.start_raw("--users", clash, env=dict(base, **env))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"user 'admin' is already defined", r.stderr)
        r = self.start_raw("--users", self.users_file(name="same"),
                           env=dict(base, TALLY_TOKEN=TOKENS["alice"]))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"same token as user 'alice'", r.stderr)

    def test_open_coordinator_has_no_owners(self):
        s = self.server()
        job = s.submit(**SPEC)
        self.assertEqual((job["owner"], job["priority"]), (None, 0))
        self.assertEqual(s.req("GET", "/v1/workers").status, 200)
        self.assertEqual([j["id"] for j in s.req("GET", "/v1/jobs").json["jobs"]], [job["id"]])
        self.assertEqual(s.req("GET", "/v1/jobs?owner=alice").json["jobs"], [])

    def test_priority_is_checked_stored_and_shown(self):
        s = self.server("--users", self.users_file())
        for bad in (101, -101, 1.5, 5.0, "5", None, True, [1], 2**63 - 1):
            r = s.req("POST", "/v1/jobs", dict(SPEC, priority=bad), headers=bearer("alice"))
            self.assertEqual((r.status, r.error()[0]), (400, "invalid_field"), (bad, r))
            self.assertEqual(r.error()[1], "priority: must be an integer from -100 to 100")
        made = {p: self.submit(s, "alice", **({} if p is None else {"priority": p}))["id"]
                for p in (None, -100, 0, 37, 100)}
        s.stop()
        s.start()  # from the store
        for p, job_id in made.items():
            r = s.req("GET", f"/v1/jobs/{job_id}", headers=bearer("alice"))
            self.assertEqual(r.json["priority"], 0 if p is None else p, r)
        listed = s.req("GET", "/v1/jobs", headers=bearer("root")).json["jobs"]
        self.assertEqual([j["priority"] for j in listed], [100, 37, 0, -100, 0])

    def test_cli_priority_and_owner(self):
        s = self.server("--users", self.users_file())
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}

        def tally(who, *args):
            return subprocess.run([binary("tally")] + list(args), capture_output=True,
                                  text=True, timeout=60, env=dict(
                                      env, TALLY_SERVER=s.url, TALLY_TOKEN=TOKENS[who]))

        r = tally("alice", "submit", "count", "--samples", "1e12", "--priority", "-7", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        job = json.loads(r.stdout)
        self.assertEqual((job["owner"], job["priority"]), ("alice", -7))
        self.assertEqual(tally("bob", "submit", "count", "--samples", "1e12").returncode, 0)
        for bad in ("101", "-101", "1.5", "x", ""):
            r = tally("alice", "submit", "count", "--samples", "10", "--priority", bad)
            self.assertEqual(r.returncode, 2, (bad, r.stderr))
            self.assertIn("--priority", r.stderr)
        r = tally("root", "list", "--owner", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(),
                         [f"job {job['id']} (alice, priority -7): queued, 0.0% of 1e12 samples"])
        self.assertEqual(len(tally("root", "list").stdout.splitlines()), 2)
        self.assertEqual(tally("bob", "list", "--owner", "alice").stdout, "")
        r = tally("bob", "status", job["id"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("404", r.stderr)


if __name__ == "__main__":
    unittest.main()
