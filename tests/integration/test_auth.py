"""Bearer tokens: the client token opens the jobs API, the worker token the lease API; 401
without a valid one, 403 with the other role's, /healthz open; a worker given its token runs a
job; the server refuses a non-loopback address without tokens unless --insecure."""
import os
import subprocess
import time
import unittest

import recompute
from harness import TallyTestCase, binary

CLIENT = "client-token-" + "c" * 20
WORKER = "worker-token-" + "w" * 20


class AuthTest(TallyTestCase):
    def token_files(self):
        return [self.token_file("client.token", CLIENT), self.token_file("worker.token", WORKER)]

    def test_roles(self):
        client_file, worker_file = self.token_files()
        s = self.server("--token-file", client_file, "--worker-token-file", worker_file)
        bearer = lambda t: {"Authorization": "Bearer " + t}
        spec = {"kernel": "pi", "samples": 20000, "batch_size": 1000, "seed": 3}
        lease = {"worker": "w", "kernels": ["pi"]}
        cases = [
            ("POST", "/v1/jobs", spec, {}, 401, "unauthorized"),
            ("POST", "/v1/jobs", spec, {"Authorization": "Basic abc"}, 401, "unauthorized"),
            ("POST", "/v1/jobs", spec, bearer(CLIENT[:-1]), 401, "unauthorized"),
            ("POST", "/v1/jobs", spec, bearer(CLIENT + "x"), 401, "unauthorized"),
            ("POST", "/v1/jobs", spec, bearer(WORKER), 403, "forbidden"),
            ("GET", "/v1/jobs", None, bearer(WORKER), 403, "forbidden"),
            ("GET", "/v1/jobs/1", None, {}, 401, "unauthorized"),
            ("POST", "/v1/leases", lease, {}, 401, "unauthorized"),
            ("POST", "/v1/leases", lease, bearer(CLIENT), 403, "forbidden"),
            ("POST", "/v1/leases/1/complete", {"counts": {}}, bearer(CLIENT), 403, "forbidden"),
        ]
        for method, path, body, headers, status, code in cases:
            r = s.req(method, path, body, headers=headers)
            self.assertEqual((r.status, r.error()[0]), (status, code), (method, path, headers, r))
            if status == 401:
                self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
            self.assertIn("token", r.error()[1])
        self.assertEqual(s.req("GET", "/healthz").status, 200)
        self.assertEqual(s.req("GET", "/v1/jobs", headers=bearer(CLIENT)).json["jobs"], [])

        # A worker with its token runs a job submitted with the client token.
        self.worker(s, 1, "authed", "--token-file", worker_file)
        r = s.req("POST", "/v1/jobs", spec, headers=bearer(CLIENT))
        self.assertEqual(r.status, 201, r)
        r = s.req("GET", f"/v1/jobs/{r.json['id']}?wait_s=30", headers=bearer(CLIENT))
        self.assertEqual(r.json["state"], "succeeded", r)
        self.assertEqual(r.json["counts"],
                         recompute.job_counts("pi", 3, 1000, 20000, range(20)))
        # The workers list is for clients.
        self.assertEqual(s.req("GET", "/v1/workers", headers=bearer(WORKER)).status, 403)
        r = s.req("GET", "/v1/workers", headers=bearer(CLIENT))
        self.assertEqual(r.status, 200, r)
        (w,) = r.json["workers"]
        self.assertEqual((w["name"], w["state"]), ("authed", "idle"))
        self.assertGreater(w["rate"], 0)
        self.assertIsNone(w["lease"])

    def test_worker_without_token_gets_nothing(self):
        client_file, worker_file = self.token_files()
        s = self.server("--token-file", client_file, "--worker-token-file", worker_file)
        w = self.worker(s, 1, "anonymous")
        r = s.req("POST", "/v1/jobs", {"kernel": "count", "samples": 10}, headers={
            "Authorization": "Bearer " + CLIENT})
        self.assertEqual(r.status, 201, r)
        deadline = time.monotonic() + 10
        while "401" not in w.log():
            self.assertLess(time.monotonic(), deadline, w.log())
            time.sleep(0.05)
        self.assertTrue(w.alive())  # it backs off and retries; it does not spin or exit
        r = s.req("GET", f"/v1/jobs/{r.json['id']}", headers={"Authorization": "Bearer " + CLIENT})
        self.assertEqual(r.json["batches"]["done"], 0)

    def start_raw(self, *args, env=None):
        return subprocess.run([binary("tally-server"), "--db", os.path.join(self.tmpdir, "r.db")]
                              + list(args), capture_output=True, timeout=10, env=env)

    def test_refuses_exposed_without_tokens(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        r = self.start_raw("--listen", "0.0.0.0:0", env=env)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"refusing to serve 0.0.0.0 without tokens", r.stderr)
        r = self.start_raw("--listen", "127.0.0.1:0", env=dict(env, TALLY_TOKEN="x" * 20))
        self.assertEqual(r.returncode, 2)  # one token without the other
        self.assertIn(b"both tokens", r.stderr)
        r = self.start_raw("--listen", "127.0.0.1:0",
                           env=dict(env, TALLY_TOKEN="short", TALLY_WORKER_TOKEN="y" * 20))
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"16 to 256", r.stderr)
        # --insecure: it starts (and is stopped at once).
        p = subprocess.Popen([binary("tally-server"), "--listen", "0.0.0.0:0", "--insecure",
                              "--db", os.path.join(self.tmpdir, "i.db")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            self.assertTrue(p.stdout.readline().startswith(b"listening on 0.0.0.0:"))
        finally:
            p.terminate()
            self.assertEqual(p.wait(timeout=10), 0)
            p.stdout.close()


if __name__ == "__main__":
    unittest.main()
