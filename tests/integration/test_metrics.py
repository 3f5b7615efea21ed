"""GET /metrics: the Prometheus text format, and figures that follow what the coordinator did:
jobs by state, batches and samples counted, leases, refused completes, the queue an autoscaler
scales on, workers by state, requests and latency by route, commit latency."""
import re
import unittest

from harness import TallyTestCase

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
        # Refused completes are counted by reason.
        r = s.req("POST", "/v1/leases/12345/complete", {"counts": {"inside": 1, "samples": 1}})
        self.assertEqual(r.status, 404)
        lease = s.req("POST", "/v1/leases", {"worker": "probe", "kernels": ["pi"],
                                              "max_batches": 1}).json
        r = s.req("POST", f"/v1/leases/{lease['id']}/complete",
                  {"counts": {"inside": 1, "samples": 5}})
        self.assertEqual(r.status, 422)
        m = scrape(s)
        self.assertEqual(m[("tally_completes_refused_total", '{reason="lost"}')], 1)
        self.assertEqual(m[("tally_completes_refused_total", '{reason="bad_counts"}')], 1)
        self.assertEqual(m[("tally_leases_active", "")], 1)
        self.assertEqual(m[("tally_workers", '{state="active"}')], 1)
        # The probe's lease expires; a real worker does the job.
        w = self.worker(s, threads=2, name="real")
        done = s.wait_job(job["id"])
        m = scrape(s)
        self.assertEqual(m[("tally_jobs", '{state="succeeded"}')], 1)
        self.assertEqual(m[("tally_jobs", '{state="queued"}')], 0)
        self.assertEqual(m[("tally_samples_completed_total", "")], done["counts"]["samples"])
        self.assertEqual(m[("tally_batches_completed_total", "")], 500)
        self.assertGreaterEqual(m[("tally_leases_expired_total", "")], 1)
        self.assertGreaterEqual(m[("tally_leases_granted_total", "")], 3)
        self.assertEqual(m[("tally_queue_batches", "")], 0)
        self.assertEqual(m[("tally_jobs_submitted_total", "")], 1)
        post = '{method="POST",route="/v1/jobs",code="2xx"}'
        self.assertEqual(m[("tally_http_requests_total", post)], 1)
        self.assertEqual(m[("tally_http_requests_total",
                            '{method="POST",route="/v1/leases/{}/complete",code="4xx"}')], 2)
        self.assertGreaterEqual(m[("tally_http_request_duration_seconds_count",
                                   '{method="POST",route="/v1/jobs"}')], 1)
        self.assertGreater(m[("tally_sqlite_commit_duration_seconds_count", "")], 0)
        self.assertGreater(m[("tally_http_connections", "")], 0)
        s.req("GET", "/no/such/route")
        m = scrape(s)
        self.assertEqual(m[("tally_http_requests_total",
                            '{method="",route="(none)",code="4xx"}')], 1)
        w.kill()


if __name__ == "__main__":
    unittest.main()
