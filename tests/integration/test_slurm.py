"""A worker fleet under a real Slurm (issue 15): Debian's munged, slurmctld and slurmd run as a
one-node cluster from a temporary directory (foreground daemons, private state, no cgroups, no
accounting), and deploy/slurm/tally-workers.sbatch is submitted as a job array against a
tally-server on loopback. The array computes a job to the counts of a local run, and every task
ends by itself (--idle-exit) once the queue is empty; then scancel reaches a worker as SIGTERM,
and its lease is finished, not left to expire.

Skipped (exit 77) when Slurm or munge is not installed (scripts/setup.sh --test installs them),
when not root, or when the daemons cannot start here; the skip names why.
"""
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import unittest

from harness import BIN, TallyTestCase, binary, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SBATCH = os.path.join(REPO, "deploy", "slurm", "tally-workers.sbatch")
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel")
NODE = "tallynode"
CLIENT = "client-token-" + "c" * 20
WORKER = "worker-token-" + "w" * 20
SPEC = {"kernel": "pi", "samples": 400_000_000, "batch_size": 1_000_000, "seed": 15}
PR_SET_CHILD_SUBREAPER = 36


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, n=1500):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")[-n:]
    except OSError:
        return ""


class Slurm:
    """munged, slurmctld and slurmd under root, their files all in one directory."""

    def __init__(self, root):
        self.root = root
        self.conf = os.path.join(root, "slurm.conf")
        self.sock = os.path.join(root, "munge", "munge.socket")
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        self.procs = {}  # name -> Popen

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write_conf(self):
        for d in ("munge", "state", "spool", "log"):
            os.makedirs(self.path(d), mode=0o755, exist_ok=True)
        with open(self.path("munge", "munge.key"), "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(self.path("munge", "munge.key"), 0o600)
        host = socket.gethostname().split(".")[0]
        conf = f"""ClusterName=tally
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.sock}
StateSaveLocation={self.path("state")}
SlurmdSpoolDir={self.path("spool")}
SlurmctldPidFile={self.path("slurmctld.pid")}
SlurmdPidFile={self.path("slurmd.pid")}
SlurmctldLogFile={self.path("log", "slurmctld.log")}
SlurmdLogFile={self.path("log", "slurmd.log")}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=30
NodeName={NODE} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=test Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""
        with open(self.conf, "w") as f:
            f.write(conf)

    def spawn(self, name, cmd):
        with open(self.path("log", name + ".out"), "ab") as log:
            self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=log, env=self.env,
                                                stdin=subprocess.DEVNULL)

    def run(self, *cmd, env=None, check=True):
        r = subprocess.run(list(cmd), env=env or self.env, capture_output=True, text=True,
                           timeout=30)
        if check and r.returncode:
            raise AssertionError(f"{cmd}: exit {r.returncode}: {r.stderr}")
        return r

    def dead(self):
        """A line naming the daemons that have exited, with their logs' ends; '' if none."""
        out = ""
        for name, p in self.procs.items():
            if p.poll() is not None:
                out += (f"\n{name} exited ({p.returncode}):\n"
                        f"{tail(self.path('log', name + '.out'))}")
        return out

    def start(self, timeout=30):
        """Starts the cluster and waits for its node to be idle. Returns None, or why it could
        not start (the caller skips)."""
        self.write_conf()
        self.spawn("munged", ["munged", "--foreground", "--force", "--socket", self.sock,
                              "--key-file", self.path("munge", "munge.key"),
                              "--log-file", self.path("log", "munged.log"),
                              "--pid-file", self.path("munge", "munged.pid"),
                              "--seed-file", self.path("munge", "munged.seed")])
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.sock):
            if self.dead() or time.monotonic() > deadline:
                return "munged did not start:" + (self.dead() or " no socket")
            time.sleep(0.05)
        self.spawn("slurmctld", ["slurmctld", "-D", "-f", self.conf])
        self.spawn("slurmd", ["slurmd", "-D", "-N", NODE, "-f", self.conf])
        state = ""
        while state != "idle":
            if self.dead() or time.monotonic() > deadline:
                return (f"the one-node cluster did not come up (node state '{state}'):"
                        + (self.dead() or tail(self.path("log", "slurmd.out"))))
            time.sleep(0.1)
            r = self.run("sinfo", "-h", "-n", NODE, "-o", "%t", check=False)
            state = r.stdout.strip()
        return None

    def squeue(self, job):
        return self.run("squeue", "-h", "-j", str(job), "-o", "%i %T").stdout.split("\n")

    def tasks(self, job):
        """{array task id: (JobState, ExitCode)} of array job `job`, from scontrol (there is no
        accounting, so no sacct)."""
        r = self.run("scontrol", "-o", "show", "job", str(job))
        out = {}
        for line in r.stdout.splitlines():
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            out[f.get("ArrayTaskId")] = (f.get("JobState"), f.get("ExitCode"))
        return out

    def stop(self):
        """Cancels every job, stops the daemons, and kills whatever they left behind (job steps
        outlive slurmd): this process is their subreaper, so they are its children by then."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "--user", "root", check=False)
            try:
                wait_for("the jobs to end", lambda: not "".join(
                    self.run("squeue", "-h", check=False).stdout.split()), 15)
            except AssertionError:
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = {}


def orphans(keep):
    """Pids of this process's children other than those in keep (orphans it has adopted)."""
    me, out = os.getpid(), []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in keep:
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            out.append(int(d))
    return out


class SlurmTest(TallyTestCase):
    def setUp(self):
        super().setUp()
        self.slurm = None

    def tearDown(self):
        try:
            if self.slurm:
                self.slurm.stop()
                keep = {p.proc.pid for p in self.procs if getattr(p, "proc", None)}
                for pid in orphans(keep):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    try:
                        os.waitpid(pid, 0)
                    except ChildProcessError:
                        pass
        finally:
            super().tearDown()

    def start_slurm(self):
        missing = [p for p in PROGRAMS if not shutil.which(p)]
        if missing:
            self.skipTest(f"not installed: {' '.join(missing)} (scripts/setup.sh --test)")
        if os.geteuid() != 0:
            self.skipTest("the one-node Slurm cluster runs its daemons as root")
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0):
            self.skipTest("cannot become a subreaper (to clean up Slurm's job steps)")
        self.slurm = Slurm(os.path.join(self.tmpdir, "slurm"))
        why = self.slurm.start()
        if why:
            self.skipTest(why)

    def token_files(self):
        return [self.token_file("client.token", CLIENT), self.token_file("worker.token", WORKER)]

    def api(self, s, method, path, body=None):
        r = s.req(method, path, body, headers={"Authorization": "Bearer " + CLIENT})
        self.assertLess(r.status, 300, r)
        return r.json

    def local_run(self):
        """The job's counts from `tally run` here: an embedded coordinator and worker."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        env["TMPDIR"] = self.tmpdir
        r = subprocess.run([binary("tally"), "run", "pi", "--samples", str(SPEC["samples"]),
                            "--batch-size", str(SPEC["batch_size"]), "--seed", str(SPEC["seed"]),
                            "--json"], env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def sbatch(self, s, worker_token_file, array, idle_exit):
        """Submits the array; returns its job id."""
        env = {k: v for k, v in self.slurm.env.items() if not k.startswith("TALLY_")}
        env.update(PATH=os.path.abspath(BIN) + os.pathsep + env.get("PATH", ""),
                   TALLY_SERVER=s.url, TALLY_WORKER_TOKEN_FILE=worker_token_file,
                   TALLY_IDLE_EXIT=str(idle_exit))
        out = os.path.join(self.tmpdir, "slurm-%A_%a.out")
        r = self.slurm.run("sbatch", "--parsable", f"--array={array}", "--cpus-per-task=1",
                           "--time=10", f"--output={out}", SBATCH, env=env)
        return int(r.stdout.strip().split(";")[0])

    def task_log(self, job, task):
        return tail(os.path.join(self.tmpdir, f"slurm-{job}_{task}.out"), 100000)

    def wait_drained(self, job, timeout):
        """Waits until squeue no longer lists the array; returns its tasks' states."""
        wait_for(f"array {job} to leave squeue", lambda: self.slurm.squeue(job) == [""],
                 timeout)
        return self.slurm.tasks(job)

    def workers(self, s):
        return {w["name"]: w for w in self.api(s, "GET", "/v1/workers")["workers"]}

    def test_array_runs_the_job_and_drains(self):
        t0 = time.monotonic()
        local = self.local_run()
        self.start_slurm()
        client_file, worker_file = self.token_files()
        s = self.server("--token-file", client_file, "--worker-token-file", worker_file)
        job = self.api(s, "POST", "/v1/jobs", SPEC)["id"]

        # Three tasks, two CPUs: the third starts only when one of the first two has ended.
        array = self.sbatch(s, worker_file, "0-2", 2)
        deadline = time.monotonic() + 90
        while (j := self.api(s, "GET", f"/v1/jobs/{job}"))["state"] not in ("succeeded",
                                                                            "failed"):
            self.assertLess(time.monotonic(), deadline, f"job not done: {j}\n"
                            + "".join(self.task_log(array, i)[-500:] for i in range(3)))
            time.sleep(0.1)
        self.assertEqual(j["state"], "succeeded", j)
        self.assertEqual(j["counts"], local["counts"])
        self.assertEqual(j["result"], local["result"])

        # Every task ends by itself, exit 0, its worker named after the job and the task.
        tasks = self.wait_drained(array, 60)
        self.assertEqual(tasks, {str(i): ("COMPLETED", "0:0") for i in range(3)})
        names = self.workers(s)
        for i in range(3):
            log = self.task_log(array, i)
            self.assertIn(f"worker=slurm-{array}-{i} ", log)
            self.assertIn("threads=1", log)  # from --cpus-per-task
            self.assertIn("idle: no lease", log)
            self.assertIn("worker stopped", log)
            self.assertIn(f"slurm-{array}-{i}", names)

        # scancel sends SIGTERM: the worker (the batch step itself, through exec) finishes the
        # lease in hand (or gives it back) and exits; no lease is left to expire.
        big = self.api(s, "POST", "/v1/jobs", dict(SPEC, samples=10 ** 12))["id"]
        one = self.sbatch(s, worker_file, "0", 0)
        name = f"slurm-{one}-0"
        wait_for(f"{name} to hold a lease",
                 lambda: (self.workers(s).get(name) or {}).get("lease") is not None, 30)
        self.slurm.run("scancel", str(one))
        tasks = self.wait_drained(one, 30)
        self.assertEqual(tasks["0"][0], "CANCELLED", tasks)
        self.assertIn("worker stopped", self.task_log(one, 0))
        j = self.api(s, "GET", f"/v1/jobs/{big}")
        self.assertEqual(j["batches"]["leased"], 0, j)  # completed or given back, not expiring
        self.api(s, "POST", f"/v1/jobs/{big}/cancel")
        print(f"\ntest_slurm: {time.monotonic() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    unittest.main()
