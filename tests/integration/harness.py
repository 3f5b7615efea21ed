"""Starts the real tally-server and tally-worker binaries on loopback for integration tests (or
elsewhere: Server's host and prefix, Worker's prefix, e.g. ["ip", "netns", "exec", NS]).

Servers bind port 0 and the port is read back from their first stdout line; readiness is waited
for, never slept for; every wait has a deadline. Binaries come from $TALLY_BIN (ctest sets it).
"""
import http.client
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("TALLY_BIN", os.path.join(os.path.dirname(__file__), "../../build/bin"))
# TALLY_VALGRIND=1 runs every server and worker under valgrind (memcheck, leaks); a test fails
# when any of them reports an error. Workers then use the scalar pi path (valgrind has no
# AVX-512).
VALGRIND = bool(os.environ.get("TALLY_VALGRIND"))


def wrap(cmd, logdir):
    """cmd, under valgrind when TALLY_VALGRIND is set."""
    if not VALGRIND:
        return cmd
    log = os.path.join(logdir, "valgrind-%p.log")
    return ["valgrind", "--quiet", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite", f"--log-file={log}"] + cmd


def valgrind_reports(logdir):
    """The non-empty valgrind logs in logdir (with --quiet, a clean run writes nothing)."""
    out = []
    for name in sorted(os.listdir(logdir)):
        if name.startswith("valgrind-"):
            with open(os.path.join(logdir, name), errors="replace") as f:
                text = f.read().strip()
            if text:
                out.append(f"{name}:\n{text[:3000]}")
    return out


def binary(name):
    path = os.path.join(BIN, name)
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} not found: build first or set TALLY_BIN")
    return path


def wait_for(what, pred, timeout):
    """Polls pred until it is true; AssertionError naming what after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.05)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.raw = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def error(self):
        """The (code, message) of an error body, or (None, None)."""
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("code"), self.json["error"].get("message")
        return None, None

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r}>"


def request(port, method, path, body=None, headers=None, raw=None, timeout=30, host="127.0.0.1",
            sock=None):
    """One HTTP request on a fresh connection. body is JSON-encoded; raw is sent as is. sock: a
    socket already connected to host:port (one made in another network namespace)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.sock = sock
    hdrs = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


class Server:
    """A tally-server process with its own database under tmpdir."""

    def __init__(self, tmpdir, *args, port=0, db=None, preexec_fn=None, host="127.0.0.1",
                 prefix=()):
        self.tmpdir = tmpdir
        self.preexec_fn = preexec_fn  # run in the child before exec (limits, signals)
        self.host = host  # the address it listens on
        self.prefix = list(prefix)  # what runs it, e.g. ["ip", "netns", "exec", NS]
        self.db = db or os.path.join(tmpdir, "tally.db")
        self.args = list(args)
        self.port = port
        self.proc = None
        self.start()

    def start(self, timeout=10):
        log = open(os.path.join(self.tmpdir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            self.prefix + wrap([binary("tally-server"), "--listen", f"{self.host}:{self.port}",
                                "--db", self.db] + self.args, self.tmpdir),
            stdout=subprocess.PIPE, stderr=log, bufsize=0,
            preexec_fn=self.preexec_fn)
        log.close()
        deadline = time.monotonic() + timeout
        line = b""
        try:
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"server did not start: {self.log()[-2000:]}")
                ready, _, _ = select.select([self.proc.stdout], [], [], left)
                if ready:
                    ch = self.proc.stdout.read(1)
                    if not ch:
                        raise RuntimeError(f"server exited: {self.log()[-2000:]}")
                    line += ch
            self.port = int(line.decode().rsplit(":", 1)[1])
        except BaseException:
            self.proc.kill()  # never leave a half-started server behind
            self.proc.wait()
            self.proc.stdout.close()
            raise
        return self

    def log(self):
        with open(os.path.join(self.tmpdir, "server.log"), "rb") as f:
            return f.read().decode(errors="replace")

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def req(self, method, path, body=None, **kw):
        return request(self.port, method, path, body, host=self.host, **kw)

    def submit(self, **spec):
        r = self.req("POST", "/v1/jobs", spec)
        if r.status != 201:
            raise AssertionError(f"submit failed: {r}")
        return r.json

    def job(self, job_id):
        r = self.req("GET", f"/v1/jobs/{job_id}")
        if r.status != 200:
            raise AssertionError(f"get job failed: {r}")
        return r.json

    def wait_job(self, job_id, timeout=120, until=("succeeded", "failed", "cancelled")):
        deadline = time.monotonic() + timeout
        while True:
            j = self.job(job_id)
            if j["state"] in until:
                return j
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {j['state']} after {timeout}s: {j}")
            time.sleep(0.05)

    def wait_until(self, job_id, pred, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            j = self.job(job_id)
            if pred(j):
                return j
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id}: condition not met in {timeout}s: {j}")
            time.sleep(0.02)

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30) if self.proc else None
        self.proc.stdout.close()
        return rc

    def stop(self):
        if self.proc and self.proc.poll() is None:
            return self.kill(signal.SIGTERM)
        return self.proc.returncode if self.proc else None


class Worker:
    """A tally-worker process."""

    count = 0

    def __init__(self, server, threads=1, name=None, tmpdir=None, *args, exe="tally-worker",
                 prefix=()):
        Worker.count += 1
        self.name = name or f"w{Worker.count}"
        logdir = tmpdir or server.tmpdir
        self.logpath = os.path.join(logdir, f"worker-{self.name}.log")
        log = open(self.logpath, "ab")
        env = dict(os.environ, TALLY_PI_PATH="scalar") if VALGRIND else None
        self.proc = subprocess.Popen(
            list(prefix) + wrap([binary(exe), "--server", server.url, "--threads", str(threads),
                                 "--name", self.name, "--wait", "2"] + list(args), logdir),
            stdout=log, stderr=log, env=env)
        log.close()

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")


class TallyTestCase(unittest.TestCase):
    """Gives each test a temporary directory and stops every process it started."""

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="tally-it-")
        self.procs = []

    def token_file(self, name, token):
        """Writes token to a file of the test's, readable by its owner only; returns its path."""
        path = os.path.join(self.tmpdir, name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(token + "\n")
        return path

    def tearDown(self):
        for p in reversed(self.procs):
            try:
                if isinstance(p, Server):
                    p.stop()
                else:
                    p.kill()
            except Exception:
                pass
        reports = valgrind_reports(self.tmpdir) if VALGRIND else []
        if reports:
            print(f"\nvalgrind: {self.id()}\n" + "\n".join(reports))
        if self.failed() or reports:
            print(f"\nkept {self.tmpdir} (server and worker logs)")
        elif not os.environ.get("TALLY_KEEP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if reports:
            self.fail(f"valgrind reported {len(reports)} problem(s); see above")

    def failed(self):
        """Whether this test has failed so far (outcome.success is not set yet in tearDown on
        Python 3.11, so the result's lists are read)."""
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        if outcome is not None and not getattr(outcome, "success", True):
            return True
        return any(t is self for t, _ in getattr(result, "errors", []) +
                   getattr(result, "failures", []))

    def server(self, *args, **kw):
        s = Server(self.tmpdir, *args, **kw)
        self.procs.append(s)
        return s

    def worker(self, server, threads=1, name=None, *args, exe="tally-worker", prefix=()):
        w = Worker(server, threads, name, self.tmpdir, *args, exe=exe, prefix=prefix)
        self.procs.append(w)
        return w
