"""deploy/kubernetes/ checked offline (no cluster is reachable here) against what it deploys:
- every file is in kustomization.yaml and parses; the objects the docs promise are there;
- each container's image is one docker/ builds (compose.yaml's image of a Dockerfile target),
  and that target's entry point is the binary whose --help names every TALLY_* variable and
  every --flag the container sets (its own option, or the "or set X" of one);
- the coordinator's container port is the port of the server's default --listen and of its
  TALLY_LISTEN; the Service forwards to it; the workers' TALLY_SERVER names the Service and its
  port, https exactly when the coordinator serves TLS;
- every probe path answers 200 from a real tally-server on loopback, the HPA's metric is in its
  /metrics, and the Secret's placeholder tokens are refused (the coordinator does not start);
- secrets, keys and mounted files referred to exist (TLS files under a mount of the TLS secret).
The checker also runs on broken copies of the manifests (a flag or variable that does not exist,
a wrong image, port or probe path) and must object to each.
"""
import copy
import glob
import os
import re
import subprocess
import unittest
import urllib.parse

from harness import TallyTestCase, binary, request

try:
    import yaml
except ImportError:  # python3-yaml (scripts/setup.sh --test)
    yaml = None

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
KDIR = os.path.join(ROOT, "deploy", "kubernetes")


def help_options(program):
    """{env or flag: option flag} from program --help: each option's flag and variable, and the
    variables its text offers instead ("or set TALLY_TOKEN")."""
    out = subprocess.run([binary(program), "--help"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    names, defaults = {}, {}
    for line in out.splitlines():
        m = re.match(r"\s+(--[a-z-]+)\s+(TALLY_[A-Z_]+)?\s*(.*)", line)
        if not m:
            continue
        flag, env, text = m.groups()
        names[flag] = flag
        if env:
            names[env] = flag
        for other in re.findall(r"or set (TALLY_[A-Z_]+)", text):
            names[other] = flag
        d = re.search(r"\[([^\]]*)\]$", text)
        defaults[flag] = d.group(1) if d else None
    return names, defaults


def docker_images():
    """{image: (Dockerfile target, its entry point program, {ENV name: value}, EXPOSEd ports)}."""
    with open(os.path.join(ROOT, "docker", "compose.yaml")) as f:
        compose = yaml.safe_load(f)
    stages, cur = {}, None
    with open(os.path.join(ROOT, "docker", "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    for line in text.splitlines():
        if m := re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I):
            base = stages.get(m.group(1), {"entry": None, "env": {}, "expose": set()})
            cur = stages[m.group(2) or m.group(1)] = copy.deepcopy(base)
        elif m := re.match(r"ENTRYPOINT\s+\[\"([^\"]+)\"", line):
            cur["entry"] = m.group(1)
        elif m := re.match(r"ENV\s+(.*)", line):
            cur["env"].update(re.findall(r"(\w+)=(\S+)", m.group(1)))
        elif m := re.match(r"EXPOSE\s+(.*)", line):
            cur["expose"].update(int(p.split("/")[0]) for p in m.group(1).split())
    images = {}
    for svc in compose["services"].values():
        target = svc["build"]["target"]
        st = stages[target]
        images[svc["image"]] = (target, st["entry"], st["env"], st["expose"])
    return images


def load_manifests(kdir=KDIR):
    """[(file name, object)] in kustomization.yaml's order, and the problems found on the way."""
    problems = []
    with open(os.path.join(kdir, "kustomization.yaml")) as f:
        kust = yaml.safe_load(f)
    listed = kust.get("resources", [])
    present = sorted(os.path.basename(p) for p in glob.glob(os.path.join(kdir, "*.yaml"))
                     if os.path.basename(p) != "kustomization.yaml")
    if sorted(listed) != present:
        problems.append(f"kustomization.yaml lists {sorted(listed)}, the directory has {present}")
    objs = []
    for name in listed:
        with open(os.path.join(kdir, name)) as f:
            objs += [(name, o) for o in yaml.safe_load_all(f) if o]
    return objs, problems


def pod_specs(objs):
    """(object, pod spec) of every workload."""
    return [(o, o["spec"]["template"]["spec"]) for _, o in objs
            if o["kind"] in ("StatefulSet", "Deployment")]


def one(objs, kind):
    found = [o for _, o in objs if o["kind"] == kind]
    return found[0] if len(found) == 1 else None


def check(objs, images, helps):
    """The problems of the manifests objs: [] when they agree with the binaries and images."""
    problems = []
    by_kind = {k: one(objs, k) for k in ("StatefulSet", "Deployment", "Service",
                                         "HorizontalPodAutoscaler", "Secret")}
    for k, o in by_kind.items():
        if o is None:
            problems.append(f"not exactly one {k}")
    if problems:
        return problems
    sts, dep, svc, hpa = (by_kind[k] for k in ("StatefulSet", "Deployment", "Service",
                                                 "HorizontalPodAutoscaler"))
    secrets = {o["metadata"]["name"]: set(o.get("stringData", {})) | set(o.get("data", {}))
               for _, o in objs if o["kind"] == "Secret"}
    # A TLS secret is made with kubectl (a key cannot be shipped): secret.yaml says how.
    with open(os.path.join(KDIR, "secret.yaml")) as f:
        for name in re.findall(r"kubectl create secret tls (\S+)", f.read()):
            secrets.setdefault(name, {"tls.crt", "tls.key"})

    if sts["spec"].get("replicas") != 1 or not sts["spec"].get("volumeClaimTemplates"):
        problems.append("the coordinator is not one replica with a volume claim")
    for owner, spec in pod_specs(objs):
        what = f"{owner['kind']} {owner['metadata']['name']}"
        labels = owner["spec"]["template"]["metadata"]["labels"]
        if owner["spec"]["selector"]["matchLabels"].items() - labels.items():
            problems.append(f"{what}: its selector does not match its pods")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        volumes.update({c["metadata"]["name"]: {} for c in
                        owner["spec"].get("volumeClaimTemplates", [])})
        for c in spec["containers"]:
            where = f"{what} container {c['name']}"
            if c["image"] not in images:
                problems.append(f"{where}: image {c['image']} is not one docker/ builds "
                                f"({sorted(images)})")
                continue
            target, program, image_env, expose = images[c["image"]]
            names, defaults = helps[program]
            env = dict(image_env)
            for e in c.get("env", []):
                if e["name"] not in names:
                    problems.append(f"{where}: {e['name']} is no option of {program}")
                env[e["name"]] = e.get("value")
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["key"] not in secrets.get(ref["name"], ()):
                    problems.append(f"{where}: {e['name']} from secret {ref['name']} key "
                                    f"{ref['key']}, which is not there")
            for a in c.get("command", []) + c.get("args", []):
                if a.startswith("--") and a.split("=")[0] not in names:
                    problems.append(f"{where}: {a} is no flag of {program}")
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            for m in mounts.values():
                if m not in volumes:
                    problems.append(f"{where}: mounts {m}, which is no volume")
            for var in ("TALLY_TLS_CERT", "TALLY_TLS_KEY", "TALLY_CACERT"):
                if env.get(var) and not secret_file(env[var], mounts, volumes, secrets):
                    problems.append(f"{where}: {var}={env[var]} is no file of a mounted secret")
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            if program == "tally-server":
                problems += check_coordinator(where, c, env, ports, defaults, expose, svc,
                                              sts, dep, images, helps)
    if hpa["spec"]["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
        problems.append("the HPA scales something else than the workers' Deployment")
    return problems


def secret_file(path, mounts, volumes, secrets):
    """Whether path is a file that a mounted secret volume holds."""
    d, f = os.path.split(path)
    sec = volumes.get(mounts.get(d), {}).get("secret")
    if not sec:
        return False
    items = sec.get("items")
    files = {i["path"]: i["key"] for i in items} if items else \
        {k: k for k in secrets.get(sec["secretName"], ())}
    return files.get(f) in secrets.get(sec["secretName"], ())


def check_coordinator(where, c, env, ports, defaults, expose, svc, sts, dep, images, helps):
    problems = []
    default_port = int(defaults["--listen"].rsplit(":", 1)[1])
    listen_port = int((env.get("TALLY_LISTEN") or defaults["--listen"]).rsplit(":", 1)[1])
    if set(ports.values()) != {default_port} or listen_port != default_port or \
            expose != {default_port}:
        problems.append(f"{where}: container ports {sorted(ports.values())}, TALLY_LISTEN's "
                        f"{listen_port}, EXPOSE {sorted(expose)}: not the server's default "
                        f"{default_port}")
    tls = bool(env.get("TALLY_TLS_CERT"))
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = c.get(kind, {}).get("httpGet")
        if not get:
            if kind != "startupProbe":
                problems.append(f"{where}: no {kind}")
            continue
        if ports.get(get["port"], get["port"]) != default_port:
            problems.append(f"{where}: {kind} on port {get['port']}")
        if (get.get("scheme", "HTTP") == "HTTPS") != tls:
            problems.append(f"{where}: {kind} scheme {get.get('scheme', 'HTTP')}, TLS {tls}")
    labels = sts["spec"]["template"]["metadata"]["labels"]
    if svc["spec"]["selector"].items() - labels.items():
        problems.append("the Service does not select the coordinator's pods")
    sport = svc["spec"]["ports"][0]
    if ports.get(sport["targetPort"], sport["targetPort"]) != default_port:
        problems.append(f"the Service forwards to {sport['targetPort']}, not the coordinator")
    for w in dep["spec"]["template"]["spec"]["containers"]:
        url = next((e.get("value") for e in w.get("env", []) if e["name"] == "TALLY_SERVER"),
                   None) or images.get(w["image"], (0, 0, {}))[2].get("TALLY_SERVER")
        u = urllib.parse.urlsplit(url or "")
        if (u.scheme, u.hostname, u.port) != ("https" if tls else "http",
                                              svc["metadata"]["name"], sport["port"]):
            problems.append(f"worker {w['name']}: TALLY_SERVER {url} is not the Service "
                            f"({'https' if tls else 'http'}://{svc['metadata']['name']}:"
                            f"{sport['port']})")
    return problems


def probe_paths(objs):
    return sorted({p["httpGet"]["path"] for _, spec in pod_specs(objs)
                   for c in spec["containers"]
                   for k in ("startupProbe", "readinessProbe", "livenessProbe")
                   if (p := c.get(k)) and "httpGet" in p})


@unittest.skipIf(yaml is None, "no PyYAML (python3-yaml)")
class DeployManifestsTest(TallyTestCase):
    def setUp(self):
        super().setUp()
        self.objs, problems = load_manifests()
        self.assertEqual(problems, [])
        self.images = docker_images()
        self.helps = {prog: help_options(prog) for _, prog, _, _ in self.images.values()}

    def test_manifests_agree_with_binaries_and_images(self):
        self.assertEqual(check(self.objs, self.images, self.helps), [])
        kinds = sorted({o["kind"] for _, o in self.objs})
        self.assertEqual(kinds, ["Deployment", "HorizontalPodAutoscaler", "Secret", "Service",
                                 "StatefulSet"])

    def test_probe_paths_answer_and_the_metric_is_served(self):
        s = self.server()
        paths = probe_paths(self.objs)
        self.assertTrue(paths)
        for p in paths:
            self.assertEqual(request(s.port, "GET", p).status, 200, p)
        self.assertEqual(request(s.port, "GET", "/nope").status, 404)  # the check can fail
        hpa = one(self.objs, "HorizontalPodAutoscaler")
        metrics = request(s.port, "GET", "/metrics").raw.decode()
        for m in hpa["spec"]["metrics"]:
            name = m["external"]["metric"]["name"]
            self.assertRegex(metrics, rf"(?m)^{name}(\{{.*\}})? ", name)

    def test_placeholder_tokens_are_refused(self):
        tokens = one(self.objs, "Secret")["stringData"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        env.update(TALLY_TOKEN=tokens["client-token"], TALLY_WORKER_TOKEN=tokens["worker-token"],
                   TALLY_LISTEN="127.0.0.1:0", TALLY_DB=os.path.join(self.tmpdir, "t.db"))
        p = subprocess.run([binary("tally-server")], env=env, capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 2, p)
        self.assertIn("token", p.stderr)

    def test_the_checker_objects_to_broken_manifests(self):
        """Each breakage, alone, is found (the message holding the key): the checks can fail."""
        def broken(edit):
            objs = copy.deepcopy(self.objs)
            edit({o["kind"]: o for _, o in objs})
            return check(objs, self.images, self.helps)

        def container(o):
            return o["spec"]["template"]["spec"]["containers"][0]

        cases = {
            "TALLY_NO_SUCH is no option": lambda k: container(k["Deployment"])["env"].append(
                {"name": "TALLY_NO_SUCH", "value": "1"}),
            "--no-such-flag is no flag": lambda k: container(k["StatefulSet"]).update(args=["--no-such-flag"]),
            "--idle-exit=5 is no flag of tally-server": lambda k: container(k["StatefulSet"]).update(
                args=["--idle-exit=5"]),
            "is not one docker/ builds": lambda k: container(k["Deployment"]).update(
                image="tally/worker:1"),
            "not the server's default": lambda k: container(k["StatefulSet"])["ports"][0]
            .update(containerPort=9090),
            "is not the Service": lambda k: k["Service"]["spec"]["ports"][0].update(port=80),
            "which is not there": lambda k: container(k["Deployment"])["env"][1]["valueFrom"]
            ["secretKeyRef"].update(key="token"),
            "no file of a mounted secret": lambda k: container(k["Deployment"])[
                "volumeMounts"][0].update(mountPath="/etc/ssl/tally"),
        }
        for what, edit in cases.items():
            problems = broken(edit)
            self.assertTrue(any(what in p for p in problems),
                            f"{what}: {problems}")
        self.assertTrue(broken(lambda k: None) == [])
        self.assertNotIn("/nope", probe_paths(self.objs))


if __name__ == "__main__":
    unittest.main()
