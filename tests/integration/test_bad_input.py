"""Bad input, table-driven, against the real tally-server.

Every route gets malformed, mistyped, out-of-range, oversized and misrouted requests. Each must get
the right 4xx with a JSON body {"error": {"code", "message"}} whose message names the field or
parameter at fault (docs/protocol.md, "Errors"), must change nothing, and the server must keep
serving: after every row GET /healthz answers 200 and the process is still alive.

Rows assert the behaviour the protocol asks for, not what the server happens to do, so a row fails
until the server is fixed. Bodies are written as raw JSON text so that -0.0, 2^64, NaN, duplicate
keys and broken UTF-8 reach the server as such.
"""
import http.client
import json
import select
import socket
import unittest
from dataclasses import dataclass

import recompute
from harness import Response, TallyTestCase, request

TIMEOUT = 10  # seconds for any one request: a hang fails the row instead of the whole run
MIB = 1 << 20
JSON_CT = "application/json"

P62 = 2 ** 62
I62_1 = str(P62 + 1)
I63 = str(2 ** 63)  # one past the largest JSON integer the server can hold
I64 = str(2 ** 64)
I64_1 = str(2 ** 64 + 1)
I10_30 = "1" + "0" * 30
NEG_I63_1 = str(-(2 ** 63) - 1)
SPLIT_UTF8 = "a" * 63 + "\u00e9"  # 65 bytes: a 64-byte cut falls inside the two-byte "é"


@dataclass
class Case:
    name: str
    method: str
    path: str
    body: bytes = None
    status: int = 400
    code: str = None  # None: a success is expected (2xx, no error body)
    needle: str = None  # must appear in the error message
    also: tuple = ()  # other acceptable (status, code) pairs, where the protocol allows either
    ctype: str = JSON_CT  # sent with any body; None: no Content-Type header at all
    allow: str = None  # for 405: the methods the Allow header must list
    mode: str = "plain"  # or "length"/"chunked": raw senders that accept a reply before the body


def J(*pairs):
    """A JSON object as raw text from (key, raw value text) pairs; keys are JSON-encoded."""
    return ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}").encode()


def S(text):
    """A JSON string literal (\\u escapes for NUL and non-ASCII)."""
    return json.dumps(text)


def replace(base, field, raw):
    """base pairs with field set to raw (appended when absent)."""
    pairs = [(k, raw if k == field else v) for k, v in base]
    if field not in dict(base):
        pairs.append((field, raw))
    return J(*pairs)


# Raw values that are not JSON at all: 400 invalid_json wherever they appear.
NOT_JSON_NUMBERS = ["NaN", "nan", "Infinity", "-Infinity", "inf", "+1", "01", ".5", "1.", "0x10",
                    "1e", "--1", "1_000"]

# Raw values wrong for every integer field: 400 invalid_field naming the field.
INT_BAD = ["-1", "-0.0", "0.0", "1e-400", "1.5", "0.5", I63, I64, I64_1, I10_30, NEG_I63_1, "1e30", "1e400",
           "-1e400", "null", "true", "false", "[]", "{}", "[1]"]


def int_field_cases(path, base, field, extra_bad=(), string_ok=False):
    """Bad values for an integer field of a body: invalid_field naming it, or invalid_json."""
    bad = list(INT_BAD) + list(extra_bad)
    if not string_ok:
        bad += [S("1"), S("1e3"), S("")]
    cases = [Case(f"{field}={raw[:40]}", "POST", path, replace(base, field, raw), 400,
                  "invalid_field", field) for raw in bad]
    cases += [Case(f"{field}={raw} (not JSON)", "POST", path, replace(base, field, raw), 400,
                   "invalid_json", "body") for raw in NOT_JSON_NUMBERS]
    return cases


def send_raw(port, c):
    """Sends c with an explicit Content-Length or chunked; stops uploading as soon as the server
    answers (it may refuse an oversize body before reading it) and reads that answer."""
    body = c.body or b""
    head = [f"{c.method} {c.path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if c.ctype is not None:
        head.append(f"Content-Type: {c.ctype}")
    if c.mode == "chunked":
        head.append("Transfer-Encoding: chunked")
        step = 64 * 1024
        body = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + step]), body[i:i + step])
                        for i in range(0, len(body), step)) + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body)}")
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        # A Content-Length over the cap can be refused from the headers alone: give it a moment.
        early, _, _ = select.select([sock], [], [], 0.5 if c.mode == "length" else 0)
        view, off = memoryview(body), 0
        while not early and off < len(view):
            try:
                off += sock.send(view[off:off + 64 * 1024])
            except (BrokenPipeError, ConnectionResetError):
                break
            early, _, _ = select.select([sock], [], [], 0)
        resp = http.client.HTTPResponse(sock, method=c.method)
        resp.begin()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        sock.close()


def send(port, c):
    if c.mode != "plain":
        return send_raw(port, c)
    headers = {"Content-Type": c.ctype} if c.body is not None and c.ctype is not None else {}
    return request(port, c.method, c.path, raw=c.body, headers=headers, timeout=TIMEOUT)


class BadInputCase(TallyTestCase):
    def assert_serving(self, s, after):
        self.assertIsNone(s.proc.poll(), f"server exited (rc {s.proc.returncode}) after "
                                         f"{after!r}; log tail:\n{s.log()[-1500:]}")
        try:
            r = s.req("GET", "/healthz", timeout=TIMEOUT)
        except OSError as e:
            self.fail(f"GET /healthz failed after {after!r}: {e!r}")
        self.assertEqual((r.status, r.json), (200, {"ok": True}), f"/healthz after {after!r}")

    def assert_error(self, r, c):
        where = f"{c.method} {c.path[:80]} {(c.body or b'')[:80]!r}: got {r!r}"
        got = (r.status, r.error()[0])
        self.assertIn(got, [(c.status, c.code)] + list(c.also), where)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"),
                        f"Content-Type {r.headers.get('content-type')!r}; {where}")
        self.assertIsInstance(r.json, dict, where)
        self.assertEqual(set(r.json), {"error"}, where)
        err = r.json["error"]
        self.assertIsInstance(err, dict, where)
        self.assertEqual(set(err), {"code", "message"}, where)
        self.assertIsInstance(err["code"], str, where)
        self.assertIsInstance(err["message"], str, where)
        self.assertTrue(err["message"], where)
        if c.needle is not None:
            self.assertIn(c.needle, err["message"], where)
        if c.allow is not None:
            allow = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
            self.assertEqual(allow, set(c.allow.split(",")), f"Allow header; {where}")

    def run_cases(self, s, cases):
        """One subTest per row; a row's failure does not hide the next. Stops at once when the
        server dies or stops answering, since every later row would only repeat that."""
        for c in cases:
            with self.subTest(c.name, route=f"{c.method} {c.path[:60]}"):
                try:
                    r = send(s.port, c)
                except (OSError, http.client.HTTPException) as e:
                    self.fail(f"{c.method} {c.path[:80]}: no reply: {e!r}")
                if c.code is None:
                    self.assertEqual(r.status, c.status,
                                     f"{c.method} {c.path[:80]} {(c.body or b'')[:80]!r}: {r!r}")
                else:
                    self.assert_error(r, c)
            self.assert_serving(s, c.name)

    # -- helpers for a real job and lease ---------------------------------------------------------

    def pi_lease(self, s, seed=7):
        """Submits a one-batch pi job and leases its batch. Returns (job, lease, its counts)."""
        job = s.submit(kernel="pi", samples=1000, batch_size=1000, seed=seed)
        r = s.req("POST", "/v1/leases", {"worker": "t", "kernels": ["pi"], "max_batches": 1})
        self.assertEqual(r.status, 200, r)
        lease = r.json
        self.assertEqual((lease["job_id"], lease["first_batch"], lease["batch_count"]),
                         (job["id"], 0, 1))
        counts = recompute.job_counts("pi", lease["seed"], lease["batch_size"], lease["samples"],
                                      range(lease["first_batch"],
                                            lease["first_batch"] + lease["batch_count"]))
        return job, lease, counts


class JobsCreateTest(BadInputCase):
    """POST /v1/jobs: every field of the body."""

    def test_bad_job_bodies(self):
        s = self.server()
        P = "/v1/jobs"
        base = [("kernel", S("pi")), ("samples", "1000")]
        cases = [
            # unknown and missing fields
            Case("typo sample", "POST", P, J(("kernel", S("pi")), ("sample", "1000")), 400,
                 "unknown_field", "sample"),
            Case("unknown Kernel", "POST", P, replace(base, "Kernel", S("pi")), 400,
                 "unknown_field", "Kernel"),
            Case("unknown batchSize", "POST", P, replace(base, "batchSize", "10"), 400,
                 "unknown_field", "batchSize"),
            Case("unknown id", "POST", P, replace(base, "id", S("1")), 400, "unknown_field", "id"),
            Case("unknown state", "POST", P, replace(base, "state", S("queued")), 400,
                 "unknown_field", "state"),
            Case("unknown empty key", "POST", P, replace(base, "", "1"), 400, "unknown_field"),
            Case("unknown long key", "POST", P, replace(base, "x" * 1000, "1"), 400,
                 "unknown_field", "x" * 32),
            Case("unknown key, UTF-8 cut by the message's length cap", "POST", P,
                 replace(base, SPLIT_UTF8, "1"), 400, "unknown_field", "a" * 32),
            Case("unknown key all 2-byte chars", "POST", P, replace(base, "\u00e9" * 40, "1"),
                 400, "unknown_field", "\u00e9" * 8),
            Case("NUL in a key", "POST", P, replace(base, "sam\u0000ples", "1"), 400,
                 "unknown_field", also=((400, "invalid_json"),)),
            Case("empty object", "POST", P, b"{}", 400, "missing_field", "kernel"),
            Case("no samples", "POST", P, J(("kernel", S("pi"))), 400, "missing_field", "samples"),
            Case("no kernel", "POST", P, J(("samples", "1000")), 400, "missing_field", "kernel"),
            Case("empty body", "POST", P, b"", 400, "invalid_json", "body"),
            Case("whitespace body", "POST", P, b" \r\n\t ", 400, "invalid_json", "body"),
            # duplicate keys
            Case("duplicate kernel", "POST", P, J(("kernel", S("pi")), ("kernel", S("pi")),
                                                   ("samples", "1000")), 400, "invalid_json"),
            Case("duplicate samples", "POST", P, J(("kernel", S("pi")), ("samples", "1000"),
                                                    ("samples", "10")), 400, "invalid_json"),
            Case("duplicate key in params", "POST", P,
                 replace(base, "params", J(("a", "1"), ("a", "1")).decode()), 400,
                 "invalid_json"),
        ]
        # kernel
        for raw in ["42", "null", "true", "[]", "{}", "[\"pi\"]", S(""), S("bo gus"), S("PI"),
                    S(" pi"), S("pi "), S("x" * 1000), S("pi\u0000"), S("\u0000pi"),
                    S("a" * 31 + "\u00e9"), S("\u00e9" * 20)]:
            cases.append(Case(f"kernel={raw[:40]}", "POST", P, replace(base, "kernel", raw), 400,
                              "invalid_field", "kernel"))
        # samples: 1..2^62, integral numbers only
        cases += int_field_cases(P, base, "samples", ["0", I62_1, "4.7e18", "1e-400"])
        # batch_size: 1..samples (1000 here)
        cases += int_field_cases(P, base, "batch_size", ["0", "1001", "1e4", I62_1])
        # seed: a number 0..2^63-1, or a decimal string 0..2^64-1
        cases += int_field_cases(P, base, "seed", ["1e19", I64 + ".0"], string_ok=True)
        for text in ["", "-1", "+1", " 1", "1 ", "0x10", "1.5", "1e3", "1.0", "abc",
                     "18446744073709551616", "99999999999999999999999", "1" * 200, "\u0661",
                     "1\u0000"]:
            cases.append(Case(f"seed string {text[:30]!r}", "POST", P,
                              replace(base, "seed", S(text)), 400, "invalid_field", "seed"))
        # verify: a number 0..1
        for raw in ["-0.1", "-1", "1.0000001", "2", "1e400", "-1e400", S("0.5"), S(""), "true",
                    "null", "[]", "{}", "[0.5]"]:
            cases.append(Case(f"verify={raw}", "POST", P, replace(base, "verify", raw), 400,
                              "invalid_field", "verify"))
        # params: object or null; pi takes none
        for raw in ["[]", S("x"), S(""), "1", "true", "[{}]"]:
            cases.append(Case(f"params={raw}", "POST", P, replace(base, "params", raw), 400,
                              "invalid_field", "params"))
        for key in ["a", "sample", "seed"]:
            cases.append(Case(f"params.{key}", "POST", P,
                              replace(base, "params", J((key, "1")).decode()), 400,
                              "unknown_field", f"params.{key}"))
        cases.append(Case("params key UTF-8 cut", "POST", P,
                          replace(base, "params", J((SPLIT_UTF8, "1")).decode()), 400,
                          "unknown_field", "params." + "a" * 32))
        # NUL in a params string (a kernel known by name only takes any params): refused,
        # never stored as other params (issue 14: it came back as {}).
        named = [("kernel", S("no-such-plugin")), ("samples", "1000")]
        for raw, where in [('{"note":"a\\u0000b"}', "params.note"),
                           ('{"a":[1,{"b":"x\\u0000"}]}', "params.a[1].b")]:
            cases.append(Case(f"params NUL at {where}", "POST", P,
                              replace(named, "params", raw), 400, "invalid_field", where))
        # Valid edges must still be accepted (so the checks above are not over-broad).
        for name, body in [
            ("samples 1", replace(base, "samples", "1")),
            ("samples 2^62", replace(base, "samples", str(P62))),
            ("samples 1e10", replace(base, "samples", "1e10")),
            ("samples 1000.0", replace(base, "samples", "1000.0")),
            ("samples 1E3", replace(base, "samples", "1E3")),
            ("batch_size 1", replace(base, "batch_size", "1")),
            ("batch_size = samples", replace(base, "batch_size", "1000")),
            ("seed 0", replace(base, "seed", "0")),
            ("seed 2^63-1", replace(base, "seed", str(2 ** 63 - 1))),
            ("seed string 0", replace(base, "seed", S("0"))),
            ("seed string 2^63", replace(base, "seed", S(I63))),
            ("seed string 2^64-1", replace(base, "seed", S(str(2 ** 64 - 1)))),
            ("verify 0", replace(base, "verify", "0")),
            ("verify -0.0", replace(base, "verify", "-0.0")),
            ("verify 1", replace(base, "verify", "1")),
            ("verify 1.0", replace(base, "verify", "1.0")),
            ("verify 0.5", replace(base, "verify", "0.5")),
            ("verify 1e-320", replace(base, "verify", "1e-320")),
            ("params null", replace(base, "params", "null")),
            ("params {}", replace(base, "params", "{}")),
            ("kernel count", replace(base, "kernel", S("count"))),
            ("kernel as escapes", replace(base, "kernel", '"\\u0070\\u0069"')),
            ("every field", J(("kernel", S("pi")), ("samples", "1000"), ("batch_size", "10"),
                              ("seed", "42"), ("params", "{}"))),
        ]:
            cases.append(Case(f"valid: {name}", "POST", P, body, 201))
        self.run_cases(s, cases)

        # What was accepted reads back as sent; the big string seed stays a string.
        r = s.req("POST", P, raw=replace(base, "seed", S(str(2 ** 64 - 1))),
                  headers={"Content-Type": JSON_CT})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["seed"], str(2 ** 64 - 1))
        self.assertEqual(r.headers.get("location"), f"/v1/jobs/{r.json['id']}")


class LeasesCreateTest(BadInputCase):
    """POST /v1/leases: every field of the body. No jobs exist, so valid requests get 204."""

    def test_bad_lease_requests(self):
        s = self.server()
        P = "/v1/leases"
        base = [("worker", S("t")), ("kernels", '["pi"]')]
        cases = [
            Case("unknown wait", "POST", P, replace(base, "wait", "1"), 400, "unknown_field",
                 "wait"),
            Case("unknown maxBatches", "POST", P, replace(base, "maxBatches", "1"), 400,
                 "unknown_field", "maxBatches"),
            Case("kernel not kernels", "POST", P, J(("worker", S("t")), ("kernel", S("pi"))),
                 400, "unknown_field", "kernel"),
            Case("unknown key UTF-8 cut", "POST", P, replace(base, SPLIT_UTF8, "1"), 400,
                 "unknown_field", "a" * 32),
            Case("empty object", "POST", P, b"{}", 400, "missing_field", "worker"),
            Case("no kernels", "POST", P, J(("worker", S("t"))), 400, "missing_field", "kernels"),
            Case("no worker", "POST", P, J(("kernels", '["pi"]')), 400, "missing_field",
                 "worker"),
            Case("empty body", "POST", P, b"", 400, "invalid_json", "body"),
            Case("duplicate worker", "POST", P, J(("worker", S("t")), ("worker", S("u")),
                                                   ("kernels", '["pi"]')), 400, "invalid_json"),
        ]
        for raw in ["1", "null", "true", "[]", "{}", S(""), S("a" * 65), S("a b"), S("a/b"),
                    S("a\nb"), S("\u00e9"), S("t\u0000"), S("\u0000"), S("<x>"), S("a%2F")]:
            cases.append(Case(f"worker={raw[:40]}", "POST", P, replace(base, "worker", raw), 400,
                              "invalid_field", "worker"))
        for raw in [S("pi"), "[]", "null", "{}", "1", "[1]", '[""]', "[null]", '[["pi"]]',
                    f'["{"x" * 32}"]', "[" + ",".join(['"pi"'] * 97) + "]",
                    "[" + S("p\u0000i") + "]", '[{"pi":1}]']:
            cases.append(Case(f"kernels={raw[:40]}", "POST", P, replace(base, "kernels", raw),
                              400, "invalid_field", "kernels"))
        cases += int_field_cases(P, base, "wait_s", ["61", "60.5", "1e3", I62_1])
        cases += int_field_cases(P, base, "max_batches", [I62_1, "1e19"])
        for name, body in [
            ("minimal", J(*base)),
            ("wait_s 0", replace(base, "wait_s", "0")),
            ("max_batches 0", replace(base, "max_batches", "0")),
            ("max_batches 2^62", replace(base, "max_batches", str(P62))),
            ("worker 64 chars", replace(base, "worker", S("w" * 64))),
            ("worker punctuation", replace(base, "worker", S("a.b_c:d@e-f9"))),
            ("32 kernels", replace(base, "kernels", "[" + ",".join(['"pi"'] * 32) + "]")),
            ("kernel name 31 chars", replace(base, "kernels", f'["{"k" * 31}"]')),
        ]:
            cases.append(Case(f"valid: {name}", "POST", P, body, 204))
        self.run_cases(s, cases)


class LeaseProtocolTest(BadInputCase):
    """Heartbeat, complete and fail misused on a real lease, then on a finished one."""

    def test_lease_misuse(self):
        s = self.server()
        job, lease, good = self.pi_lease(s)
        lid = lease["id"]
        HB, CO, FA = (f"/v1/leases/{lid}/{a}?worker=t" for a in ("heartbeat", "complete", "fail"))

        def counts(**kv):
            return J(("counts", J(*kv.items()).decode()))

        gi, gs = str(good["inside"]), str(good["samples"])
        cases = [
            # complete: the body
            Case("complete empty body", "POST", CO, b"", 400, "missing_field", "counts"),
            Case("complete {}", "POST", CO, b"{}", 400, "missing_field", "counts"),
            Case("complete count (typo)", "POST", CO,
                 J(("count", J(("inside", gi), ("samples", gs)).decode())), 400, "unknown_field",
                 "count"),
            Case("complete extra top-level field", "POST", CO,
                 J(("counts", J(("inside", gi), ("samples", gs)).decode()), ("x", "1")), 400,
                 "unknown_field", "x"),
            Case("complete duplicate counts", "POST", CO,
                 J(("counts", "{}"), ("counts", J(("inside", gi), ("samples", gs)).decode())),
                 400, "invalid_json"),
            Case("complete duplicate inside", "POST", CO,
                 counts(inside=gi, samples=gs).replace(b'"samples"', b'"inside":0,"samples"'),
                 400, "invalid_json"),
        ]
        for raw in ["[]", "5", S("x"), "null", "true", '[{"inside":1}]']:
            cases.append(Case(f"counts={raw}", "POST", CO, J(("counts", raw)), 400,
                              "invalid_field", "counts"))
        # complete: counts that cannot be right for this lease -> 422, not counted
        bad_counts = [
            ("no samples", J(("inside", gi)), "counts.samples"),
            ("no inside", J(("samples", gs)), "counts.inside"),
            ("empty counts", b"{}", "counts."),
            ("extra key", J(("inside", gi), ("samples", gs), ("x", "1")), "counts.x"),
            ("wrong case", J(("Inside", gi), ("samples", gs)), "counts.Inside"),
            ("count kernel's keys", J(("samples", gs), ("n", "1")), "counts."),
            ("extra key UTF-8 cut", J(("inside", gi), ("samples", gs), (SPLIT_UTF8, "1")),
             "counts." + "a" * 32),
            ("inside -1", J(("inside", "-1"), ("samples", gs)), "counts.inside"),
            ("samples -1000", J(("inside", gi), ("samples", "-1000")), "counts.samples"),
            ("inside -0.0", J(("inside", "-0.0"), ("samples", gs)), "counts.inside"),
            ("inside 1.5", J(("inside", "1.5"), ("samples", gs)), "counts.inside"),
            ("samples 1000.5", J(("inside", gi), ("samples", "1000.5")), "counts.samples"),
            ("inside string", J(("inside", S(gi)), ("samples", gs)), "counts.inside"),
            ("inside null", J(("inside", "null"), ("samples", gs)), "counts.inside"),
            ("inside true", J(("inside", "true"), ("samples", gs)), "counts.inside"),
            ("inside []", J(("inside", "[]"), ("samples", gs)), "counts.inside"),
            ("samples 999", J(("inside", gi), ("samples", "999")), "counts.samples"),
            ("samples 1001", J(("inside", gi), ("samples", "1001")), "counts.samples"),
            ("samples 0", J(("inside", "0"), ("samples", "0")), "counts.samples"),
            ("inside > samples", J(("inside", "1001"), ("samples", gs)), "counts.inside"),
        ]
        for name, c, needle in bad_counts:
            cases.append(Case(f"complete {name}", "POST", CO, J(("counts", c.decode())), 422,
                              "invalid_counts", needle))
        # Integers past 2^63-1 cannot be parsed at all: 400, and the message names the count.
        for name, c, needle in [("samples 2^63", J(("inside", gi), ("samples", I63)), "samples"),
                                ("samples 2^64", J(("inside", gi), ("samples", I64)), "samples"),
                                ("inside 2^64", J(("inside", I64), ("samples", gs)), "inside"),
                                ("inside -2^63-1", J(("inside", NEG_I63_1), ("samples", gs)),
                                 "inside")]:
            cases.append(Case(f"complete {name}", "POST", CO, J(("counts", c.decode())), 400,
                              "invalid_field", needle))
        # heartbeat: empty body or {} only
        for name, body, code, needle in [
            ("heartbeat unknown field", J(("x", "1")), "unknown_field", "x"),
            ("heartbeat ttl_s", J(("ttl_s", "60")), "unknown_field", "ttl_s"),
            ("heartbeat []", b"[]", "invalid_json", "body"),
            ("heartbeat null", b"null", "invalid_json", "body"),
            ("heartbeat 1", b"1", "invalid_json", "body"),
        ]:
            cases.append(Case(name, "POST", HB, body, 400, code, needle))
        # fail: {"error": "text up to 1024 bytes"}
        for name, body, code, needle in [
            ("fail error number", J(("error", "5")), "invalid_field", "error"),
            ("fail error null", J(("error", "null")), "invalid_field", "error"),
            ("fail error []", J(("error", "[]")), "invalid_field", "error"),
            ("fail error {}", J(("error", "{}")), "invalid_field", "error"),
            ("fail error 1025 bytes", J(("error", S("x" * 1025))), "invalid_field", "error"),
            ("fail error 1026 bytes of 2-byte chars", J(("error", S("\u00e9" * 513))),
             "invalid_field", "error"),
            ("fail error with NUL", J(("error", S("x\u0000y"))), "invalid_field", "error"),
            ("fail reason (typo)", J(("reason", S("x"))), "unknown_field", "reason"),
            ("fail extra field", J(("error", S("x")), ("x", "1")), "unknown_field", "x"),
            ("fail []", b"[]", "invalid_json", "body"),
            ("fail string body", S("oops").encode(), "invalid_json", "body"),
        ]:
            cases.append(Case(name, "POST", FA, body, 400, code, needle))
        # Malformed forms of this very lease's id, and ids that do not exist: 404. Each from a
        # worker of its own name, so that no worker reaches its limit of 404s (test_claims).
        num, tag = lid.split("-")
        for i, form in enumerate([
                "0", "-1", "0" + lid, lid + ".0", "+" + lid, lid + "e0", "%20" + lid,
                lid + "%00", "0x" + lid, "abc", I63, "9" * 20, "9" * 200, lid + "%2F1",
                "999999", str(2 ** 63 - 1), num, tag, f"{num}-", f"-{tag}", f"{num}--{tag}",
                f"{num}-{tag}-", f"{num}-{tag[:-1]}", f"{num}-{tag.upper()}", f"{num}-0x{tag[2:]}",
                f"0{num}-{tag}", f"{num}-{tag}%00", f"{num}_{tag}", f"{num}-{tag}%20"]):
            for action, body in [("heartbeat", None), ("complete", J(("counts", J(
                    ("inside", gi), ("samples", gs)).decode()))), ("fail", None)]:
                cases.append(Case(f"{action} lease id {form[:30]!r}", "POST",
                                  f"/v1/leases/{form}/{action}?worker=t-{i}-{action}", body, 404,
                                  "not_found", "lease"))
        self.run_cases(s, cases)

        # None of that touched the lease or the job.
        with self.subTest("the lease and job are as they were"):
            j = s.job(job["id"])
            self.assertEqual(j["batches"], {"total": 1, "done": 0, "leased": 1, "pending": 0})
            self.assertEqual(j["counts"], {"inside": 0, "samples": 0})
            r = s.req("POST", HB, timeout=TIMEOUT)
            self.assertEqual(r.status, 200, r)

        # A second lease, failed with an error of exactly 1024 bytes: allowed ("up to 1024").
        other = s.submit(kernel="count", samples=10, batch_size=10, seed=1)
        r = s.req("POST", "/v1/leases", {"worker": "t2", "kernels": ["count"]}, timeout=TIMEOUT)
        self.assertEqual((r.status, r.json and r.json["job_id"]), (200, other["id"]), r)
        self.run_cases(s, [Case("fail error exactly 1024 bytes", "POST",
                                f"/v1/leases/{r.json['id']}/fail?worker=t2",
                                J(("error", S("x" * 1024))),
                                200)])

        # Complete the first lease correctly; then misuse the finished lease and job.
        r = s.req("POST", CO, {"counts": good}, timeout=TIMEOUT)
        self.assertEqual((r.status, r.json),
                         (200, {"accepted": True, "duplicate": False, "job_ended": True}))
        self.assertEqual(s.job(job["id"])["state"], "succeeded")
        self.run_cases(s, [
            Case("cancel a succeeded job", "POST", f"/v1/jobs/{job['id']}/cancel", None, 409,
                 "conflict", "succeeded"),
            Case("cancel a succeeded job, body {}", "POST", f"/v1/jobs/{job['id']}/cancel",
                 b"{}", 409, "conflict", "succeeded"),
            Case("heartbeat a completed lease", "POST", HB, None, 409, "lease_lost", lid),
            Case("fail a completed lease", "POST", FA, J(("error", S("late"))), 409,
                 "lease_lost", lid),
        ])
        r = s.req("POST", CO, {"counts": good}, timeout=TIMEOUT)
        self.assertEqual((r.status, r.json),
                         (200, {"accepted": True, "duplicate": True, "job_ended": False}))
        j = s.job(job["id"])
        self.assertEqual((j["state"], j["counts"]), ("succeeded", good))


class BodiesEveryRouteTest(BadInputCase):
    """What is wrong with a body whatever the route: syntax, encoding, nesting, size, media type.
    Sent to every route that takes a body, with real ids so that only the body is at fault."""

    def test_bad_bodies_on_every_route(self):
        s = self.server()
        job, lease, good = self.pi_lease(s)
        victim = s.submit(kernel="count", samples=10, batch_size=10, seed=3)  # stays queued
        lid = lease["id"]
        routes = [
            ("/v1/jobs", J(("kernel", S("pi")), ("samples", "1000"))),
            ("/v1/leases", J(("worker", S("t")), ("kernels", '["pi"]'))),
            (f"/v1/jobs/{victim['id']}/cancel", b"{}"),
            (f"/v1/leases/{lid}/heartbeat?worker=t", b"{}"),
            (f"/v1/leases/{lid}/complete?worker=t",
             J(("counts", J(("inside", str(good["inside"])),
                            ("samples", str(good["samples"]))).decode()))),
            (f"/v1/leases/{lid}/fail?worker=t", J(("error", S("x")))),
        ]
        deep_list = b"[" * 10000 + b"]" * 10000
        deep_obj = b'{"a":' * 10000 + b"1" + b"}" * 10000
        syntax = [
            # not an object
            ("[]", b"[]"), ("42", b"42"), ('"x"', b'"x"'), ("null", b"null"), ("true", b"true"),
            ("[{}]", b"[{}]"),
            # not JSON
            ("lone {", b"{"), ("lone }", b"}"), ("{]", b"{]"), ("single quotes", b"{'a':1}"),
            ("bare key", b"{a:1}"), ("trailing comma", b'{"a":1,}'), ("no colon", b'{"a" 1}'),
            ("trailing garbage", b"{} x"), ("two objects", b"{}{}"), ("comment", b"/* c */ {}"),
            ("bad escape", b'{"a":"\\x41"}'), ("raw tab in string", b'{"a":"a\tb"}'),
            ("raw newline in string", b'{"a":"a\nb"}'), ("unterminated string", b'{"a":"x}'),
            ("NaN", b'{"a":NaN}'), ("Infinity", b'{"a":Infinity}'),
            ("-Infinity", b'{"a":-Infinity}'), ("undefined", b'{"a":undefined}'),
            ("NUL byte raw", b'{"a":"\x00"}'), ("NUL byte outside", b"{}\x00"),
            # not UTF-8
            ("0xff in string", b'{"a":"\xff"}'), ("truncated sequence", b'{"a":"\xc3"}'),
            ("overlong /", b'{"a":"\xc0\xaf"}'),
            ("UTF-16 surrogate bytes", b'{"a":"\xed\xa0\x80"}'),
            ("past U+10FFFF", b'{"a":"\xf4\x90\x80\x80"}'), ("0xff in key", b'{"\xff":1}'),
            ("Latin-1 body", '{"a":"caf\u00e9"}'.encode("latin-1")),
            ("UTF-16 body", '{"a":1}'.encode("utf-16")),
            ("lone high surrogate escape", b'{"a":"\\ud800"}'),
            ("lone low surrogate escape", b'{"a":"\\udc00"}'),
            # duplicate keys
            ("duplicate key", b'{"a":1,"a":2}'),
            # nesting
            ("10000 [", deep_list), ("10000 {\"a\":", deep_obj),
            ("10000 [ unclosed", b"[" * 10000),
        ]
        cases = []
        for path, valid in routes:
            short = path.rsplit("/", 1)[-1]
            for name, body in syntax:
                cases.append(Case(f"{short}: {name}", "POST", path, body, 400, "invalid_json",
                                  "body"))
            for ct in ["text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                       "application/json-patch+json", "text/json", "json", "",
                       "multipart/form-data; boundary=x"]:
                cases.append(Case(f"{short}: Content-Type {ct!r}", "POST", path, valid, 415,
                                  "unsupported_media_type", "Content-Type", ctype=ct))
            cases.append(Case(f"{short}: no Content-Type", "POST", path, valid, 415,
                              "unsupported_media_type", "Content-Type", ctype=None))
            big = b'{"x":"' + b"a" * MIB + b'"}'
            for mode in ("length", "chunked"):
                cases.append(Case(f"{short}: body over 1 MiB ({mode})", "POST", path, big, 413,
                                  "body_too_large", "body", mode=mode))
            cases.append(Case(f"{short}: body 1 MiB + 1 ({'length'})", "POST", path,
                              valid + b" " * (MIB + 1 - len(valid)), 413, "body_too_large",
                              "body", mode="length"))
        # Nesting inside a field that takes an object.
        cases += [
            Case("jobs: params nested 10000 deep", "POST", "/v1/jobs",
                 b'{"kernel":"pi","samples":1000,"params":' + deep_obj + b"}", 400,
                 "invalid_json", "body"),
            Case("complete: counts nested 10000 deep", "POST",
                 f"/v1/leases/{lid}/complete?worker=t",
                 b'{"counts":' + deep_list + b"}", 400, "invalid_json", "body"),
            Case("GET /healthz with a text/plain body", "GET", "/healthz", b"hi", 415,
                 "unsupported_media_type", "Content-Type", ctype="text/plain"),
            Case("GET /v1/jobs with a text/plain body", "GET", "/v1/jobs", b"hi", 415,
                 "unsupported_media_type", "Content-Type", ctype="text/plain"),
        ]
        self.run_cases(s, cases)

        with self.subTest("none of that changed anything"):
            self.assertEqual(s.job(victim["id"])["state"], "queued")
            j = s.job(job["id"])
            self.assertEqual((j["state"], j["batches"]["done"], j["batches"]["leased"]),
                             ("running", 0, 1))
            jobs = s.req("GET", "/v1/jobs?limit=1000", timeout=TIMEOUT).json["jobs"]
            self.assertEqual(sorted(x["id"] for x in jobs), sorted([job["id"], victim["id"]]))

        # Media-type parameters and case are fine; a body of exactly 1 MiB is not too large.
        exact = J(("kernel", S("pi")), ("samples", "1000"))
        exact += b" " * (MIB - len(exact))
        self.run_cases(s, [
            Case("heartbeat, Content-Type with charset", "POST",
                 f"/v1/leases/{lid}/heartbeat?worker=t",
                 b"{}", 200, ctype="application/json; charset=utf-8"),
            Case("heartbeat, Content-Type in capitals", "POST",
                 f"/v1/leases/{lid}/heartbeat?worker=t",
                 b"{}", 200, ctype="Application/JSON"),
            Case("jobs, Content-Type with charset", "POST", "/v1/jobs",
                 J(("kernel", S("pi")), ("samples", "1000")), 201,
                 ctype="application/json; charset=utf-8"),
            Case("jobs, Content-Type charset no space", "POST", "/v1/jobs",
                 J(("kernel", S("pi")), ("samples", "1000")), 201,
                 ctype="application/json;charset=UTF-8"),
            Case("jobs, body exactly 1 MiB", "POST", "/v1/jobs", exact, 201),
            Case("jobs, body exactly 1 MiB, chunked", "POST", "/v1/jobs", exact, 201,
                 mode="chunked"),
            Case("heartbeat, empty body without Content-Type", "POST",
                 f"/v1/leases/{lid}/heartbeat?worker=t", b"", 200, ctype=None),
        ])


class IdsTest(BadInputCase):
    """Ids in paths: only canonical decimal 1..2^63-1 names a job; anything else is 404 and
    changes nothing."""

    def test_bad_job_ids(self):
        s = self.server()
        job = s.submit(kernel="pi", samples=1000, batch_size=1000, seed=9)
        jid = job["id"]
        forms = ["0", "-1", "0" + jid, "00", jid + ".0", "+" + jid, jid + "e0", "0x" + jid, "abc",
                 "%20" + jid, jid + "%20", I63, I64, "9" * 20, "9" * 200, "1" * 127, "%FF",
                 "%C3%A9", "%F0%9F%98%80", jid + "%2F1", jid + "%00", jid + "%00abc",
                 "a" * 63 + "%C3%A9", "999999", str(2 ** 63 - 1)]
        cases = []
        for form in forms:
            cases.append(Case(f"GET job {form[:30]!r}", "GET", f"/v1/jobs/{form}", None, 404,
                              "not_found", "job"))
            cases.append(Case(f"cancel job {form[:30]!r}", "POST", f"/v1/jobs/{form}/cancel",
                              None, 404, "not_found", "job"))
            cases.append(Case(f"DELETE job {form[:30]!r}", "DELETE", f"/v1/jobs/{form}", None,
                              404, "not_found", "job"))
        # A percent-encoded slash is part of the id segment, not a path separator: never a
        # cancel. POST on /v1/jobs/<segment> is the wrong method for that route shape (405).
        cases += [
            Case("GET job <id>%2Fcancel", "GET", f"/v1/jobs/{jid}%2Fcancel", None, 404,
                 "not_found", "job"),
            Case("POST job <id>%2Fcancel", "POST", f"/v1/jobs/{jid}%2Fcancel", None, 405,
                 "method_not_allowed", "POST"),
            Case("POST job <id>%2fcancel", "POST", f"/v1/jobs/{jid}%2fcancel", None, 405,
                 "method_not_allowed", "POST"),
        ]
        # The cancel body, on the real job.
        C = f"/v1/jobs/{jid}/cancel"
        for name, body, code, needle in [
            ("cancel unknown field", J(("x", "1")), "unknown_field", "x"),
            ("cancel reason", J(("reason", S("x"))), "unknown_field", "reason"),
            ("cancel state", J(("state", S("cancelled"))), "unknown_field", "state"),
            ("cancel []", b"[]", "invalid_json", "body"),
            ("cancel null", b"null", "invalid_json", "body"),
            ("cancel 0", b"0", "invalid_json", "body"),
        ]:
            cases.append(Case(name, "POST", C, body, 400, code, needle))
        self.run_cases(s, cases)

        with self.subTest("the job was neither cancelled nor changed"):
            self.assertEqual(s.job(jid)["state"], "queued")

        self.run_cases(s, [
            Case("cancel, empty body", "POST", C, None, 200),
            Case("cancel again, body {}", "POST", C, b"{}", 200),
        ])
        self.assertEqual(s.job(jid)["state"], "cancelled")


class QueryTest(BadInputCase):
    """GET /v1/jobs query strings."""

    def test_bad_queries(self):
        s = self.server()
        for i in range(3):
            s.submit(kernel="count", samples=10, batch_size=10, seed=i)
        P = "/v1/jobs"
        cases = []
        for q, needle in [
            ("foo=1", "foo"), ("State=running", "State"), ("limit=5&foo=1", "foo"),
            ("offset=0", "offset"), ("page=2", "page"), ("limits=5", "limits"),
            ("%FF=1", None), (SPLIT_UTF8.replace("\u00e9", "%C3%A9") + "=1", "a" * 32),
            ("state=bogus", "state"), ("state=", "state"), ("state=RUNNING", "state"),
            ("state=running,queued", "state"), ("state=%20running", "state"),
            ("state=running%00x", "state"), ("state=%FF", "state"), ("state", "state"),
            ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=-1", "limit"),
            ("limit=abc", "limit"), ("limit=", "limit"), ("limit=1.5", "limit"),
            ("limit=%2B5", "limit"), ("limit=%205", "limit"), ("limit=1e2", "limit"),
            ("limit=0x10", "limit"), ("limit=" + I64, "limit"), ("limit=" + "9" * 30, "limit"),
            ("limit=5%00abc", "limit"), ("limit", "limit"),
            ("state=queu%65d", "state"),  # query values are not percent-decoded
            ("cursor=abc", "cursor"), ("cursor=0", "cursor"), ("cursor=-1", "cursor"),
            ("cursor=01", "cursor"), ("cursor=1.5", "cursor"), ("cursor=", "cursor"),
            ("cursor=" + I63, "cursor"), ("cursor=1%00", "cursor"), ("cursor", "cursor"),
        ]:
            cases.append(Case(f"?{q[:60]}", "GET", f"{P}?{q}", None, 400, "invalid_query",
                              needle))
        for q in ["", "state=queued", "state=running", "state=succeeded", "state=failed",
                  "state=cancelled", "limit=1", "limit=1000", "cursor=1",
                  "cursor=" + str(2 ** 63 - 1), "state=queued&limit=2&cursor=3"]:
            cases.append(Case(f"valid ?{q}", "GET", f"{P}?{q}" if q else P, None, 200))
        self.run_cases(s, cases)

        # Paging with what the server gave back works.
        r = s.req("GET", f"{P}?limit=2", timeout=TIMEOUT)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json["jobs"]), 2)
        self.assertIsInstance(r.json["next_cursor"], str)
        r2 = s.req("GET", f"{P}?limit=2&cursor={r.json['next_cursor']}", timeout=TIMEOUT)
        self.assertEqual((r2.status, len(r2.json["jobs"])), (200, 1), r2)


class RoutesTest(BadInputCase):
    """Unknown routes are 404; known paths with the wrong method are 405 with Allow."""

    def test_unknown_routes_and_wrong_methods(self):
        s = self.server()
        s.submit(kernel="count", samples=10, batch_size=10, seed=1)
        cases = []
        for path in ["/v1", "/v1/", "/v1/jobs/", "/v1/jobs/1/", "/v1/jobs/1/cancel/",
                     "/v1/jobs/1/bogus", "/v1/jobs/1/cancel/x", "/v1/leases/", "/v1/leases/1",
                     "/v1/leases/1/", "/v1/leases/1/bogus", "/v1/leases/1/heartbeat/x",
                     "/v1/leases/1/complete/", "/v2/jobs", "/V1/JOBS", "/v1/Jobs",
                     "/healthz/", "/healthz/x", "/health", "/HEALTHZ", "//v1/jobs", "/v1//jobs",
                     "/v1/jobs//cancel", "/index.html", "/v1/jobs/" + "1" * 5000,
                     "/" + "x" * 3000, "/%FF", "/" + "%C3%A9" * 150, "/v1/%FF/jobs"]:
            for method in ("GET", "POST"):
                cases.append(Case(f"{method} {path[:50]}", method, path,
                                  b"{}" if method == "POST" else None, 404, "not_found"))
        for path, allow, methods in [
            ("/v1/jobs", "POST,GET", ["PUT", "DELETE", "PATCH", "OPTIONS"]),
            ("/v1/jobs/1", "GET,DELETE", ["POST", "PUT", "PATCH"]),
            ("/v1/jobs/abc", "GET,DELETE", ["PUT"]),
            ("/v1/jobs/%FF", "GET,DELETE", ["PUT"]),
            ("/v1/jobs/1/cancel", "POST", ["GET", "PUT", "DELETE"]),
            ("/v1/leases", "POST", ["GET", "PUT", "DELETE", "PATCH"]),
            ("/v1/leases/1/heartbeat", "POST", ["GET", "PUT", "DELETE"]),
            ("/v1/leases/1/complete", "POST", ["GET", "PUT", "DELETE"]),
            ("/v1/leases/1/fail", "POST", ["GET", "PUT", "DELETE"]),
            ("/healthz", "GET", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
            ("/", "GET", ["POST", "PUT", "DELETE"]),  # the dashboard
            ("/metrics", "GET", ["POST", "DELETE"]),
            ("/v1/jobs/1/history", "GET", ["POST", "DELETE"]),
        ]:
            for method in methods:
                cases.append(Case(f"{method} {path}", method, path, None, 405,
                                  "method_not_allowed", method, allow=allow))
        self.run_cases(s, cases)
        self.assertEqual(s.job("1")["state"], "queued")


class TransportTest(BadInputCase):
    """Broken HTTP below the JSON layer: libmicrohttpd answers these itself (not always with our
    JSON body), so only 'a 4xx or a closed connection, and the server keeps serving' is asked."""

    def exchange(self, port, data):
        """Sends data, half-closes, and returns the reply's status; None when the server closes
        without one or has not answered within a second (libmicrohttpd may keep waiting for the
        rest of a request it cannot parse until its connection timeout: not a failure here)."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        try:
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            sock.settimeout(1)
            resp = http.client.HTTPResponse(sock, method="GET")
            try:
                resp.begin()
            except (http.client.HTTPException, ConnectionError, TimeoutError):
                return None
            return resp.status
        finally:
            sock.close()

    def test_malformed_http(self):
        s = self.server()
        H = b"Host: x\r\nContent-Type: application/json\r\n"
        post = b"POST /v1/jobs HTTP/1.1\r\n" + H
        rows = [
            ("garbage", b"GARBAGE\r\n\r\n"),
            ("binary", bytes(range(256))),
            ("header over the memory pool",
             b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 100000 + b"\r\n\r\n"),
            ("Content-Length abc", post + b"Content-Length: abc\r\n\r\n{}"),
            ("Content-Length -1", post + b"Content-Length: -1\r\n\r\n{}"),
            ("Content-Length 10^23", post + b"Content-Length: 99999999999999999999999\r\n\r\n{}"),
            ("Content-Length twice, differing",
             post + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
            ("bad chunk size", post + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
            ("chunk size 2^64", post + b"Transfer-Encoding: chunked\r\n\r\n"
             b"10000000000000000\r\n{}\r\n0\r\n\r\n"),
            ("body shorter than Content-Length", post + b"Content-Length: 100\r\n\r\n{\"kern"),
            ("HTTP/9.9", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"),  # 505 is right here
        ]
        # libmicrohttpd cuts the target at a raw NUL and serves GET /v1/jobs: liveness only.
        liveness_only = [("NUL in request line", b"GET /v1/jobs\x00x HTTP/1.1\r\nHost: x\r\n\r\n")]
        for name, data in rows + liveness_only:
            with self.subTest(name):
                try:
                    status = self.exchange(s.port, data)
                except OSError as e:
                    self.fail(f"{name}: {e!r}")
                if status is not None and (name, data) not in liveness_only:
                    self.assertTrue(400 <= status < 500 or status == 505, f"{name}: {status}")
            self.assert_serving(s, name)

    def test_one_connection_many_errors(self):
        """Errors do not wedge a kept-alive connection."""
        s = self.server()
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=TIMEOUT)
        try:
            for i in range(5):
                for method, path, body, status in [
                    ("POST", "/v1/jobs", b"{", 400), ("GET", "/nope", None, 404),
                    ("DELETE", "/v1/jobs", None, 405), ("GET", "/v1/jobs?limit=0", None, 400),
                    ("POST", "/v1/leases/1-0123456789abcdef/heartbeat?worker=x", None, 404),
                    ("GET", "/healthz", None, 200),
                ]:
                    headers = {"Content-Type": JSON_CT} if body else {}
                    conn.request(method, path, body=body, headers=headers)
                    r = conn.getresponse()
                    r.read()
                    self.assertEqual(r.status, status, f"round {i}: {method} {path}")
        finally:
            conn.close()
        self.assert_serving(s, "kept-alive errors")


if __name__ == "__main__":
    unittest.main()
