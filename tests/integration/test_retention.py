"""Retention: DELETE /v1/jobs/<id> (204 for a finished job, then 404; 409 job_not_finished for a
queued or running one; another user's job is a 404; still gone after a restart, its id never
used again), --retention deleting finished jobs that ended long enough ago and never unfinished
ones, the CLI's `tally delete`, and a database file that stops growing under submit, finish,
delete."""
import http.client
import json
import os
import sqlite3
import subprocess

from harness import TallyTestCase, binary, wait_for

TOKENS = {name: f"{name}-token-" + name[0] * 20 for name in ("root", "alice", "bob", "w1")}
USERS = "".join(f"{n} {role} {TOKENS[n]}\n" for n, role in
                (("root", "admin"), ("alice", "user"), ("bob", "user"), ("w1", "worker")))
FOREVER = {"kernel": "pi", "samples": 10**12, "batch_size": 10**6}  # unleased: stays queued
ONE = json.dumps({"kernel": "count", "samples": 1, "batch_size": 1})
JSON = {"Content-Type": "application/json"}


def bearer(name):
    return {"Authorization": "Bearer " + TOKENS[name]}


def finish_one(c):
    """Over keep-alive connection c: submits a one-batch job, leases it, completes it. Returns
    its id."""
    c.request("POST", "/v1/jobs", ONE, JSON)
    rsp = c.getresponse()
    job = json.loads(rsp.read())
    assert rsp.status == 201, job
    c.request("POST", "/v1/leases", json.dumps({"worker": "py", "kernels": ["count"],
                                                "wait_s": 0}), JSON)
    rsp = c.getresponse()
    lease = json.loads(rsp.read())
    assert rsp.status == 200 and lease["job_id"] == job["id"], lease
    c.request("POST", f"/v1/leases/{lease['id']}/complete?worker=py",
              json.dumps({"counts": {"samples": lease["batch_count"]}}), JSON)
    rsp = c.getresponse()
    assert rsp.status == 200, rsp.read()
    rsp.read()
    return job["id"]


class RetentionTest(TallyTestCase):
    def users_file(self):
        path = os.path.join(self.tmpdir, "users")
        with open(path, "w") as f:
            f.write(USERS)
        os.chmod(path, 0o600)
        return path

    def test_delete_states_and_ownership(self):
        s = self.server("--users", self.users_file())

        def submit(who):
            r = s.req("POST", "/v1/jobs", FOREVER, headers=bearer(who))
            self.assertEqual(r.status, 201, r)
            return r.json["id"]

        def delete(who, job_id):
            return s.req("DELETE", f"/v1/jobs/{job_id}", headers=bearer(who))

        a, b = submit("alice"), submit("bob")
        r = delete("alice", a)
        self.assertEqual((r.status, r.error()[0]), (409, "job_not_finished"), r)
        self.assertIn("queued", r.error()[1])
        # Bob's job does not exist to Alice, finished or not; nor to a worker's token.
        self.assertEqual(delete("alice", b).status, 404)
        self.assertEqual(delete("w1", a).status, 403)
        for j, who in ((a, "alice"), (b, "bob")):
            self.assertEqual(s.req("POST", f"/v1/jobs/{j}/cancel", headers=bearer(who)).status,
                             200)
        r = delete("alice", b)
        self.assertEqual((r.status, r.error()[0]), (404, "not_found"), r)
        r = delete("alice", a)
        self.assertEqual((r.status, r.raw), (204, b""), r)
        self.assertEqual(s.req("GET", f"/v1/jobs/{a}", headers=bearer("alice")).status, 404)
        self.assertEqual(s.req("GET", f"/v1/jobs/{a}/history",
                               headers=bearer("alice")).status, 404)
        self.assertEqual(delete("alice", a).status, 404)
        self.assertEqual(delete("root", b).status, 204)  # an admin's is every job
        ids = [j["id"] for j in s.req("GET", "/v1/jobs", headers=bearer("root")).json["jobs"]]
        self.assertEqual(ids, [])

        # A running job is refused too.
        c = submit("alice")
        r = s.req("POST", "/v1/leases", {"worker": "w1", "kernels": ["pi"], "wait_s": 0},
                  headers=bearer("w1"))
        self.assertEqual(r.status, 200, r)
        r = delete("alice", c)
        self.assertEqual((r.status, r.error()[0]), (409, "job_not_finished"), r)
        self.assertIn("running", r.error()[1])

        # After a restart the deleted jobs are still gone, and their ids are not used again.
        s.stop()
        s.start()
        for j in (a, b):
            self.assertEqual(s.req("GET", f"/v1/jobs/{j}", headers=bearer("root")).status, 404)
        self.assertGreater(int(submit("bob")), int(c))

    def test_retention_deletes_finished_never_unfinished(self):
        s = self.server("--retention", "1s")
        queued = s.submit(**FOREVER)["id"]
        old = s.submit(**FOREVER)["id"]
        self.assertEqual(s.req("POST", f"/v1/jobs/{old}/cancel").status, 200)
        wait_for("the cancelled job deleted", lambda: s.req("GET", f"/v1/jobs/{old}").status
                 == 404, 20)
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        done = finish_one(c)
        c.close()
        self.assertEqual(s.job(done)["state"], "succeeded")
        wait_for("the succeeded job deleted", lambda: s.req("GET", f"/v1/jobs/{done}").status
                 == 404, 20)
        # The queued job is older than both and was passed over by every pass that took them.
        self.assertEqual(s.job(queued)["state"], "queued")
        self.assertIn("retention: finished jobs deleted", s.log())

    def test_retention_option_checked(self):
        for bad in ("30", "5x", "-1d", "d", ""):
            p = subprocess.run([binary("tally-server"), "--retention", bad, "--db",
                                os.path.join(self.tmpdir, "x.db")], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(p.returncode, 2, (bad, p.stderr))
            self.assertIn("--retention", p.stderr)
        p = subprocess.run([binary("tally-server"), "--help"], capture_output=True, text=True,
                           timeout=30)
        self.assertIn("--retention", p.stdout)
        self.assertIn("TALLY_RETENTION", p.stdout)

    def test_cli_delete(self):
        s = self.server()
        env = dict(os.environ, TALLY_SERVER=s.url)
        env.pop("TALLY_TOKEN", None)
        job = s.submit(**FOREVER)["id"]

        def tally(*args):
            return subprocess.run([binary("tally"), *args], env=env, capture_output=True,
                                  text=True, timeout=60)

        p = tally("delete", job)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("409", p.stderr)
        self.assertIn("only a finished job can be deleted", p.stderr)
        self.assertEqual(tally("cancel", job).returncode, 0)
        p = tally("delete", job)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, f"deleted job {job}"), p)
        p = tally("delete", job)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("404", p.stderr)
        self.assertEqual(tally("status", job).returncode, 1)

    def test_file_stops_growing(self):
        s = self.server("--retention", "0")
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)

        def cycles(n):
            for _ in range(n):
                job = finish_one(c)
                c.request("DELETE", f"/v1/jobs/{job}")
                rsp = c.getresponse()
                rsp.read()
                self.assertEqual(rsp.status, 204)

        cycles(500)  # warm-up: the WAL reaches its checkpoint size, tables their shape
        sizes = []
        for _ in range(4):
            cycles(750)
            sizes.append(os.path.getsize(s.db))
        c.close()
        wal = os.path.getsize(s.db + "-wal")
        # Thousands of jobs went through; the file holds none of them.
        self.assertLessEqual(max(sizes), sizes[0] * 1.1 + 65536, sizes)
        self.assertLess(wal, 16 << 20)
        s.stop()
        conn = sqlite3.connect(s.db)
        try:
            self.assertEqual(conn.execute("PRAGMA auto_vacuum").fetchone()[0], 2)
            self.assertEqual(conn.execute("SELECT count(*) FROM jobs").fetchone()[0], 0)
            self.assertEqual(conn.execute("SELECT count(*) FROM leases").fetchone()[0], 0)
            self.assertLess(conn.execute("PRAGMA freelist_count").fetchone()[0], 256)
        finally:
            conn.close()
