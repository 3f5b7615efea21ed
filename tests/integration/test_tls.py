"""TLS: a self-signed certificate made here (openssl), the coordinator serving HTTPS with it
(--tls-cert, --tls-key), a worker trusting it (--cacert) running a job, a client that does
not trust it refused, and handshakes that never finish cut at --request-timeout."""
import http.client
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import time
import unittest

import recompute
from harness import TallyTestCase


@unittest.skipUnless(shutil.which("openssl"), "openssl is not installed")
class TlsTest(TallyTestCase):
    def make_cert(self):
        cert, key = (os.path.join(self.tmpdir, n) for n in ("cert.pem", "key.pem"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=tally-test",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=30)
        return cert, key

    def https(self, port, ctx, method, path, body=None):
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json"} if data else {})
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"null")
        finally:
            conn.close()

    def test_job_over_tls(self):
        cert, key = self.make_cert()
        s = self.server("--tls-cert", cert, "--tls-key", key)
        ctx = ssl.create_default_context(cafile=cert)
        self.worker(s, 1, "tls", "--server", f"https://127.0.0.1:{s.port}", "--cacert", cert)
        st, job = self.https(s.port, ctx, "POST", "/v1/jobs",
                             {"kernel": "pi", "samples": 30000, "batch_size": 1000, "seed": 8})
        self.assertEqual(st, 201, job)
        st, done = self.https(s.port, ctx, "GET", f"/v1/jobs/{job['id']}?wait_s=30")
        self.assertEqual((st, done["state"]), (200, "succeeded"), done)
        self.assertEqual(done["counts"], recompute.job_counts("pi", 8, 1000, 30000, range(30)))

        # A client that does not trust the certificate is refused by TLS itself.
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.https(s.port, ssl.create_default_context(), "GET", "/healthz")
        # Plain HTTP to the TLS port gets no HTTP answer.
        with self.assertRaises((http.client.HTTPException, ConnectionError, OSError)):
            r = s.req("GET", "/healthz", timeout=5)
            if r.status == 200:
                raise AssertionError("plain HTTP was served on the TLS port")
            raise http.client.HTTPException(str(r))

    def test_unfinished_handshake_is_cut_off(self):
        # The handshake is part of reading the first request: it gets --request-timeout too.
        cert, key = self.make_cert()
        s = self.server("--tls-cert", cert, "--tls-key", key, "--request-timeout", "1")
        silent = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        partial = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        partial.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello's first bytes, no more
        try:
            t0 = time.monotonic()
            for c in (silent, partial):
                p = select.poll()
                p.register(c, select.POLLIN | select.POLLERR | select.POLLHUP)
                self.assertTrue(p.poll(10000), "an unfinished TLS handshake kept its connection")
                try:
                    self.assertEqual(c.recv(64), b"")  # closed, with no answer
                except ConnectionResetError:
                    pass
            self.assertLess(time.monotonic() - t0, 8)
        finally:
            silent.close()
            partial.close()

    def test_bad_key_refused_at_start(self):
        cert, key = self.make_cert()
        with open(key, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
        with self.assertRaises(RuntimeError) as e:
            self.server("--tls-cert", cert, "--tls-key", key)
        self.assertIn("TLS certificate or key", str(e.exception))


if __name__ == "__main__":
    unittest.main()
