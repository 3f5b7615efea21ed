"""api/openapi.yaml stays exact: every route of the server's table (api/api.c) is in the spec and
every path of the spec is a route; a session over the main routes, successes and errors, gets
only status codes the spec lists for that route, and bodies that its schemas accept (a small
JSON Schema checker below: the keywords the spec uses)."""
import os
import re
import signal
import unittest

import yaml

from harness import TallyTestCase

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def spec():
    with open(os.path.join(ROOT, "api", "openapi.yaml")) as f:
        return yaml.safe_load(f)


def route_table():
    """(method, pattern) of every route in api/api.c, patterns with {} for segments."""
    with open(os.path.join(ROOT, "api", "api.c")) as f:
        text = f.read()
    table = text[text.index("api_routes[] = {"):text.index("};", text.index("api_routes[]"))]
    return re.findall(r'\{ "([A-Z]+)", "([^"]+)", \w+, API_ROLE_\w+ \}', table)


def resolve(doc, node):
    """Follows "$ref": "#/a/b" links to what they name."""
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def check(doc, schema, v, where="body"):
    """Raises AssertionError naming where v breaks schema."""
    schema = resolve(doc, schema)
    if v is None and schema.get("nullable"):
        return
    for sub in schema.get("allOf", []):
        check(doc, sub, v, where)
    if "oneOf" in schema:
        ok = 0
        for sub in schema["oneOf"]:
            try:
                check(doc, sub, v, where)
                ok += 1
            except AssertionError:
                pass
        assert ok == 1, f"{where}: {v!r} matches {ok} of oneOf"
    t = schema.get("type")
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t == "integer":
        assert isinstance(v, int) and not isinstance(v, bool), f"{where}: {v!r} not an integer"
    elif t == "number":
        assert isinstance(v, (int, float)) and not isinstance(v, bool), f"{where}: not a number"
    elif t:
        assert isinstance(v, kinds[t]), f"{where}: {v!r} is not {t}"
    if "enum" in schema:
        assert v in schema["enum"], f"{where}: {v!r} not in {schema['enum']}"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        assert v >= schema.get("minimum", v) and v <= schema.get("maximum", v), \
            f"{where}: {v} out of range"
    if isinstance(v, str):
        if "pattern" in schema:
            assert re.search(schema["pattern"], v), f"{where}: {v!r} !~ {schema['pattern']}"
        assert len(v) >= schema.get("minLength", 0), f"{where}: too short"
        assert len(v) <= schema.get("maxLength", len(v)), f"{where}: too long"
    if isinstance(v, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            assert k in v, f"{where}: {k} required"
        extra = schema.get("additionalProperties", True)
        for k, x in v.items():
            if k in props:
                check(doc, props[k], x, f"{where}.{k}")
            elif extra is False:
                raise AssertionError(f"{where}: {k} not in the schema")
            elif isinstance(extra, dict):
                check(doc, extra, x, f"{where}.{k}")
        assert len(v) <= schema.get("maxProperties", len(v)), f"{where}: too many keys"
    if isinstance(v, list):
        assert len(v) >= schema.get("minItems", 0), f"{where}: too few items"
        assert len(v) <= schema.get("maxItems", len(v)), f"{where}: too many items"
        for i, x in enumerate(v):
            check(doc, schema.get("items", {}), x, f"{where}[{i}]")


def spec_route(doc, method, path, status):
    """The spec's (pattern, operation) for a concrete request path. A method the path does not
    have (405) is answered by what its operations say of 405."""
    for pattern, ops in doc["paths"].items():
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", pattern) + "$"
        if not re.match(rx, path.split("?")[0]):
            continue
        if method.lower() in ops:
            return pattern, ops[method.lower()]
        if status == 405:
            return pattern, next(op for m, op in ops.items()
                                 if m != "parameters" and "405" in op["responses"])
    return None, None


class OpenApiTest(TallyTestCase):
    def test_route_table_and_spec_agree(self):
        doc = spec()
        table = {(m, re.sub(r"\{\}", "{}", p)) for m, p in route_table()}
        self.assertGreaterEqual(len(table), 11)
        paths = {(m.upper(), re.sub(r"\{[^}]+\}", "{}", p))
                 for p, ops in doc["paths"].items() for m in ops
                 if m in ("get", "post", "put", "delete", "patch")}
        self.assertEqual(table, paths)

    def caller(self, doc, s, seen):
        """A function that sends a request to s and checks its reply against doc."""

        def call(method, path, body=None, **kw):
            r = s.req(method, path, body, **kw)
            pattern, op = spec_route(doc, method, path, r.status)
            self.assertIsNotNone(op, f"{method} {path}: not in the spec")
            codes = op["responses"]
            key = str(r.status) if str(r.status) in codes else "default"
            self.assertIn(key, codes, f"{method} {pattern}: {r.status} not in the spec")
            if str(r.status) in codes:
                resp = resolve(doc, codes[str(r.status)])
                content = resp.get("content", {})
                if "application/json" in content:
                    self.assertIsNotNone(r.json, f"{method} {pattern} {r.status}: not JSON")
                    check(doc, content["application/json"]["schema"], r.json,
                          f"{method} {pattern} {r.status}")
                elif not content:
                    self.assertEqual(r.raw, b"", f"{method} {pattern} {r.status}: a body")
            if r.status < 300 and isinstance(body, dict):
                # A body the server took, the spec's request schema takes too.
                req = resolve(doc, op.get("requestBody", {}))
                self.assertIn("application/json", req.get("content", {}), f"{method} {pattern}")
                check(doc, req["content"]["application/json"]["schema"], body,
                      f"{method} {pattern} request")
            seen.add((method, pattern, r.status))
            return r

        return call

    def test_replies_are_in_the_spec(self):
        doc = spec()
        s = self.server()
        seen = set()
        call = self.caller(doc, s, seen)
        job = call("POST", "/v1/jobs", {"kernel": "pi", "samples": 2_000_000,
                                         "batch_size": 100_000, "seed": 5, "verify": 0.5}).json
        call("POST", "/v1/jobs", {"kernel": "pi", "sample": 1})
        call("POST", "/v1/jobs", raw=b"{}", headers={"Content-Type": "text/plain"})
        call("GET", f"/v1/jobs/{job['id']}")
        call("GET", "/v1/jobs/999")
        call("GET", "/v1/jobs?limit=2")
        call("GET", "/v1/jobs?bogus=1")
        lease = call("POST", "/v1/leases", {"worker": "a", "kernels": ["pi"],
                                             "max_batches": 5}).json
        call("POST", "/v1/leases", {"worker": "b", "kernels": ["count"], "wait_s": 0})
        call("POST", "/v1/leases", {"worker": "bad name!", "kernels": ["pi"]})
        mine = f"/v1/leases/{lease['id']}"
        call("POST", f"{mine}/heartbeat?worker=a")
        call("POST", f"{mine}/complete?worker=a", {"counts": {"inside": 1, "samples": 7}})
        call("POST", f"{mine}/fail?worker=a", {"error": "test", "fault": False})
        call("POST", f"{mine}/complete?worker=a", {"counts": {"inside": 1, "samples": 500000}})
        call("POST", f"{mine}/heartbeat?worker=a")
        call("POST", f"{mine}/heartbeat")  # 400: no worker
        call("POST", f"{mine}/complete?worker=a&x=1", {"counts": {"samples": 1}})  # 400
        call("POST", "/v1/leases/123/fail?worker=a")
        for _ in range(12):  # a's lease is not b's: 404s to b's limit, then 429
            last = call("POST", f"{mine}/fail?worker=b")
        self.assertEqual(last.status, 429)
        other = call("POST", "/v1/leases", {"worker": "c", "kernels": ["pi"],
                                             "skip_jobs": ["999"]}).json
        self.assertEqual(call("POST", f"/v1/leases/{other['id']}/fail?worker=c",
                              {"error": "not allowed", "cannot_run": True}).status, 200)
        self.assertEqual(call("POST", f"/v1/leases/{other['id']}/fail?worker=c",
                              {"fault": True, "cannot_run": True}).status, 400)
        call("GET", "/v1/workers")
        call("GET", "/healthz")
        call("GET", "/metrics")
        call("DELETE", "/v1/jobs")
        w = self.worker(s, threads=2, name="w1")
        self.worker(s, threads=1, name="w2")
        s.wait_job(job["id"])
        call("GET", f"/v1/jobs/{job['id']}?wait_s=1")
        hist = call("GET", f"/v1/jobs/{job['id']}/history").json
        self.assertGreater(len(hist["points"]), 0)
        self.assertEqual(hist["points"][-1]["samples"], 2_000_000)
        call("GET", "/v1/jobs/999/history")
        call("GET", f"/v1/jobs/{job['id']}/history?x=1")
        page = call("GET", "/")
        self.assertTrue(page.headers["content-type"].startswith("text/html"))
        self.assertTrue(page.raw.lstrip().lower().startswith(b"<!doctype html"))
        call("POST", "/")
        call("POST", f"/v1/jobs/{job['id']}/cancel")  # 409: it succeeded
        big = call("POST", "/v1/jobs", {"kernel": "count", "samples": 10**15}).json
        call("DELETE", "/v1/jobs/999")  # 404
        call("DELETE", f"/v1/jobs/{big['id']}")  # 409 job_not_finished: it is queued
        call("POST", f"/v1/jobs/{big['id']}/cancel")
        call("DELETE", f"/v1/jobs/{big['id']}", {"x": 1})  # 400: a body
        call("DELETE", f"/v1/jobs/{big['id']}")  # 204
        call("PUT", f"/v1/jobs/{big['id']}")  # 405: GET, DELETE
        call("GET", "/v1/workers")
        w.kill(signal.SIGTERM)
        statuses = {st for _, _, st in seen}
        self.assertTrue({200, 201, 204, 400, 404, 405, 409, 415, 422, 429} <= statuses, statuses)
        self.assertIn(("DELETE", "/v1/jobs/{id}", 204), seen)
        self.assertIn(("DELETE", "/v1/jobs/{id}", 409), seen)

    def test_users_replies_are_in_the_spec(self):
        """With users: 401 and 403 on every route that needs a token, a user's 404 for another's
        job, owners and priorities in jobs, the owner filter."""
        doc = spec()
        tokens = {n: f"{n}-token-" + n[0] * 20 for n in ("root", "alice", "bob", "w1")}
        path = os.path.join(self.tmpdir, "users")
        with open(path, "w") as f:
            f.write(f"root admin {tokens['root']}\nalice user {tokens['alice']}\n"
                    f"bob user {tokens['bob']}\nw1 worker {tokens['w1']}\n")
        os.chmod(path, 0o600)
        s = self.server("--users", path)
        seen = set()
        call = self.caller(doc, s, seen)
        auth = {n: {"Authorization": "Bearer " + t} for n, t in tokens.items()}
        job = call("POST", "/v1/jobs", {"kernel": "count", "samples": 10**9, "priority": -5},
                   headers=auth["alice"]).json
        self.assertEqual((job["owner"], job["priority"]), ("alice", -5))
        call("POST", "/v1/jobs", {"kernel": "count", "samples": 10, "priority": 101},
             headers=auth["alice"])
        routes = [("POST", "/v1/jobs", {"kernel": "count", "samples": 10}),
                  ("GET", "/v1/jobs", None), ("GET", f"/v1/jobs/{job['id']}", None),
                  ("GET", f"/v1/jobs/{job['id']}/history", None),
                  ("POST", f"/v1/jobs/{job['id']}/extend", {"samples": 2 * 10**9}),
                  ("POST", f"/v1/jobs/{job['id']}/cancel", None),
                  ("POST", "/v1/leases", {"worker": "a", "kernels": ["pi"]}),
                  ("POST", "/v1/leases/1/heartbeat", None),
                  ("POST", "/v1/leases/1/complete", {"counts": {"samples": 1}}),
                  ("POST", "/v1/leases/1/fail", None), ("GET", "/v1/workers", None)]
        for method, p, body in routes:
            self.assertEqual(call(method, p, body).status, 401)
            who = "alice" if p.startswith("/v1/leases") else "w1"
            self.assertEqual(call(method, p, body, headers=auth[who]).status, 403, p)
            if "/v1/jobs/" in p:
                self.assertEqual(call(method, p, body, headers=auth["bob"]).status, 404, p)
        self.assertEqual(call("GET", "/v1/workers", headers=auth["alice"]).status, 403)
        self.assertEqual(call("GET", "/v1/workers", headers=auth["root"]).status, 200)
        listed = call("GET", "/v1/jobs?owner=alice", headers=auth["root"]).json["jobs"]
        self.assertEqual([j["id"] for j in listed], [job["id"]])
        call("GET", "/v1/jobs?owner=no/one", headers=auth["root"])
        call("GET", f"/v1/jobs/{job['id']}", headers=auth["alice"])
        statuses = {st for _, _, st in seen}
        self.assertTrue({200, 201, 400, 401, 403, 404} <= statuses, statuses)

    def test_quota_replies_are_in_the_spec(self):
        """429 quota_exceeded and server_full, with Retry-After, and the by-owner metrics."""
        doc = spec()
        seen = set()
        for args, code in ((("--max-unfinished-jobs", "1"), "quota_exceeded"),
                           (("--max-unfinished-jobs", "2", "--max-jobs-in-memory", "1"),
                            "server_full")):
            s = self.server(*args)
            call = self.caller(doc, s, seen)
            call("POST", "/v1/jobs", {"kernel": "count", "samples": 10**9})
            r = call("POST", "/v1/jobs", {"kernel": "count", "samples": 10**9})
            self.assertEqual((r.status, r.error()[0]), (429, code), r)
            self.assertEqual(r.headers.get("retry-after"), "30")
            self.assertIn("Retry-After", doc["paths"]["/v1/jobs"]["post"]["responses"]["429"]
                          ["headers"])
            text = call("GET", "/metrics").raw.decode()
            self.assertIn('tally_jobs_by_owner{owner="",state="queued"} 1', text)
            s.stop()
        self.assertIn(("POST", "/v1/jobs", 429), seen)


if __name__ == "__main__":
    unittest.main()
