#!/usr/bin/env python3
"""Runs tally's benchmarks and rewrites docs/benchmarks.md with what they measured.

    scripts/build.sh && python3 bench/run.py            # everything (about 5 minutes)
    python3 bench/run.py --only kernel e2e              # some; the others keep their old rows
    python3 bench/run.py --against ../baseline/build/bin --ab-out docs/benchmarks-ab.md
                                                        # A/B: this build against another

Every figure is the median of several runs unless the table says otherwise; a ratio is measured
in one run, its two sides interleaved. Timing is for benchmarks, never for tests.

A/B (--against DIR, DIR a bin directory of another build): runs the dispatch, e2e and latency
benchmarks (or those of them --only names) for both builds in one run, interleaved: each round
runs every benchmark once for each build, the order of the two flipping from round to round
(A B, B A, A B, ...), so that drift in the machine's load falls on both alike. It prints, for
each figure, the median over rounds for this build and for the other, and their ratio (this /
other); --ab-out FILE also writes that table to FILE (docs/benchmarks-ab.md, say).
docs/benchmarks.md and docs/benchmarks.json are left alone. The other build's tally-server,
tally-worker and tally-bench-kernel are used for its side; tally-loadgen, the measuring
instrument, is this build's for both. Each benchmark measures as it does alone, but repeats
once per call (--runs) since the rounds do the repeating.
"""
import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("TALLY_BIN", os.path.join(ROOT, "build", "bin"))
import harness  # noqa: E402
from harness import Server, Worker, request  # noqa: E402

BIN = os.environ["TALLY_BIN"]
NPROC = os.cpu_count()
OUT = os.path.join(ROOT, "docs", "benchmarks.md")
RESULTS = os.path.join(ROOT, "docs", "benchmarks.json")
LOADGEN = os.path.join(BIN, "tally-loadgen")  # this build's, whichever build is measured


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def bare(samples, batch_size=100_000, threads=NPROC, path=None):
    args = [os.path.join(BIN, "tally-bench-kernel"), "--samples", str(samples), "--batch-size",
            str(batch_size), "--threads", str(threads)]
    if path:
        args += ["--path", path]
    return json.loads(sh(*args))


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def run_job(server, **spec):
    """Submits a job and waits for it with GET ?wait_s; returns (seconds, job)."""
    t0 = time.monotonic()
    job = server.submit(**spec)
    while job["state"] not in ("succeeded", "failed", "cancelled"):
        job = server.req("GET", f"/v1/jobs/{job['id']}?wait_s=60", timeout=90).json
    return time.monotonic() - t0, job


class Cluster:
    """A coordinator and one worker with every core, on loopback, in a temporary directory."""

    def __init__(self, threads=NPROC, *server_args):
        self.tmp = tempfile.mkdtemp(prefix="tally-bench-")
        self.server = Server(self.tmp, *server_args)
        self.worker = Worker(self.server, threads, "bench", self.tmp)
        time.sleep(0.3)

    def run(self, **spec):
        return run_job(self.server, **spec)

    def close(self):
        self.worker.kill(signal.SIGTERM)
        self.server.stop()


def med(xs):
    return statistics.median(xs)


def bench_kernel(r):
    for path in ("scalar", "avx2", "avx512"):
        rates = []
        for _ in range(3):
            try:
                rates.append(bare(1_000_000_000, threads=1, path=path)["rate"])
            except subprocess.CalledProcessError:
                break
        if rates:
            r[f"kernel_{path}"] = med(rates)


def bench_e2e(r, runs=5, samples=10**10):
    c = Cluster()
    try:
        c.run(kernel="pi", samples=10**9, batch_size=100_000, seed=1)  # warm-up: rates learnt
        svc, base, counts = [], [], set()
        for i in range(runs):
            base.append(bare(samples)["seconds"])
            t, job = c.run(kernel="pi", samples=samples, batch_size=100_000, seed=42)
            svc.append(t)
            counts.add(json.dumps(job["counts"]))
        r["e2e_service_s"], r["e2e_bare_s"] = med(svc), med(base)
        r["e2e_ratio"] = med(svc) / med(base)
        r["e2e_identical"] = len(counts) == 1
        r["e2e_counts"] = sorted(counts)  # JSON texts: one when identical
    finally:
        c.close()


def bench_tiny(r, runs=5):
    c = Cluster()
    try:
        c.run(kernel="pi", samples=10**9, batch_size=100_000, seed=1)
        tiny, big = [], []
        for _ in range(runs):
            tiny.append(c.run(kernel="pi", samples=10**9, batch_size=1000, seed=7)[0])
            big.append(c.run(kernel="pi", samples=10**9, batch_size=100_000, seed=7)[0])
        r["tiny_s"], r["tiny_big_s"] = med(tiny), med(big)
        r["tiny_ratio"] = med(tiny) / med(big)
    finally:
        c.close()


def bench_huge(r):
    s = fresh_server()
    try:
        s.submit(kernel="pi", samples=1000, seed=1)  # schema and first pages written
        db = s.db
        size = lambda: sum(os.path.getsize(db + x) for x in ("", "-wal") if os.path.exists(db + x))
        before = size()
        posts, gets, small_gets, jobs = [], [], [], []
        for i in range(5):
            t0 = time.monotonic()
            jobs.append(s.submit(kernel="pi", samples=10**15, batch_size=1000, seed=i))
            posts.append(time.monotonic() - t0)
        job = jobs[0]  # the oldest: the one a worker takes first
        r["huge_post_ms"] = med(posts) * 1000
        r["huge_db_growth_kib"] = (size() - before) / 5 / 1024
        small = s.submit(kernel="pi", samples=1000, seed=9)
        for _ in range(50):
            t0 = time.monotonic()
            s.req("GET", f"/v1/jobs/{job['id']}")
            gets.append(time.monotonic() - t0)
            t0 = time.monotonic()
            s.req("GET", f"/v1/jobs/{small['id']}")
            small_gets.append(time.monotonic() - t0)
        r["huge_get_ms"], r["small_get_ms"] = med(gets) * 1000, med(small_gets) * 1000
        w = Worker(s, NPROC, "huge", s.tmpdir)
        s.wait_until(job["id"], lambda j: j["batches"]["leased"] > 0, timeout=30)
        t0 = time.monotonic()
        c = s.req("POST", f"/v1/jobs/{job['id']}/cancel")
        r["huge_cancel_ms"] = (time.monotonic() - t0) * 1000
        r["huge_cancel_state"] = c.json["state"]
        w.kill(signal.SIGTERM)
        for j in jobs[1:]:
            s.req("POST", f"/v1/jobs/{j['id']}/cancel")
    finally:
        s.stop()


def bench_latency(r, n=200):
    c = Cluster(1)
    try:
        lat = []
        for i in range(n):
            t0 = time.monotonic()
            job = c.server.submit(kernel="count", samples=1, batch_size=1, seed=i)
            got = c.server.req("GET", f"/v1/jobs/{job['id']}?wait_s=10").json
            lat.append(time.monotonic() - t0)
            assert got["state"] == "succeeded", got
        lat.sort()
        r["latency_p50_ms"] = lat[len(lat) // 2] * 1000
        r["latency_p99_ms"] = lat[int(len(lat) * 0.99) - 1] * 1000
    finally:
        c.close()


def bench_growth(r):
    c = Cluster()
    try:
        c.run(kernel="pi", samples=10**9, batch_size=100_000, seed=1)
        for exp in (8, 9, 10, 11):
            runs = 3 if exp < 11 else 1
            t = med([c.run(kernel="pi", samples=10**exp, batch_size=100_000, seed=exp)[0]
                     for _ in range(runs)])
            r[f"growth_1e{exp}_s"] = t
        r["worker_hwm_kib"] = rss_kib(c.worker.proc.pid, "VmHWM")
        ids = [c.server.submit(kernel="pi", samples=10**13, seed=i)["id"] for i in range(10)]
        time.sleep(3)
        r["server_rss_10_jobs_kib"] = rss_kib(c.server.proc.pid)
        for i in ids:
            c.server.req("POST", f"/v1/jobs/{i}/cancel")
    finally:
        c.close()


def bench_seed(r):
    seed = os.path.join(ROOT, "bench", "seed_pi.py")
    pool = []
    for _ in range(3):
        out = sh(sys.executable, seed, "--num-samples", "100000000", "--parallel")
        pool.append(float(re.search(r"Finished in: ([0-9.]+)s", out).group(1)))
    r["seed_pool_s"] = med(pool)
    out = sh(sys.executable, seed, "--num-samples", "100000000")
    r["seed_serial_s"] = float(re.search(r"Finished in: ([0-9.]+)s", out).group(1))
    c = Cluster()
    try:
        c.run(kernel="pi", samples=10**9, batch_size=100_000, seed=1)
        r["tally_1e8_s"] = med([c.run(kernel="pi", samples=10**8, batch_size=100_000,
                                      seed=i)[0] for i in range(5)])
    finally:
        c.close()


PY = "/usr/bin/python3"  # Debian's: the interpreter the workers' programs run under
PI_RESIDENT = os.path.join(ROOT, "examples", "pi_resident.py")
POOL2 = """
import math, random, sys, time
from multiprocessing.pool import Pool
def sample(num_samples):  # the seed's
    num_inside = 0
    for _ in range(num_samples):
        x, y = random.uniform(-1, 1), random.uniform(-1, 1)
        if math.hypot(x, y) <= 1:
            num_inside += 1
    return num_inside
if __name__ == "__main__":
    n = int(sys.argv[1])
    t0 = time.monotonic()
    with Pool(2) as pool:
        inside = sum(pool.map(sample, [100000] * (n // 100000)))
    print(time.monotonic() - t0, inside)
"""


def pool2_s(samples):
    """The seed's sample() over multiprocessing.Pool(2) in chunks of 1e5, timed in the process
    from the pool's creation to the sum (the interpreter's own start left out)."""
    return float(sh(PY, "-c", POOL2, str(samples)).split()[0])


def tally_py(samples, seed, resident=True, program=PI_RESIDENT, **server):
    """The seed's sample() through the Python client (tally.run) on a running coordinator:
    examples/pi_resident.py as a resident program, or examples/sample.py run per batch."""
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); import tally; t0 = time.monotonic(); "
            "j = tally.run('exec', int(sys.argv[2]), batch_size=100000, seed=int(sys.argv[3]), "
            "params=__import__('json').loads(sys.argv[4]), progress=False); "
            "print(time.monotonic() - t0, j['state'], j['counts']['inside'])")
    params = ({"argv": [program, "serve"], "resident": True} if resident
              else {"argv": [os.path.join(ROOT, "examples", "sample.py")]})
    env = dict(os.environ, **server)
    out = sh(PY, "-c", code, os.path.join(ROOT, "python"), str(samples), str(seed),
             json.dumps(params), env=env).split()
    if out[1] != "succeeded":
        raise RuntimeError(f"job {out[1]}")
    return float(out[0]), int(out[2])


def bench_resident(r, runs=5):
    """The seed's job (1e7 samples, batches of 1e5) on 2 cores: Pool(2) against tally with the
    program resident and run per batch, interleaved; and a C program that does nothing, resident,
    for the worker's own cost per batch."""
    tmp = tempfile.mkdtemp(prefix="tally-bench-")
    server = Server(tmp)
    worker = Worker(server, NPROC, "bench", tmp, "--allow-exec", os.path.join(ROOT, "examples"),
                    "--allow-exec", BIN)
    env = {"TALLY_SERVER": server.url}
    try:
        tally_py(10**6, 0, **env)  # the page cache warm for both
        pool, res, per_batch, same = [], [], [], set()
        for i in range(runs):
            pool.append(pool2_s(10**7))
            t, inside = tally_py(10**7, 1, **env)
            res.append(t)
            same.add(inside)
            if i < 2:
                per_batch.append(tally_py(10**7, 1, resident=False, **env)[0])
        r["resident_pool2_1e7_s"] = med(pool)
        r["resident_tally_1e7_s"] = med(res)
        r["resident_ratio"] = med(res) / med(pool)
        r["resident_per_batch_1e7_s"] = med(per_batch)
        r["resident_identical"] = len(same) == 1
        noop = os.path.join(BIN, "tally-resident-noop")
        for threads in (1, NPROC):
            worker.kill(signal.SIGTERM)
            worker = Worker(server, threads, f"noop{threads}", tmp, "--allow-exec", BIN)
            times = []
            batches = 200_000
            for i in range(3):
                t, job = run_job(server, kernel="exec", samples=batches, batch_size=1, seed=i,
                                 params={"argv": [noop], "resident": True})
                if job["state"] != "succeeded":
                    raise RuntimeError(f"noop job {job['state']}: {job.get('error')}")
                times.append(t)
            r[f"resident_noop_us_{threads}t"] = med(times) / batches * 1e6 * threads
    finally:
        worker.kill(signal.SIGTERM)
        server.stop()


def bench_compose(r):
    """1e8 samples of the seed's sample(), resident, on 3 compose workers (docker/compose.yaml,
    images built by scripts/docker-engine.sh --build; every worker with the default threads: all
    cores), against Pool(2) on this machine. One run each: a minute in all."""
    import secrets
    sh(os.path.join(ROOT, "scripts", "docker-engine.sh"), "--build")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    env.update(TALLY_TOKEN=secrets.token_hex(16), TALLY_WORKER_TOKEN=secrets.token_hex(16),
               TALLY_PORT=str(port), TALLY_ALLOW_EXEC="/usr/local/share/tally/examples")
    # docker compose (v2) where the plugin is there, else Debian's docker-compose (v1)
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    compose = (["docker", "compose"] if v2 else ["docker-compose"]) + [
        "-f", os.path.join(ROOT, "docker", "compose.yaml"), "-p", "tallybench"]
    subprocess.run(compose + ["down", "-v", "--timeout", "5"], env=env, capture_output=True)
    sh(*compose, "up", "-d", "--no-build", "--scale", "worker=3", env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:  # the coordinator up and three workers polling
            try:
                ws = request(port, "GET", "/v1/workers", headers={
                    "Authorization": "Bearer " + env["TALLY_TOKEN"]}, timeout=5).json
                if ws and len(ws.get("workers", [])) >= 3:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("compose: no 3 workers within 120 s")
            time.sleep(0.5)
        client = dict(TALLY_SERVER=url, TALLY_TOKEN=env["TALLY_TOKEN"])
        program = "/usr/local/share/tally/examples/pi_resident.py"
        tally_py(10**6, 0, program=program, **client)  # the programs' files in the page cache
        r["compose_tally_1e8_s"], _ = tally_py(10**8, 1, program=program, **client)
        r["compose_pool2_1e8_s"] = pool2_s(10**8)
        r["compose_ratio"] = r["compose_tally_1e8_s"] / r["compose_pool2_1e8_s"]
    finally:
        subprocess.run(compose + ["down", "-v", "--timeout", "10"], env=env, capture_output=True)


def loadgen(*args):
    return json.loads(sh(LOADGEN, *args).strip().splitlines()[-1])


def fresh_server():
    """A coordinator alone, on a new database in a temporary directory."""
    return Server(tempfile.mkdtemp(prefix="tally-bench-"))


def bench_dispatch(r, runs=3, seconds=10):
    """Three 10 s runs, each on a fresh coordinator killed with SIGKILL at its end; the row
    shows the medians, and every run's acknowledged completes must all be counted."""
    outs, acked_all, durable = [], 0, True
    for _ in range(runs):
        s = fresh_server()
        try:
            acked = os.path.join(s.tmpdir, "acked")
            outs.append(loadgen("cycle", "--port", str(s.port), "--workers", "256",
                                "--seconds", str(seconds), "--acked", acked))
            with open(acked) as f:
                n_acked = sum(1 for _ in f)
            s.kill(signal.SIGKILL)
            s.start()
            jobs = s.req("GET", "/v1/jobs").json["jobs"]
            done = sum(j["batches"]["done"] for j in jobs)
            acked_all += n_acked
            durable = durable and done >= n_acked
        finally:
            s.stop()
    r["dispatch_rate"] = med([o["rate"] for o in outs])
    r["dispatch_p99_ms"] = med([o["p99_ms"] for o in outs])
    r["dispatch_p50_ms"] = med([o["p50_ms"] for o in outs])
    r["dispatch_errors"] = sum(o["errors"] for o in outs)
    r["dispatch_rates"] = [o["rate"] for o in outs]
    r["dispatch_acked"], r["dispatch_durable"] = acked_all, durable


def bench_verify(r, runs=3):
    """1e10 pi with verify 0, 0.1 and 1 on two one-thread workers (a check needs another
    worker): what recomputation costs. Counts must be the same whatever verify is."""
    tmp = tempfile.mkdtemp(prefix="tally-bench-")
    s = Server(tmp)
    ws = [Worker(s, 1, f"v{i}", tmp) for i in range(2)]
    try:
        time.sleep(0.3)
        run_job(s, kernel="pi", samples=10**9, batch_size=100_000, seed=1)  # rates learnt
        times, counts, checks = {0: [], 0.1: [], 1: []}, set(), {}
        for _ in range(runs):
            for v in times:
                t, job = run_job(s, kernel="pi", samples=10**10, batch_size=100_000, seed=42,
                                 verify=v)
                times[v].append(t)
                counts.add(json.dumps(job["counts"]))
                checks[v] = job["verification"]["passed"]
        r["verify_0_s"], r["verify_01_s"], r["verify_1_s"] = (med(times[v]) for v in times)
        r["verify_identical"] = len(counts) == 1
        r["verify_checks_01"], r["verify_checks_1"] = checks[0.1], checks[1]
    finally:
        for w in ws:
            w.kill(signal.SIGTERM)
        s.stop()


PRIMES_BATCH = 10**9  # batches of 1e9 numbers: the sieve's setup per batch is then negligible


def bench_primes(r, runs=3):
    """pi(10^11) through the service (the primes plug-in, one worker on every core) against the
    primesieve command on the same machine (every core), interleaved."""
    kdir = os.path.join(os.path.dirname(BIN), "kernels")
    if not os.path.exists(os.path.join(kdir, "primes.so")) or not shutil.which("primesieve"):
        print("primes: skipped (no primes.so or no primesieve command)", file=sys.stderr)
        return
    tmp = tempfile.mkdtemp(prefix="tally-bench-")
    s = Server(tmp, "--kernel-dir", kdir)
    w = Worker(s, NPROC, "bench", tmp, "--kernel-dir", kdir)
    try:
        run_job(s, kernel="primes", samples=10**10, batch_size=PRIMES_BATCH)  # warm-up
        cmd, svc, exact = [], [], True
        for _ in range(runs):
            t0 = time.monotonic()
            out = sh("primesieve", "1e11", "--quiet")
            cmd.append(time.monotonic() - t0)
            exact &= out.split()[-1] == "4118054813"
            t, job = run_job(s, kernel="primes", samples=10**11, batch_size=PRIMES_BATCH)
            svc.append(t)
            exact &= job["counts"] == {"primes": 4118054813}
        r["primes_cmd_s"], r["primes_service_s"] = med(cmd), med(svc)
        r["primes_ratio"] = med(svc) / med(cmd)
        r["primes_exact"] = exact
    finally:
        w.kill(signal.SIGTERM)
        s.stop()


def bench_idle(r):
    s = fresh_server()
    try:
        time.sleep(0.2)
        c0 = cpu_s(s.proc.pid)
        t0 = time.monotonic()
        out = loadgen("idle", "--port", str(s.port), "--workers", "2000", "--seconds", "20",
                      "--wait", "30")
        r["idle_cpu_pct"] = (cpu_s(s.proc.pid) - c0) / (time.monotonic() - t0) * 100
        r["idle_rss_kib"] = rss_kib(s.proc.pid, "VmHWM")
        r["idle_connected"], r["idle_healthz_max_ms"] = out["connected"], out["healthz_max_ms"]
    finally:
        s.stop()


def bench_fleet(r, sizes=(1000, 10_000), seconds=30, target_ms=1000):
    """A fleet of simulated workers on one coordinator with its default limits (tally-loadgen
    fleet: speeds log-uniform over 1e6..1e9 samples/s, count leases with long polls, computed
    on timers, heartbeated, completed) for each size: leases/s, the simulated duration of each
    lease against --lease-target-ms (from each worker's third lease: the first is sized by the
    default rate, the second by the first's measurement), the coordinator's CPU and peak RSS,
    and the job's exact counts. The job is sized to about `seconds` of the fleet's speed; the
    slowest workers' first leases (2e7 samples at 1e6/s: 20 s) set its least duration."""
    import resource
    for n in sizes:
        s = Server(tempfile.mkdtemp(prefix="tally-bench-"), "--lease-target-ms", str(target_ms))
        try:
            pid = s.proc.pid
            c0, ru0, t0 = cpu_s(pid), resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
            out = loadgen("fleet", "--port", str(s.port), "--workers", str(n), "--seconds",
                          str(seconds))
            wall = time.monotonic() - t0
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = cpu_s(pid) - c0
            job = s.req("GET", f"/v1/jobs/{out['job_id']}").json
            k = f"fleet_{n}"
            r[f"{k}_leases_per_s"] = out["leases_per_s"]
            r[f"{k}_leases"], r[f"{k}_seconds"] = out["leases"], out["seconds"]
            for q in ("p50", "p99"):
                r[f"{k}_from3_{q}_x"] = out[f"from3_{q}_ms"] / target_ms
                r[f"{k}_from2_{q}_x"] = out[f"from2_{q}_ms"] / target_ms
                r[f"{k}_first_{q}_x"] = out[f"first_{q}_ms"] / target_ms
            r[f"{k}_from3_max_x"] = out["from3_max_ms"] / target_ms
            r[f"{k}_workers_with_3"] = out["workers_with_3"]
            r[f"{k}_cpu_s"], r[f"{k}_cpu_pct"] = cpu, cpu / wall * 100
            r[f"{k}_loadgen_cpu_s"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
            r[f"{k}_rss_kib"] = rss_kib(pid, "VmHWM")
            r[f"{k}_errors"] = out["errors"] + out["lost"]
            r[f"{k}_timer_lag_p99_ms"] = out["timer_lag_p99_ms"]
            r[f"{k}_exact"] = (out["done"] and job["state"] == "succeeded"
                               and job["counts"] == {"samples": out["samples"]})
            r[f"{k}_samples"] = out["samples"]
            print(f"fleet {n}: {json.dumps(out)}", file=sys.stderr, flush=True)
        finally:
            s.stop()
    lo, hi = sizes[0], sizes[-1]
    if f"fleet_{lo}_rss_kib" in r and f"fleet_{hi}_rss_kib" in r and hi > lo:
        r["fleet_kib_per_worker"] = (r[f"fleet_{hi}_rss_kib"] - r[f"fleet_{lo}_rss_kib"]) / (hi - lo)


def queue_submit(port, n, conns=8):
    """Submits n one-sample count jobs over conns keep-alive connections at once."""
    import http.client
    import threading
    body = json.dumps({"kernel": "count", "samples": 1, "batch_size": 1}).encode()
    errors = []

    def part(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(k):
            c.request("POST", "/v1/jobs", body, {"Content-Type": "application/json"})
            rsp = c.getresponse()
            rsp.read()
            if rsp.status != 201:
                errors.append(rsp.status)
                return
        c.close()

    ts = [threading.Thread(target=part, args=(n // conns + (i < n % conns),))
          for i in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError(f"submits refused: {errors[:5]}")


def bench_queue(r, sizes=(1000, 10_000, 100_000), cycles=300):
    """Lease latency with many unfinished jobs queued: n one-batch jobs, then cycles leases,
    each completed (finishing one job), timed from the lease request to its reply over one
    keep-alive connection; and the coordinator's memory per unfinished job (RSS growth over the
    submits)."""
    import http.client
    helptext = sh(os.path.join(BIN, "tally-server"), "--help")
    for n in sizes:
        args = []
        if "--max-unfinished-jobs" in helptext:
            args += ["--max-unfinished-jobs", str(n + cycles)]
        if "--max-jobs-in-memory" in helptext:
            args += ["--max-jobs-in-memory", str(n + cycles)]
        s = Server(tempfile.mkdtemp(prefix="tally-bench-"), *args)
        try:
            rss0 = rss_kib(s.proc.pid)
            t0 = time.monotonic()
            queue_submit(s.port, n)
            r[f"queue_{n}_submit_per_s"] = n / (time.monotonic() - t0)
            r[f"queue_{n}_kib_per_job"] = (rss_kib(s.proc.pid) - rss0) / n
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
            lease_req = json.dumps({"worker": "bench", "kernels": ["count"], "wait_s": 0})
            lat = []
            for _ in range(cycles):
                t = time.monotonic()
                c.request("POST", "/v1/leases", lease_req, {"Content-Type": "application/json"})
                rsp = c.getresponse()
                lease = json.loads(rsp.read())
                lat.append((time.monotonic() - t) * 1000)
                samples = lease["batch_count"] if lease["samples"] > 0 else 0
                c.request("POST", f"/v1/leases/{lease['id']}/complete?worker=bench",
                          json.dumps({"counts": {"samples": samples}}),
                          {"Content-Type": "application/json"})
                c.getresponse().read()
            lat.sort()
            r[f"queue_{n}_lease_p50_ms"] = lat[len(lat) // 2]
            r[f"queue_{n}_lease_p99_ms"] = lat[int(len(lat) * 0.99)]
            c.close()
        finally:
            s.stop()


def bench_retention(r, n=100_000, every=10_000, conns=4):
    """The database file under a steady load of submit, finish, delete: n one-batch count jobs,
    each submitted, leased and completed from Python (a worker's requests) and then deleted
    (DELETE /v1/jobs/<id>), over conns keep-alive connections at once. Prints the file's size
    (and its WAL's) every `every` jobs; it should stop growing once the tables and the WAL have
    their working size (incremental auto-vacuum hands deleted jobs' pages back)."""
    import http.client
    import threading
    submit = json.dumps({"kernel": "count", "samples": 1, "batch_size": 1})
    lease_req = json.dumps({"worker": "bench", "kernels": ["count"], "wait_s": 5})
    hdrs = {"Content-Type": "application/json"}
    s = Server(tempfile.mkdtemp(prefix="tally-bench-"), "--retention", "0")
    errors = []

    def ask(c, method, path, body=None, want=200):
        c.request(method, path, body, hdrs if body else {})
        rsp = c.getresponse()
        data = rsp.read()
        if rsp.status != want:
            raise RuntimeError(f"{method} {path}: {rsp.status} {data[:200]!r}")
        return json.loads(data) if data else None

    def part(k):
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
        try:
            for _ in range(k):
                ask(c, "POST", "/v1/jobs", submit, 201)
                lease = ask(c, "POST", "/v1/leases", lease_req)
                ask(c, "POST", f"/v1/leases/{lease['id']}/complete?worker=bench",
                    json.dumps({"counts": {"samples": lease["batch_count"]}}))
                ask(c, "DELETE", f"/v1/jobs/{lease['job_id']}", None, 204)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(repr(e))
        finally:
            c.close()

    def size(path):
        return os.path.getsize(path) if os.path.exists(path) else 0

    sizes = []
    try:
        t0 = time.monotonic()
        for done in range(every, n + 1, every):
            ts = [threading.Thread(target=part, args=(every // conns + (i < every % conns),))
                  for i in range(conns)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            if errors:
                raise RuntimeError(f"cycles failed: {errors[:3]}")
            sizes.append((done, size(s.db), size(s.db + "-wal")))
            print(f"retention: {done} jobs submitted, finished, deleted: db {sizes[-1][1] // 1024} "
                  f"KiB, wal {sizes[-1][2] // 1024} KiB", file=sys.stderr, flush=True)
        r["retention_cycles_per_s"] = n / (time.monotonic() - t0)
    finally:
        s.stop()
    r["retention_jobs"] = n
    r["retention_db_kib"] = [round(x[1] / 1024) for x in sizes]
    r["retention_wal_kib"] = [round(x[2] / 1024) for x in sizes]
    # Growth after the first step (warm-up: tables and WAL reach their working size).
    r["retention_growth_kib"] = (sizes[-1][1] - sizes[0][1]) / 1024 if len(sizes) > 1 else 0.0


BENCHES = {"kernel": bench_kernel, "e2e": bench_e2e, "tiny": bench_tiny, "huge": bench_huge,
           "latency": bench_latency, "growth": bench_growth, "dispatch": bench_dispatch,
           "idle": bench_idle, "seed": bench_seed, "verify": bench_verify,
           "primes": bench_primes, "queue": bench_queue, "retention": bench_retention,
           "fleet": bench_fleet, "resident": bench_resident, "compose": bench_compose}


def fmt(r, key, f="{:.3g}", unit=""):
    return (f.format(r[key]) + unit) if key in r else "not measured"


def machine():
    """The CPU's name, the core count and the widest SIMD, for a table's heading."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    flags = open("/proc/cpuinfo").read()
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{cpu}, {NPROC} cores ({simd})"


def write(r):
    R = "python3 bench/run.py --only"
    lin = ""
    if all(f"growth_1e{e}_s" in r for e in (8, 9, 10, 11)):
        rates = [10**e / r[f"growth_1e{e}_s"] for e in (8, 9, 10, 11)]
        lin = (f"rates {', '.join(f'{x:.3g}' for x in rates)} samples/s for 1e8..1e11: "
               + ("linear from 1e9 on (1e8 is dominated by the first lease's ramp-up)"
                  if max(rates[1:]) / min(rates[1:]) < 1.15 else "NOT linear"))
    rows = [
        ("1. kernel, AVX-512 path, 1 core", ">= 2.0e9 samples/s", fmt(r, "kernel_avx512", unit=" samples/s"), f"{R} kernel"),
        ("1. kernel, AVX2 path, 1 core", "(portable fallback)", fmt(r, "kernel_avx2", unit=" samples/s"), f"{R} kernel"),
        ("1. kernel, scalar path, 1 core", "(portable fallback)", fmt(r, "kernel_scalar", unit=" samples/s"), f"{R} kernel"),
        ("2. 1e10 pi, POST to succeeded / bare kernel on all cores", "<= 1.10", f"{fmt(r, 'e2e_ratio', '{:.3f}')} ({fmt(r, 'e2e_service_s', '{:.2f}', ' s')} / {fmt(r, 'e2e_bare_s', '{:.2f}', ' s')}); counts identical over runs: {r.get('e2e_identical', '?')}", f"{R} e2e"),
        ("3. 1e9 pi, batch_size 1000 / batch_size 1e5", "<= 1.3", f"{fmt(r, 'tiny_ratio', '{:.3f}')} ({fmt(r, 'tiny_s', '{:.3f}', ' s')} / {fmt(r, 'tiny_big_s', '{:.3f}', ' s')})", f"{R} tiny"),
        ("4. 1e15-sample job: POST", "< 50 ms", fmt(r, "huge_post_ms", "{:.2f}", " ms"), f"{R} huge"),
        ("4. 1e15-sample job: database growth", "< 64 KiB", fmt(r, "huge_db_growth_kib", "{:.1f}", " KiB per job"), f"{R} huge"),
        ("4. 1e15-sample job: GET (vs a 1000-sample job)", "O(1)", f"{fmt(r, 'huge_get_ms', '{:.2f}', ' ms')} (vs {fmt(r, 'small_get_ms', '{:.2f}', ' ms')})", f"{R} huge"),
        ("4. 1e15-sample job: cancel while leased", "at once", f"{fmt(r, 'huge_cancel_ms', '{:.2f}', ' ms')}, state {r.get('huge_cancel_state', '?')}", f"{R} huge"),
        ("5. dispatch: lease+complete cycles/s, 256 simulated workers", ">= 20,000/s", fmt(r, "dispatch_rate", "{:.0f}", "/s") + (f" (median of {', '.join(f'{x:.0f}' for x in r['dispatch_rates'])})" if r.get("dispatch_rates") else ""), f"{R} dispatch"),
        ("5. dispatch: cycle latency p50 / p99 at 256 workers", "p99 < 20 ms", f"{fmt(r, 'dispatch_p50_ms', '{:.2f}')} / {fmt(r, 'dispatch_p99_ms', '{:.2f}', ' ms')}", f"{R} dispatch"),
        ("5. dispatch: acknowledged completes after kill -9", "all durable", f"{r.get('dispatch_acked', '?')} acknowledged over the runs, all counted: {r.get('dispatch_durable', '?')}", f"{R} dispatch"),
        ("6. 2,000 idle long-polling workers: coordinator RSS", "< 64 MiB", fmt(r, "idle_rss_kib", "{:.0f}", " KiB"), f"{R} idle"),
        ("6. 2,000 idle workers: coordinator CPU", "near idle", f"{fmt(r, 'idle_cpu_pct', '{:.1f}', ' %')} of a core; {r.get('idle_connected', '?')} parked; /healthz max {fmt(r, 'idle_healthz_max_ms', '{:.1f}', ' ms')}", f"{R} idle"),
        ("7. one-batch job, worker waiting: submit to result p50 / p99", "< 2 ms / < 10 ms", f"{fmt(r, 'latency_p50_ms', '{:.2f}')} / {fmt(r, 'latency_p99_ms', '{:.2f}', ' ms')}", f"{R} latency"),
        ("8. growth: 1e8 / 1e9 / 1e10 / 1e11 samples", "linear", f"{fmt(r, 'growth_1e8_s', '{:.3f}')} / {fmt(r, 'growth_1e9_s', '{:.3f}')} / {fmt(r, 'growth_1e10_s', '{:.2f}')} / {fmt(r, 'growth_1e11_s', '{:.2f}', ' s')}; {lin}", f"{R} growth"),
        ("8. worker peak RSS", "< 16 MiB", fmt(r, "worker_hwm_kib", "{:.0f}", " KiB"), f"{R} growth"),
        ("8. coordinator RSS, 10 jobs running", "< 32 MiB", fmt(r, "server_rss_10_jobs_kib", "{:.0f}", " KiB"), f"{R} growth"),
        ("primes: pi(10^11) through the service / the primesieve command, every core", "<= 1.10", f"{fmt(r, 'primes_ratio', '{:.3f}')} ({fmt(r, 'primes_service_s', '{:.2f}', ' s')} / {fmt(r, 'primes_cmd_s', '{:.2f}', ' s')}); both 4118054813: {r.get('primes_exact', '?')}", f"{R} primes"),
        ("verify: 1e10 pi on 2 one-thread workers, verify 0 / 0.1 / 1", "about 1x / 1.1x / 2x", f"{fmt(r, 'verify_0_s', '{:.2f}')} / {fmt(r, 'verify_01_s', '{:.2f}')} / {fmt(r, 'verify_1_s', '{:.2f}', ' s')}; checks passed in the last run: {r.get('verify_checks_01', '?')} / {r.get('verify_checks_1', '?')}; counts identical: {r.get('verify_identical', '?')}", f"{R} verify"),
        ("queue: lease p50 / p99 with 1k / 10k / 100k one-batch jobs queued", "O(log n): flat", " ; ".join(f"{fmt(r, f'queue_{n}_lease_p50_ms', '{:.2f}')} / {fmt(r, f'queue_{n}_lease_p99_ms', '{:.2f}', ' ms')}" for n in (1000, 10000, 100000)), f"{R} queue"),
        ("queue: coordinator memory per unfinished job at 1k / 10k / 100k", "<= 2 KiB", " / ".join(fmt(r, f"queue_{n}_kib_per_job", "{:.1f}", " KiB") for n in (1000, 10000, 100000)), f"{R} queue"),
        ("retention: database file over 100k jobs submitted, finished, deleted (every 10k)", "stops growing", (f"{', '.join(str(k) for k in r['retention_db_kib'])} KiB (WAL {max(r.get('retention_wal_kib') or [0])} KiB at most); {r['retention_growth_kib']:+.0f} KiB after the first 10k; {fmt(r, 'retention_cycles_per_s', '{:.0f}', ' cycles/s')}" if r.get("retention_db_kib") and r.get("retention_jobs") == 100_000 else "not measured"), f"{R} retention"),
        ("fleet: leases/s, 1k ; 10k simulated workers (1e6..1e9 samples/s, count job, lease target 1 s; 1 run)", "10k workers / 1 s", " ; ".join(f"{fmt(r, f'fleet_{n}_leases_per_s', '{:.0f}', '/s')} ({r.get(f'fleet_{n}_leases', '?')} leases in {fmt(r, f'fleet_{n}_seconds', '{:.1f}', ' s')}; errors {r.get(f'fleet_{n}_errors', '?')})" for n in (1000, 10000)), f"{R} fleet"),
        ("fleet: lease duration / target from each worker's 3rd lease, p50 / p99, 1k ; 10k (from the 2nd)", "0.5-2x / < 5x", " ; ".join(f"{fmt(r, f'fleet_{n}_from3_p50_x', '{:.2f}')} / {fmt(r, f'fleet_{n}_from3_p99_x', '{:.2f}')} ({fmt(r, f'fleet_{n}_from2_p50_x', '{:.2f}')} / {fmt(r, f'fleet_{n}_from2_p99_x', '{:.2f}')})" for n in (1000, 10000)), f"{R} fleet"),
        ("fleet: coordinator CPU (share of a core) and peak RSS, 1k ; 10k", "RSS < 256 MiB", " ; ".join(f"{fmt(r, f'fleet_{n}_cpu_s', '{:.1f}', ' s')} ({fmt(r, f'fleet_{n}_cpu_pct', '{:.0f}', ' %')}), {fmt(r, f'fleet_{n}_rss_kib', '{:.0f}', ' KiB')}" for n in (1000, 10000)) + f"; {fmt(r, 'fleet_kib_per_worker', '{:.1f}', ' KiB')} per worker", f"{R} fleet"),
        ("fleet: the job's counts exact (counts.samples = samples), 1k ; 10k", "exact", " ; ".join(str(r.get(f"fleet_{n}_exact", "not measured")) for n in (1000, 10000)), f"{R} fleet"),
        ("resident (issue 16): the seed's sample(), 1e7 samples in batches of 1e5, 2 cores: tally resident / Pool(2)", "<= 1.10", f"{fmt(r, 'resident_ratio', '{:.3f}')} ({fmt(r, 'resident_tally_1e7_s', '{:.3f}', ' s')} / {fmt(r, 'resident_pool2_1e7_s', '{:.3f}', ' s')}); run per batch (not resident): {fmt(r, 'resident_per_batch_1e7_s', '{:.2f}', ' s')}; counts identical over runs: {r.get('resident_identical', '?')}", f"{R} resident"),
        ("resident: a C program doing nothing, the worker's cost per batch, 1 thread ; 2 threads (per thread)", "<= 20 us", f"{fmt(r, 'resident_noop_us_1t', '{:.1f}', ' us')} ; {fmt(r, f'resident_noop_us_{NPROC}t', '{:.1f}', ' us')}", f"{R} resident"),
        ("compose: 1e8 samples of examples/pi_resident.py on 3 compose workers / Pool(2) here (1 run each)", "<= 0.4", f"{fmt(r, 'compose_ratio', '{:.3f}')} ({fmt(r, 'compose_tally_1e8_s', '{:.2f}', ' s')} / {fmt(r, 'compose_pool2_1e8_s', '{:.2f}', ' s')})", f"{R} compose"),
        ("seed: Python serial, 1e8 samples (1 run)", "94.6 s in the post", fmt(r, "seed_serial_s", "{:.1f}", " s"), f"{R} seed"),
        ("seed: Python multiprocessing.Pool, 1e8 samples", "12.5 s on 16 vCPUs in the post", fmt(r, "seed_pool_s", "{:.1f}", " s"), f"{R} seed"),
        ("tally, same job (1e8 samples, batches of 1e5)", "", fmt(r, "tally_1e8_s", "{:.3f}", " s"), f"{R} seed"),
    ]
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {machine()}, {r.get('_date', '?')}. Written by "
        "`python3 bench/run.py` (after `scripts/build.sh`); each row says how to rerun it alone.",
        "Figures are medians of several runs (5 for times, 3 for kernel rates) except where a row",
        "says otherwise; a ratio's two sides are measured in the same run, interleaved. The bare",
        "kernel is `build/bin/tally-bench-kernel`: the worker's compute pool over the whole job, no",
        "HTTP, no database. Service times run from the POST to the reply that shows `succeeded`",
        "(waited for with `GET /v1/jobs/<id>?wait_s=60`), with a coordinator and one worker",
        "(all cores) on this machine. To compare this build with another, interleaved: `python3",
        "bench/run.py --against DIR` (see its `--help`); that writes nothing here.",
        "",
        "| what (issue 3 target) | target | measured | command |",
        "|---|---|---|---|",
    ] + [f"| {a} | {b} | {c} | `{d}` |" for a, b, c, d in rows]
    notes = [
        "- **How dispatch reaches its figure.** The coordinator keeps unfinished jobs, free "
        "ranges and live leases in memory (`server/leasetab.c`: a hash table and an expiry heap) "
        "and writes what changed behind, once per pass of its event loop, in one SQLite "
        "transaction. A grant costs no SQL at all; a pass costs one upsert per changed lease "
        "and job. Only replies that report a submit, cancel, complete or fail (or uncommitted state) "
        "wait for that commit, which the kill -9 row checks. Grants are answered at once: if "
        "the coordinator dies first, the grant is forgotten and its batches are granted again "
        "under a new id (docs/protocol.md, Durability)."]
    if r.get("dispatch_rate", 1e9) < 20000 or r.get("dispatch_p99_ms", 0) >= 20:
        notes.append(
            "- **Dispatch is below its target in this run.** What remains is per request, on "
            "the one event-loop thread: libmicrohttpd, JSON and loopback TCP, with the load "
            "generator on the same two cores; the run is sensitive to anything else running "
            "on the machine. Real workers are far from this limit: they take leases of about a "
            "second of work each (item 2).")
    if "verify_1_s" in r:
        notes.append(
            "- **What verify costs.** A check computes a completed lease's batches again, on "
            "another worker, and only once that lease is done: `verify: 1` doubles the compute "
            "and adds a tail of about one lease (leases are sized to about a second of a "
            "worker's work), which is why it costs more than 2x on a job this short. `verify: "
            "0.1` checks one lease in ten on average (a job of about ten leases, as here, may "
            "get none). With `verify` 0, the default, nothing changes.")
    if "resident_ratio" in r:
        notes.append(
            "- **Where a resident batch's time goes.** The worker writes the batch line to the "
            "program's stdin and reads its answer from a pipe, spinning 50 us before it sleeps "
            "in poll(), then checks the counts as plain exec does. The noop row is wall time "
            "per batch times threads with a program that answers at once, so it holds the "
            "program's own read and write and the job's leases too; with 2 threads the worker, "
            "the coordinator and two programs share the 2 cores. Run per batch, the same job "
            "starts a Python per batch: about "
            f"{(r.get('resident_per_batch_1e7_s', 0) - r['resident_tally_1e7_s']) * NPROC * 10:.0f}"
            f" ms of CPU each in this run ((per batch - resident) x {NPROC} cores / 100 "
            "batches).")
    if "compose_ratio" in r:
        notes.append(
            "- **The compose row on one machine.** Its three workers are containers on the "
            "same 2 cores as Pool(2), so the best it can do here is parity with Pool(2), "
            "which it reaches; the target of 0.4x presumes three machines' cores (6 here "
            "would give 1/3 of Pool(2)'s time at most). What the row shows is that "
            "containers, the network between them and the coordinator cost nothing visible.")
    if notes:
        lines += ["", "## Notes", ""] + notes
    lines += ["", "Raw figures: `docs/benchmarks.json`."]
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")


# ---- A/B: this build against another (--against) ----

AB_BENCHES = ("dispatch", "e2e", "latency")
# What an A/B run reports, per benchmark: (key, label, format). Numbers are medians over rounds;
# a flag (True/False) is "yes" when true in every round; keys not listed are left out.
AB_FIGURES = {
    "dispatch": [
        ("dispatch_rate", "dispatch: lease+complete cycles/s, 256 workers (higher is better)",
         "{:.0f}"),
        ("dispatch_p50_ms", "dispatch: cycle latency p50, ms", "{:.2f}"),
        ("dispatch_p99_ms", "dispatch: cycle latency p99, ms", "{:.2f}"),
        ("dispatch_errors", "dispatch: loadgen errors", "{:.0f}"),
        ("dispatch_durable", "dispatch: acknowledged completes all counted after kill -9", None),
    ],
    "e2e": [
        ("e2e_service_s", "e2e: pi, POST to succeeded, s", "{:.3f}"),
        ("e2e_bare_s", "e2e: bare kernel (the build's tally-bench-kernel), s", "{:.3f}"),
        ("e2e_ratio", "e2e: service / bare kernel", "{:.3f}"),
        ("e2e_same_counts", "e2e: counts (seed 42) the same in every run of both builds", None),
    ],
    "latency": [
        ("latency_p50_ms", "latency: one-batch job, submit to result p50, ms", "{:.2f}"),
        ("latency_p99_ms", "latency: one-batch job, submit to result p99, ms", "{:.2f}"),
    ],
}
# --quick: a smoke test of the A/B machinery, figures not comparable with docs/benchmarks.md.
AB_QUICK = {"dispatch": {"seconds": 2}, "e2e": {"samples": 10**9}, "latency": {"n": 50}}
AB_NEEDS = ("tally-server", "tally-worker", "tally-bench-kernel")


@contextlib.contextmanager
def using(bin_dir):
    """Runs the benchmarks inside the with-block on the build in bin_dir: its server, worker
    and bare kernel (run.py's BIN and the harness's)."""
    global BIN
    saved = BIN, harness.BIN
    BIN = harness.BIN = bin_dir
    try:
        yield
    finally:
        BIN, harness.BIN = saved


def source_of(bin_dir):
    """The commit of the source tree a bin directory sits in (git describe), or '?'."""
    try:
        return sh("git", "-C", bin_dir, "describe", "--always", "--dirty").strip()
    except (subprocess.CalledProcessError, OSError):
        return "?"


def ab_kwargs(name, runs, quick):
    kw = dict(AB_QUICK[name]) if quick else {}
    if name in ("dispatch", "e2e"):
        kw["runs"] = runs
    return kw


def ab_run(names, other, rounds, runs, quick):
    """Runs names for this build (A) and other (B), interleaved. Returns ({side: {key: [one
    value per round that succeeded]}}, [failures as strings])."""
    sides = {"A": os.path.realpath(BIN), "B": os.path.realpath(other)}
    got = {"A": {}, "B": {}}
    failed, counts = [], set()
    for i in range(rounds):
        order = "AB" if i % 2 == 0 else "BA"
        for name in names:
            for side in order:
                print(f"bench: round {i + 1}/{rounds}: {name}, build {side}", file=sys.stderr,
                      flush=True)
                r = {}
                try:
                    with using(sides[side]):
                        BENCHES[name](r, **ab_kwargs(name, runs, quick))
                except Exception as e:  # keep the other rounds
                    print(f"bench: {name} ({side}) failed: {e!r}", file=sys.stderr)
                    failed.append(f"{name} ({side}, round {i + 1})")
                    continue
                for key, _, _ in AB_FIGURES[name]:
                    if key in r:
                        got[side].setdefault(key, []).append(r[key])
                counts.update(r.get("e2e_counts", ()))
    if counts:  # one flag for both sides: did A and B, every run, count alike?
        got["A"]["e2e_same_counts"] = got["B"]["e2e_same_counts"] = [len(counts) == 1]
    return got, failed


def ab_table(names, got, other, rounds, runs, quick):
    """The A/B result as Markdown lines."""
    def cell(xs, f):
        if not xs:
            return "not measured"
        if f is None:
            return "yes" if all(xs) else f"NO (yes in {sum(map(bool, xs))} of {len(xs)})"
        return f.format(med(xs))

    def spread(xs, f):
        return f"{f.format(min(xs))}..{f.format(max(xs))}" if xs and f else ""

    only = " ".join(names)
    lines = [
        "# Benchmarks: this build (A) against another (B)",
        "",
        f"Machine: {machine()}, {datetime.date.today().isoformat()}. Written by `python3 "
        f"bench/run.py --only {only} --against {other} --rounds {rounds} --runs {runs}"
        f"{' --quick' if quick else ''}`.",
        f"A: `{os.path.realpath(BIN)}` (source {source_of(BIN)}); B: `{os.path.realpath(other)}` "
        f"(source {source_of(other)}); tally-loadgen is A's for both.",
        f"{rounds} rounds, each running every benchmark once per build, the order flipping "
        "(A B, B A, ...); each figure is the median over rounds, its range in the last column.",
    ]
    if quick:
        lines.append("**--quick: shortened benchmarks, a smoke test; these figures are not "
                     "comparable with docs/benchmarks.md.**")
    lines += ["", "| figure | A (this build) | B (other) | A / B | range A; B |",
              "|---|---|---|---|---|"]
    for name in names:
        for key, label, f in AB_FIGURES[name]:
            a, b = got["A"].get(key, []), got["B"].get(key, [])
            ratio = ""
            if f and a and b and med(b):
                ratio = f"{med(a) / med(b):.3f}"
            rng = f"{spread(a, f)}; {spread(b, f)}" if f else ""
            lines.append(f"| {label} | {cell(a, f)} | {cell(b, f)} | {ratio} | {rng} |")
    return lines


def ab_main(ap, args):
    other = args.against
    missing = [n for n in AB_NEEDS if not os.access(os.path.join(other, n), os.X_OK)]
    if missing:
        ap.error(f"--against {other}: no {', '.join(missing)} there (a bin directory)")
    names = args.only or list(AB_BENCHES)
    wrong = [n for n in names if n not in AB_BENCHES]
    if wrong:
        ap.error(f"--against runs only {', '.join(AB_BENCHES)}, not {', '.join(wrong)}")
    got, failed = ab_run(names, other, args.rounds, args.runs, args.quick)
    lines = ab_table(names, got, other, args.rounds, args.runs, args.quick)
    if failed:
        lines += ["", f"Failed: {', '.join(failed)}."]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.ab_out:
        with open(args.ab_out, "w") as f:
            f.write(text)
        print(f"wrote {args.ab_out}", file=sys.stderr)
    if failed:
        sys.exit(f"bench: failed: {', '.join(failed)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=sorted(BENCHES), help="run only these")
    ab = ap.add_argument_group("A/B against another build (docs/benchmarks.md is left alone)")
    ab.add_argument("--against", metavar="DIR",
                    help="the bin directory of another build (tally-server, tally-worker,\n"
                         "tally-bench-kernel); runs dispatch, e2e and latency (or those --only\n"
                         "names) for both builds, interleaved, and prints both and A / B")
    ab.add_argument("--rounds", type=int, metavar="N",
                    help="rounds, each running every benchmark once per build (default 5)")
    ab.add_argument("--runs", type=int, metavar="N",
                    help="repetitions inside each dispatch and e2e call (default 1: the\n"
                         "rounds repeat, so that the builds alternate as often as possible)")
    ab.add_argument("--quick", action="store_true",
                    help="a smoke test: dispatch 2 s runs, e2e 1e9 samples, latency 50 jobs\n"
                         "(figures not comparable with docs/benchmarks.md)")
    ab.add_argument("--ab-out", metavar="FILE",
                    help="also write the A/B table to FILE (e.g. docs/benchmarks-ab.md)")
    args = ap.parse_args()
    if args.against:
        args.rounds = 5 if args.rounds is None else args.rounds
        args.runs = 1 if args.runs is None else args.runs
        if args.rounds < 1 or args.runs < 1:
            ap.error("--rounds and --runs must be at least 1")
        return ab_main(ap, args)
    if args.quick or args.ab_out or args.rounds is not None or args.runs is not None:
        ap.error("--rounds, --runs, --quick and --ab-out are for an A/B run (--against DIR)")
    r = {}
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            r = json.load(f)
    failed = []
    for name in args.only or BENCHES:
        print(f"bench: {name}", file=sys.stderr, flush=True)
        try:
            BENCHES[name](r)
        except Exception as e:  # keep what the others measured
            print(f"bench: {name} failed: {e!r}", file=sys.stderr)
            failed.append(name)
        r["_date"] = datetime.date.today().isoformat()
        with open(RESULTS, "w") as f:
            json.dump(r, f, indent=1, sort_keys=True)
        write(r)
    if failed:
        sys.exit(f"bench: failed: {' '.join(failed)}")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
