"""The client of the coordinator's jobs API (docs/protocol.md), over http.client: Client, Job, run.

Every call retries an unreachable coordinator (refused, reset or timed-out connections; 502, 503
and 504; 429 with its Retry-After) with capped exponential backoff and jitter, until its timeout:
Job.wait's own, else the Client's (30 s by default). Submits carry an Idempotency-Key, kept over
the retries, so that a retry after a lost reply never makes a second job.
"""
import http.client
import json
import math
import os
import random
import ssl
import sys
import time
import urllib.parse
import uuid

from . import progress as _progress
from .errors import ApiError, JobFailed, TlsError, Unreachable, WaitTimeout

DEFAULT_SERVER = "http://127.0.0.1:8080"  # the worker's and the CLI's default
DEFAULT_TIMEOUT = 30.0  # seconds a call other than wait keeps retrying an unreachable coordinator
BACKOFF_FIRST = 0.1  # seconds before the first retry; doubled on each, up to BACKOFF_CAP
BACKOFF_CAP = 2.0
LONG_POLL_MAX = 60  # the server's largest wait_s
RETRY_STATUS = (429, 502, 503, 504)
FINAL = ("succeeded", "failed", "cancelled")
_UA = "tally-python/0.1.0"


def _count(name, value):
    """value as a positive int: an int, or an integral float such as 1e7; ValueError else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: an integer, not {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{name}: {value!r} is not an integer")
        value = int(value)
    if value < 1:
        raise ValueError(f"{name}: {value} is not positive")
    return value


def _load_token(token):
    """The token given, else TALLY_TOKEN_FILE's first line, else TALLY_TOKEN (as the CLI)."""
    if token is None:
        path = os.environ.get("TALLY_TOKEN_FILE")
        if path:
            with open(path) as f:
                token = f.readline()
        else:
            token = os.environ.get("TALLY_TOKEN")
    token = (token or "").strip()
    return token or None


def _retry_after(headers):
    try:
        return max(0.0, float(headers.get("retry-after", "")))
    except ValueError:
        return None


class Client:
    """A coordinator's jobs API. server: its URL (default TALLY_SERVER, else
    http://127.0.0.1:8080); token: a client token (default TALLY_TOKEN_FILE's, else
    TALLY_TOKEN); cacert: a PEM CA file to trust for https (default TALLY_CACERT, else the
    system's CAs); timeout: seconds a call keeps retrying an unreachable coordinator."""

    def __init__(self, server=None, token=None, cacert=None, timeout=DEFAULT_TIMEOUT):
        server = server or os.environ.get("TALLY_SERVER") or DEFAULT_SERVER
        if "://" not in server:
            server = "http://" + server
        url = urllib.parse.urlsplit(server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"server: {server!r} is not an http:// or https:// URL")
        self.server = server.rstrip("/")
        self.timeout = timeout
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._https else 80)
        self._prefix = url.path.rstrip("/")
        self._token = _load_token(token)
        cacert = cacert or os.environ.get("TALLY_CACERT") or None
        self._ssl = ssl.create_default_context(cafile=cacert) if self._https else None

    def __repr__(self):
        return f"tally.Client({self.server!r})"

    # -- HTTP ----------------------------------------------------------------------------------

    def _once(self, method, path, body, headers, sock_timeout):
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, context=self._ssl,
                                               timeout=sock_timeout)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=sock_timeout)
        hdrs = {"User-Agent": _UA, "Accept": "application/json"}
        if self._token:
            hdrs["Authorization"] = "Bearer " + self._token
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        try:
            conn.request(method, self._prefix + path, body=data, headers=hdrs)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def request(self, method, path, body=None, headers=None, timeout=None, poll=0):
        """One API call: the reply's JSON (None for an empty body). Retries an unreachable
        coordinator until timeout seconds (default: the client's; math.inf: forever) have
        passed, then raises Unreachable (no answer) or the last ApiError (503, 429...). Any
        other error status raises ApiError at once. poll: the seconds the server may hold the
        reply (a long poll), added to the socket's timeout."""
        timeout = self.timeout if timeout is None else timeout
        start = time.monotonic()
        deadline = start + timeout
        attempt = 0
        while True:
            left = deadline - time.monotonic()
            sock_timeout = poll + min(DEFAULT_TIMEOUT, max(left, 1.0))
            try:
                status, hdrs, raw = self._once(method, path, body, headers, sock_timeout)
            except ssl.SSLCertVerificationError as e:
                raise TlsError(f"{self.server}: certificate verify failed: {e.verify_message} "
                               f"(trust its CA with cacert= or TALLY_CACERT)") from e
            except ssl.SSLError as e:
                if not isinstance(e, (ssl.SSLEOFError, ssl.SSLZeroReturnError,
                                      ssl.SSLSyscallError)):
                    raise TlsError(f"{self.server}: {e}") from e
                last, wait = e, None
            except (OSError, http.client.HTTPException) as e:
                last, wait = e, None
            else:
                try:
                    reply = json.loads(raw) if raw else None
                except ValueError:
                    reply = None
                if status < 400:
                    return reply
                err = reply.get("error") if isinstance(reply, dict) else None
                err = err if isinstance(err, dict) else {}
                last = ApiError(status, err.get("code", "http_%d" % status),
                                err.get("message", raw[:200].decode(errors="replace")))
                if status not in RETRY_STATUS or (status == 429 and "retry-after" not in hdrs):
                    raise last
                wait = _retry_after(hdrs)
            now = time.monotonic()
            if now >= deadline or (wait and now + wait > deadline):
                if isinstance(last, ApiError):
                    raise last  # the last answer; a Retry-After past the deadline at once
                raise Unreachable(self.server, last, now - start) from last
            delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** attempt) * random.uniform(0.5, 1.0)
            delay = max(min(delay, deadline - now), wait or 0.0)  # the last try at the deadline
            time.sleep(delay)
            attempt += 1

    # -- jobs ----------------------------------------------------------------------------------

    def submit(self, kernel, samples, batch_size=None, seed=None, params=None, priority=None,
               target_stderr=None, verify=None, *, idempotency_key=None):
        """POST /v1/jobs: a Job. Only the fields given are sent. samples and batch_size may be
        integral floats (1e7). idempotency_key: your own, to make a rerun of your program
        find its job (default: a fresh one per call, kept over its retries)."""
        body = {"kernel": kernel, "samples": _count("samples", samples)}
        if batch_size is not None:
            body["batch_size"] = _count("batch_size", batch_size)
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise TypeError(f"seed: an integer, not {type(seed).__name__}")
            body["seed"] = seed if seed <= 2 ** 63 - 1 else str(seed)
        for key, value in (("params", params), ("priority", priority),
                           ("target_stderr", target_stderr), ("verify", verify)):
            if value is not None:
                body[key] = value
        key = idempotency_key or uuid.uuid4().hex
        job = self.request("POST", "/v1/jobs", body, {"Idempotency-Key": key})
        return Job(self, job["id"])

    def job(self, job_id):
        """The Job of an id (no request is made)."""
        return Job(self, str(job_id))

    def jobs(self, state=None, owner=None, page_size=None):
        """Iterates over the jobs the caller may see, newest first (GET /v1/jobs), a page of
        page_size (1..1000; the server's default 50) at a time, following next_cursor."""
        query = {"state": state, "owner": owner, "limit": page_size}
        query = {k: str(v) for k, v in query.items() if v is not None}
        while True:
            qs = "&".join(f"{k}={urllib.parse.quote(v, safe=':@')}" for k, v in query.items())
            page = self.request("GET", "/v1/jobs" + ("?" + qs if qs else ""))
            yield from page["jobs"]
            if not page.get("next_cursor") or not page["jobs"]:
                return
            query["cursor"] = str(page["next_cursor"])


class Job:
    """A job of a coordinator: .id, and the calls on it."""

    def __init__(self, client, job_id):
        self.client = client
        self.id = job_id

    def __repr__(self):
        return f"tally.Job({self.id!r}, {self.client.server!r})"

    def _path(self, suffix=""):
        return f"/v1/jobs/{urllib.parse.quote(self.id, safe='')}{suffix}"

    def get(self):
        """The job's JSON (GET /v1/jobs/<id>), a dict."""
        return self.client.request("GET", self._path())

    def cancel(self):
        """Cancels the job (also when it was cancelled already); the job's JSON. ApiError 409
        once it succeeded or failed."""
        return self.client.request("POST", self._path("/cancel"), {})

    def extend(self, samples):
        """Grows the job to samples in all; the job's JSON. Extending to the samples it has
        already (a retry whose first reply was lost) returns the job as it is."""
        samples = _count("samples", samples)
        try:
            return self.client.request("POST", self._path("/extend"), {"samples": samples})
        except ApiError as e:
            if e.status == 400:
                job = self.get()
                if job.get("samples") == samples:
                    return job
            raise

    def history(self):
        """The job's progress points (GET /v1/jobs/<id>/history): a list of {"t", "samples",
        "result"} dicts, oldest first."""
        return self.client.request("GET", self._path("/history"))["points"]

    def wait(self, timeout=None, progress=False):
        """Waits for the job to finish, through the server's long poll, and returns its JSON.
        Raises JobFailed when it failed or was cancelled, WaitTimeout when timeout seconds
        (None: no limit) passed first; a coordinator that goes away meanwhile is retried for as
        long. progress: redraw a bar on stderr (once a second) meanwhile."""
        limit = math.inf if timeout is None else float(timeout)
        deadline = time.monotonic() + limit
        bar = _progress.Bar(sys.stderr) if progress else None
        job = None
        try:
            while True:
                left = deadline - time.monotonic()
                poll = 1 if bar else max(0, math.ceil(min(LONG_POLL_MAX, left)))
                if job is not None and left <= 0:
                    raise WaitTimeout(job, timeout)
                job = self.client.request("GET", self._path(f"?wait_s={poll}"),
                                          timeout=max(left, 0.0), poll=poll)
                if bar:
                    bar.draw(job)
                if job["state"] in FINAL:
                    break
        finally:
            if bar:
                bar.close()
        if job["state"] != "succeeded":
            raise JobFailed(job)
        return job


def run(kernel, samples, batch_size=None, seed=None, params=None, priority=None,
        target_stderr=None, verify=None, *, server=None, token=None, cacert=None, progress=None,
        timeout=None):
    """Submits a job and waits for it: its final JSON (JobFailed when it failed or was
    cancelled). progress: a bar on stderr; None (default) shows it when stderr is a terminal."""
    if progress is None:
        progress = sys.stderr.isatty()
    client = Client(server, token, cacert)
    job = client.submit(kernel, samples, batch_size, seed, params, priority, target_stderr,
                        verify)
    return job.wait(timeout=timeout, progress=progress)
