"""docker/compose.yaml on a real engine: the images built from docker/Dockerfile, a coordinator
and three workers brought up with compose, a pi job submitted from the host to the published
loopback port, one worker container killed holding a lease, and the job's counts checked against
the same job run by the locally built binaries. The coordinator is then recreated on its named
volume and must still have the job. Everything is torn down (compose down -v), also on failure.

The same file as a Swarm stack (docker stack deploy with docker/swarm.yaml, on a one-node swarm
made on the same engine): three workers, a pi job, the coordinator recreated mid-job (docker
service update --force: a new task at a new address); every worker must be heard from within
5 s of the new coordinator being healthy, and the job's counts equal the local run's.

scripts/docker-engine.sh starts an engine when none answers and makes the base image when no
registry has it (ctest label docker). Skipped when there is no docker client at all.
"""
import datetime
import http.client
import json
import math
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import time
import unittest

from harness import TallyTestCase, request, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
COMPOSE_FILE = os.path.join(ROOT, "docker", "compose.yaml")
SWARM_FILE = os.path.join(ROOT, "docker", "swarm.yaml")
PROJECT = "tallydockertest"  # one fixed name: a run killed before its cleanup is cleaned by the next
STACK = "tallyswarmtest"  # the same for the stack
RECONNECT_S = 5  # issue 15: workers find a recreated coordinator within this
SPEC = dict(kernel="pi", samples=20_000_000_000, batch_size=1_000_000, seed=2027)
LEASE_TIMEOUT = 5  # seconds: how long the killed worker's lease holds its batches


# The seed's sample() as a resident Python program, from the worker image's examples.
PY_SPEC = dict(kernel="exec", samples=1_000_000, batch_size=100_000, seed=16,
               params={"argv": ["/usr/local/share/tally/examples/pi_resident.py", "serve"],
                       "resident": True})


def seed_sample_counts(spec):
    """What examples/pi_resident.py counts for spec, computed here: the seed's loop over each
    batch's random.Random(f"{seed}/{batch}") (docs/algorithm.md)."""
    inside = 0
    for b in range(spec["samples"] // spec["batch_size"]):
        rng = random.Random(f"{spec['seed']}/{b}")
        for _ in range(spec["batch_size"]):
            if math.hypot(rng.uniform(-1, 1), rng.uniform(-1, 1)) <= 1:
                inside += 1
    return {"inside": inside, "samples": spec["samples"]}


def compose_command():
    """docker compose (v2) where the plugin is there, else docker-compose (v1); or None."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True,
                      timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


READY = {}  # what the module's tests share: the local run's counts, the engine and images


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(shutil.which("docker"), "no docker client")
class DockerComposeTest(TallyTestCase):
    def setUp(self):
        super().setUp()
        self.t0 = time.monotonic()
        # A SIGTERM (a CI run stopped) unwinds through the finally below and tears down.
        self.old_term = signal.signal(signal.SIGTERM, self.on_term)

    def tearDown(self):
        signal.signal(signal.SIGTERM, self.old_term)
        super().tearDown()

    @staticmethod
    def on_term(sig, frame):
        raise SystemExit(f"signal {sig}")

    def note(self, what):
        print(f"[{time.monotonic() - self.t0:6.1f}s] {what}", flush=True)

    def run_cmd(self, cmd, timeout, check=True, env=None):
        """Runs cmd with a deadline; its output goes to the log, and into the failure message."""
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                           cwd=ROOT)
        with open(os.path.join(self.tmpdir, "commands.log"), "a") as f:
            f.write(f"$ {' '.join(cmd)}\n{r.stdout}{r.stderr}(exit {r.returncode})\n")
        if check and r.returncode:
            raise AssertionError(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout[-3000:]}"
                                 f"\n{r.stderr[-3000:]}")
        return r

    def compose(self, *args, timeout=120, check=True):
        return self.run_cmd(self.compose_cmd + ["-f", COMPOSE_FILE, "-p", PROJECT] + list(args),
                            timeout, check, self.env)

    def api(self, method, path, body=None, timeout=30):
        return request(self.port, method, path, body, timeout=timeout,
                       headers={"Authorization": f"Bearer {self.token}"})

    def containers(self, service, running=True):
        """The ids of the service's containers in this project."""
        r = self.run_cmd(["docker", "ps", "-q", "--no-trunc"] + ([] if running else ["-a"]) +
                         ["--filter", f"label=com.docker.compose.project={PROJECT}",
                          "--filter", f"label=com.docker.compose.service={service}"], 30)
        return r.stdout.split()

    def inspect(self, container, fmt):
        return self.run_cmd(["docker", "inspect", "-f", fmt, container], 30).stdout.strip()

    def healthy(self, container):
        return self.inspect(container, "{{.State.Health.Status}}") == "healthy"

    def workers(self):
        r = self.api("GET", "/v1/workers")
        self.assertEqual(r.status, 200, r)
        return {w["name"]: w for w in r.json["workers"]}

    def polling(self, ids):
        """{worker name: container} of three worker containers, once all three poll. Each is
        named after its container's hostname: <hostname>-<pid 1>."""
        self.assertEqual(len(ids), 3)
        names = {self.inspect(c, "{{.Config.Hostname}}") + "-1": c for c in ids}
        self.assertEqual(len(names), 3)
        wait_for("three workers polling", lambda: set(self.workers()) == set(names), 60)
        return names

    def start_job(self):
        """Submits the job; returns its id once a tenth of it is done."""
        r = self.api("POST", "/v1/jobs", SPEC)
        self.assertEqual(r.status, 201, r)
        job = r.json["id"]
        wait_for("a tenth of the job done", lambda: self.api("GET", f"/v1/jobs/{job}")
                 .json["progress"] >= 0.1, 120)
        return job

    def finish_job(self, job):
        """The job once it has ended (or after 4 minutes)."""
        r = self.api("GET", f"/v1/jobs/{job}?wait_s=60", timeout=90)
        deadline = time.monotonic() + 240
        while r.json["state"] in ("queued", "running") and time.monotonic() < deadline:
            r = self.api("GET", f"/v1/jobs/{job}?wait_s=60", timeout=90)
        return r.json

    def local_counts(self):
        """The job's counts from the locally built binaries (build/bin, or $TALLY_BIN)."""
        if "counts" in READY:
            return READY["counts"]
        s = self.server(db=os.path.join(self.tmpdir, "local.db"))
        w = self.worker(s, threads=2)
        done = s.wait_job(s.submit(**SPEC)["id"], timeout=120)
        self.assertEqual(done["state"], "succeeded")
        w.kill(signal.SIGTERM)
        s.stop()
        READY["counts"] = done["counts"]
        return done["counts"]

    def prepare(self):
        """Skips without an engine; returns the local run's counts once the images are built."""
        if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode and \
                os.geteuid() != 0:
            self.skipTest("no docker engine answers, and starting one needs root")
        expect = self.local_counts()
        self.note(f"local run: {expect}")
        if "engine" not in READY:
            # The engine, the base image and tally's images (cached after the first run).
            r = self.run_cmd([os.path.join(ROOT, "scripts", "docker-engine.sh"), "--build"], 480)
            READY["engine"] = True
            self.note("engine and images ready:\n" + r.stdout.strip())
        self.token, self.port = secrets.token_hex(16), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        self.env.update(TALLY_TOKEN=self.token, TALLY_WORKER_TOKEN=secrets.token_hex(16),
                        TALLY_PORT=str(self.port), TALLY_LEASE_TIMEOUT=str(LEASE_TIMEOUT),
                        TALLY_ALLOW_EXEC="/usr/local/share/tally/examples")
        return expect

    def test_compose_cluster_survives_a_killed_worker(self):
        self.compose_cmd = compose_command()
        self.assertIsNotNone(self.compose_cmd, "neither docker compose nor docker-compose")
        expect = self.prepare()
        try:
            self.compose("down", "-v", "--timeout", "5")  # whatever a killed run left
            self.cluster(expect)
        finally:
            try:
                logs = self.compose("logs", "--no-color", "--timestamps", timeout=60,
                                    check=False)
                with open(os.path.join(self.tmpdir, "compose.log"), "w") as f:
                    f.write(logs.stdout + logs.stderr)
            finally:
                self.compose("down", "-v", "--timeout", "10")
                self.assertEqual(self.containers("worker", running=False), [])
                self.note("torn down")

    def cluster(self, expect):
        self.compose("up", "-d", "--no-build", "--scale", "worker=3", timeout=180)
        coordinator = self.containers("coordinator")
        self.assertEqual(len(coordinator), 1)
        self.assertEqual(self.inspect(coordinator[0], "{{.Config.User}}"), "tally")
        self.assertEqual(request(self.port, "GET", "/healthz").status, 200)
        # Without a token, the published API refuses.
        self.assertEqual(request(self.port, "GET", "/v1/jobs").status, 401)

        names = self.polling(self.containers("worker"))
        self.note(f"cluster up: workers {sorted(names)}")
        job = self.start_job()

        # Kill a worker that holds a lease. (No docker pause first to make sure of it: freezing
        # can fail here. It takes its next lease at once after each complete, so it is almost
        # always holding one; the note says which it was.)
        deadline = time.monotonic() + 30
        while not (active := [n for n, w in self.workers().items() if w["state"] == "active"]):
            self.assertLess(time.monotonic(), deadline, "no worker ever held a lease")
            time.sleep(0.05)
        victim = active[0]
        self.run_cmd(["docker", "kill", names[victim]], 30)
        wait_for("the killed container to stop",
                 lambda: self.inspect(names[victim], "{{.State.Running}}") == "false", 30)
        held = self.api("GET", f"/v1/jobs/{job}").json
        self.assertEqual(held["state"], "running", held)
        self.assertLess(held["batches"]["done"], held["batches"]["total"])
        lease = self.workers()[victim]["state"] == "active"
        self.note(f"killed {victim} at progress {held['progress']:.2f}, "
                  f"{'holding a lease' if lease else 'between two leases'}")

        done = self.finish_job(job)
        self.note(f"job done: {json.dumps(done['counts'])} in {done['elapsed_s']} s")
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["batches"]["done"], done["batches"]["total"])
        self.assertEqual(done["counts"], expect)

        # The images carry the primes plug-in: the primes below 10^9, by the two left.
        r = self.api("POST", "/v1/jobs", {"kernel": "primes", "samples": 10**9,
                                          "batch_size": 10**8})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["kernel_version"], 1)  # the coordinator has it too
        primes = self.api("GET", f"/v1/jobs/{r.json['id']}?wait_s=60", timeout=90).json
        self.assertEqual(primes["state"], "succeeded", primes)
        self.assertEqual(primes["counts"], {"primes": 50847534})
        self.note("primes below 1e9 in the cluster: 50847534")

        # The worker image runs Python programs: the seed's sample(), resident (issue 16).
        r = self.api("POST", "/v1/jobs", PY_SPEC)
        self.assertEqual(r.status, 201, r)
        py = self.api("GET", f"/v1/jobs/{r.json['id']}?wait_s=60", timeout=90).json
        self.assertEqual(py["state"], "succeeded", py)
        self.assertEqual(py["counts"], seed_sample_counts(PY_SPEC))
        self.note(f"examples/pi_resident.py in the cluster: {py['counts']}")

        # The killed worker is lost; the others stay, and their containers report healthy.
        wait_for(f"{victim} lost", lambda: self.workers()[victim]["state"] == "lost",
                 LEASE_TIMEOUT + 10)
        w = self.workers()
        for name in set(names) - {victim}:
            self.assertNotEqual(w[name]["state"], "lost")
            wait_for(f"{name} healthy", lambda c=names[name]: self.healthy(c), 60)

        # A new coordinator container on the same named volume still has the job.
        self.compose("up", "-d", "--no-build", "--no-deps", "--force-recreate", "coordinator",
                     timeout=120)
        again = self.containers("coordinator")
        self.assertNotEqual(again, coordinator)
        wait_for("the new coordinator healthy", lambda: self.healthy(again[0]), 60)
        kept = self.api("GET", f"/v1/jobs/{job}").json
        self.assertEqual((kept["state"], kept["counts"]), ("succeeded", expect))
        self.note("recreated coordinator kept the job")

    # The same file as a Swarm stack.

    def tasks(self, service):
        """The ids of the running containers of the stack's service."""
        r = self.run_cmd(["docker", "ps", "-q", "--no-trunc", "--filter",
                          f"label=com.docker.swarm.service.name={STACK}_{service}"], 30)
        return r.stdout.split()

    def stack_rm(self):
        """Removes the stack, waits until its containers and network are gone, drops its volume."""
        self.run_cmd(["docker", "stack", "rm", STACK], 60)
        gone = lambda: not self.run_cmd(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.stack.namespace={STACK}"],
            30).stdout.split() and not self.run_cmd(
            ["docker", "network", "ls", "-q", "--filter", f"name={STACK}_default"],
            30).stdout.split()
        wait_for("the stack's containers and network gone", gone, 60)
        self.run_cmd(["docker", "volume", "rm", "-f", f"{STACK}_tally-data"], 30)

    def healthz(self):
        try:
            return request(self.port, "GET", "/healthz", timeout=2).status == 200
        except (OSError, http.client.HTTPException):
            return False

    def test_swarm_stack_survives_a_recreated_coordinator(self):
        expect = self.prepare()
        state = self.run_cmd(["docker", "info", "-f", "{{.Swarm.LocalNodeState}}"], 30)
        made = state.stdout.strip() != "active"  # then this test leaves the swarm it made
        if made:
            r = self.run_cmd(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], 60,
                             check=False)
            if r.returncode:
                self.skipTest(f"docker swarm init failed: {r.stderr.strip()[-300:]}")
        try:
            self.stack_rm()  # whatever a killed run left
            self.stack(expect)
        finally:
            try:
                with open(os.path.join(self.tmpdir, "stack.log"), "w") as f:
                    for c in self.run_cmd(["docker", "ps", "-aq", "--filter",
                                           f"label=com.docker.stack.namespace={STACK}"],
                                          30).stdout.split():
                        r = self.run_cmd(["docker", "logs", "--timestamps", c], 60, check=False)
                        f.write(f"== {self.inspect(c, '{{.Name}}')}\n{r.stdout}{r.stderr}")
            finally:
                try:
                    self.stack_rm()
                    self.note("stack removed")
                finally:
                    if made:
                        self.run_cmd(["docker", "swarm", "leave", "--force"], 60)

    def stack(self, expect):
        self.run_cmd(["docker", "stack", "deploy", "-c", COMPOSE_FILE, "-c", SWARM_FILE, STACK],
                     120, env=self.env)
        self.run_cmd(["docker", "service", "scale", "-d", f"{STACK}_worker=3"], 60)
        wait_for("the coordinator answering", self.healthz, 90)
        coordinator = self.tasks("coordinator")
        self.assertEqual(len(coordinator), 1)
        wait_for("three worker tasks", lambda: len(self.tasks("worker")) == 3, 60)
        names = set(self.polling(self.tasks("worker")))
        self.note(f"stack up: workers {sorted(names)}")
        job = self.start_job()

        # A new coordinator task: stop-first, on the same volume, at a new address.
        self.run_cmd(["docker", "service", "update", "-d", "--force", f"{STACK}_coordinator"], 60)
        wait_for("the old coordinator stopped",
                 lambda: self.inspect(coordinator[0], "{{.State.Running}}") != "true", 60)
        wait_for("the new coordinator answering", self.healthz, 90)
        answered, answered_wall = time.monotonic(), time.time()
        again = self.tasks("coordinator")
        self.assertEqual(len(again), 1)
        self.assertNotEqual(again, coordinator)
        # Swarm gives the service's name the new task's address once the task is healthy (its
        # first health check, up to 5 s after it answers): the workers' time counts from then.
        wait_for("the new coordinator healthy", lambda: self.healthy(again[0]), 60)
        healthy = time.monotonic()
        # Heard from since it answered (the workers of leases from before are listed at once).
        seen = lambda w: datetime.datetime.fromisoformat(
            w["last_seen"].replace("Z", "+00:00")).timestamp() >= answered_wall - 0.001
        wait_for("every worker heard from by the new coordinator",
                 lambda: {n for n, w in self.workers().items() if seen(w)} == names, 60)
        back = time.monotonic()
        self.note(f"workers back {back - healthy:.2f} s after the new coordinator was healthy "
                  f"({back - answered:.2f} s after it answered)")
        self.assertLess(back - healthy, RECONNECT_S)

        done = self.finish_job(job)
        self.note(f"job done in the stack: {json.dumps(done['counts'])}")
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["counts"], expect)


if __name__ == "__main__":
    unittest.main()
