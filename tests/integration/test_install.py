"""`cmake --install` puts the three binaries, the systemd units, the deployment guide, the kernel
ABI header and the shipped plug-ins in place; the units pass `systemd-analyze verify` (syntax,
sandboxing directives, the binaries they start); every binary answers --version and --help; a
plug-in built outside the tree with one cc command against the installed header runs through the
installed server and worker."""
import os
import re
import shutil
import subprocess
import unittest

import harness
from harness import BIN, TallyTestCase

BUILD = os.path.dirname(os.path.abspath(BIN))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class InstallTest(TallyTestCase):
    def test_install_tree_and_units(self):
        prefix = os.path.join(self.tmpdir, "prefix")
        subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix], check=True,
                       capture_output=True, timeout=120)
        for name in ("tally", "tally-server", "tally-worker"):
            exe = os.path.join(prefix, "bin", name)
            self.assertTrue(os.access(exe, os.X_OK), exe)
            v = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
            self.assertEqual(v.returncode, 0, name)
            self.assertRegex(v.stdout, rf"^{name} [0-9]+\.[0-9]+")
            h = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=10)
            self.assertEqual(h.returncode, 0, name)
            self.assertIn("--", h.stdout)
        self.assertTrue(os.path.exists(os.path.join(prefix, "share", "doc", "tally",
                                                    "deploy.md")))
        units = os.path.join(prefix, "lib", "systemd", "system")
        analyze = shutil.which("systemd-analyze")
        self.assertIsNotNone(analyze, "systemd-analyze (Debian's systemd) is needed")
        for unit in ("tally-server.service", "tally-worker.service"):
            with open(os.path.join(units, unit)) as f:
                text = f.read()
            self.assertIn("DynamicUser=yes", text)
            self.assertIn("ProtectSystem=strict", text)
            exec_start = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
            self.assertTrue(exec_start.endswith("/bin/" + unit.split(".")[0]), exec_start)
            # The units were configured for the build's prefix: point them at this install.
            local = os.path.join(self.tmpdir, unit)
            with open(local, "w") as f:
                f.write(text.replace(os.path.dirname(exec_start), os.path.join(prefix, "bin")))
            r = subprocess.run([analyze, "verify", local], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr.strip(), "", r.stderr)

        # The kernel ABI: the header, the shipped plug-ins, and a plug-in built against them.
        header = os.path.join(prefix, "include", "tally", "kernel.h")
        self.assertTrue(os.path.exists(header))
        if os.path.exists(os.path.join(BUILD, "kernels", "primes.so")):
            self.assertTrue(os.path.exists(os.path.join(prefix, "lib", "tally", "kernels",
                                                        "primes.so")))
        kdir = os.path.join(self.tmpdir, "kernels")
        os.makedirs(kdir)
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-I", os.path.join(prefix, "include"),
                        "-o", os.path.join(kdir, "dice.so"),
                        os.path.join(ROOT, "examples", "kernels", "dice", "dice.c"), "-lm"],
                       check=True, timeout=120)
        harness.BIN = os.path.join(prefix, "bin")  # the installed binaries
        try:
            s = self.server("--kernel-dir", kdir)
            self.worker(s, 1, "installed", "--kernel-dir", kdir)
        finally:
            harness.BIN = BIN
        done = s.wait_job(s.submit(kernel="dice", samples=1_000_000, seed=2)["id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["counts"]["samples"], 1_000_000)
        self.assertIn("p", done["result"])


if __name__ == "__main__":
    unittest.main()
