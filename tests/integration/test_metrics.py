"""Observability. GET /metrics: the Prometheus text format, and figures that follow what the
coordinator did: jobs by state, batches and samples counted, leases, refused completes, the queue
an autoscaler scales on, workers by state, requests and latency by route, commit latency. Logs:
one line per event, logfmt or JSON, with level and job and lease ids."""
import json
import re
import signal
import subprocess
import unittest

from harness import TallyTestCase, binary

SAMPLE = re.compile(r'^([a-z_]+)(\{(?:[a-z_]+="[^"\\\n]*",?)*\})? ([0-9.e+-]+|\+Inf)$')


def scrape(s):
    """Parses the exposition strictly: returns {(name, labels): value}, checking that every
    sample follows its HELP and TYPE lines and that histograms are cumulative."""
    r = s.req("GET", "/metrics")
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    text = r.raw.decode()
    out, typed, helped = {}, {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            typed[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name
        assert base in typed and base in helped, f"{name} without HELP/TYPE"
        key = (name, labels or "")
        assert key not in out, f"{key} twice"
        out[key] = float(value)
    for (name, labels), v in out.items():  # buckets rise to +Inf, which equals _count
        if name.endswith("_bucket") and 'le="+Inf"' in labels:
            rest = labels.replace(',le="+Inf"', "").replace('le="+Inf"', "")
            rest = "" if rest == "{}" else rest
            assert out[(name[:-7] + "_count", rest)] == v, (name, labels)
    return out


class MetricsTest(TallyTestCase):
    def test_figures_follow_the_work(self):
        s = self.server("--lease-timeout", "2")
        m = scrape(s)
        self.assertEqual(m[("tally_jobs", '{state="succeeded"}')], 0)
        self.assertEqual(m[("tally_queue_batches", "")], 0)
        # Queued work, no worker: the queue gauge shows it all.
        job = s.submit(kernel="pi", samples=50_000_000, batch_size=100_000, seed=3)
        m = scrape(s)
        self.assertEqual(m[("tally_jobs", '{state="queued"}')], 1)
        self.assertEqual(m[("tally_queue_batches", "")], 500)
        self.assertEqual(m[("tally_queue_samples", "")], 50_000_000)
        # Refused completes are counted by reason (a lease its caller has not got is refused
        # before the coordinator looks: not counted).
        r = s.req("POST", "/v1/leases/12345-0123456789abcdef/complete?worker=probe",
                  {"counts": {"inside": 1, "samples": 1}})
        self.assertEqual(r.status, 404)
        ask = {"worker": "probe", "kernels": ["pi"], "max_batches": 1}
        lease = s.req("POST", "/v1/leases", ask).json
        r = s.req("POST", f"/v1/leases/{lease['id']}/fail?worker=probe", {"fault": False})
        self.assertEqual(r.status, 200)
        r = s.req("POST", f"/v1/leases/{lease['id']}/complete?worker=probe",
                  {"counts": {"inside": 1, "samples": 5}})
        self.assertEqual(r.status, 409)
        lease = s.req("POST", "/v1/leases", ask).json
        r = s.req("POST", f"/v1/leases/{lease['id']}/complete?worker=probe",
                  {"counts": {"inside": 1, "samples": 5}})
        self.assertEqual(r.status, 422)
        m = scrape(s)
        self.assertEqual(m[("tally_completes_refused_total", '{reason="lost"}')], 1)
        self.assertEqual(m[("tally_completes_refused_total", '{reason="bad_counts"}')], 1)
        self.assertEqual(m[("tally_leases_active", "")], 1)
        self.assertEqual(m[("tally_workers", '{state="active"}')], 1)
        # The probe's lease expires, or the real worker, which does the job, finishes a
        # speculative copy of it first (docs/protocol.md, "Speculative copies").
        w = self.worker(s, threads=2, name="real")
        done = s.wait_job(job["id"])
        m = scrape(s)
        self.assertEqual(m[("tally_jobs", '{state="succeeded"}')], 1)
        self.assertEqual(m[("tally_jobs", '{state="queued"}')], 0)
        self.assertEqual(m[("tally_samples_completed_total", "")], done["counts"]["samples"])
        self.assertEqual(m[("tally_batches_completed_total", "")], 500)
        self.assertGreaterEqual(m[("tally_leases_expired_total", "")] +
                                m[("tally_speculative_wins_total", "")], 1)
        self.assertLessEqual(m[("tally_speculative_wins_total", "")],
                             m[("tally_speculative_leases_total", "")])
        self.assertGreaterEqual(m[("tally_leases_granted_total", "")], 3)
        self.assertEqual(m[("tally_queue_batches", "")], 0)
        self.assertEqual(m[("tally_jobs_submitted_total", "")], 1)
        post = '{method="POST",route="/v1/jobs",code="2xx"}'
        self.assertEqual(m[("tally_http_requests_total", post)], 1)
        self.assertEqual(m[("tally_http_requests_total",
                            '{method="POST",route="/v1/leases/{}/complete",code="4xx"}')], 3)
        self.assertGreaterEqual(m[("tally_http_request_duration_seconds_count",
                                   '{method="POST",route="/v1/jobs"}')], 1)
        self.assertGreater(m[("tally_sqlite_commit_duration_seconds_count", "")], 0)
        self.assertGreater(m[("tally_http_connections", "")], 0)
        s.req("GET", "/no/such/route")
        m = scrape(s)
        self.assertEqual(m[("tally_http_requests_total",
                            '{method="",route="(none)",code="4xx"}')], 1)
        w.kill()


    def test_json_logs(self):
        s = self.server("--log-format", "json", "--log-level", "debug")
        w = self.worker(s, 1, "jw", "--log-format", "json", "--log-level", "debug")
        job = s.submit(kernel="pi", samples=1_000_000, batch_size=100_000, seed=1)
        s.wait_job(job["id"])
        w.kill(signal.SIGTERM)
        for who, text in (("server", s.log()), ("worker", w.log())):
            lines = [json.loads(line) for line in text.splitlines() if line.strip()]
            self.assertGreater(len(lines), 2, who)
            for o in lines:
                self.assertRegex(o["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
                self.assertIn(o["level"], ("debug", "info", "warn", "error"))
                self.assertIsInstance(o["msg"], str)
        events = [json.loads(line) for line in s.log().splitlines() if line.strip()]
        submitted = [o for o in events if o["msg"] == "job submitted"]
        self.assertEqual(submitted[0]["job"], int(job["id"]))  # ids as numbers
        self.assertEqual(submitted[0]["kernel"], "pi")
        granted = [o for o in events if o["msg"] == "lease granted"]
        self.assertTrue(granted and all(isinstance(o["lease"], int) for o in granted))
        self.assertEqual(granted[0]["worker"], "jw")
        stopped = [json.loads(line) for line in w.log().splitlines() if line.strip()]
        self.assertEqual(stopped[-1]["msg"], "worker stopped")
        r = subprocess.run([binary("tally-server"), "--log-format", "xml"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--log-format: must be logfmt or json", r.stderr)


if __name__ == "__main__":
    unittest.main()
