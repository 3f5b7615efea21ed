"""Limits: a client that sends a request slowly (slow loris), a slow body, or nothing at all is
cut off after --request-timeout, while parked long polls are not; so is one that pipelines requests
and never reads the replies; 2,000 open connections leave /healthz answering; past
--max-connections, connections wait until idle ones are cut. The coordinator raises its
file-descriptor limit at start to fit its connections, and says what it got."""
import os
import re
import resource
import select
import socket
import subprocess
import time
import unittest

from harness import BIN, TallyTestCase


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def closed_by_peer(s, deadline, trickle=None):
    """Waits until the server closes s (recv gives b"" or an error), sending trickle one byte
    at a time meanwhile. Returns the seconds it took, or None at the deadline."""
    t0 = time.monotonic()
    s.settimeout(0.2)
    i = 0
    while time.monotonic() < deadline:
        try:
            if trickle and i < len(trickle):
                s.send(trickle[i:i + 1])
                i += 1
            if s.recv(4096) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
    return None


class LimitsTest(TallyTestCase):
    def test_slow_clients_are_cut_off(self):
        s = self.server("--request-timeout", "2")
        headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
        body = (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 200\r\n\r\n{")
        idle, loris, slow_body = connect(s.port), connect(s.port), connect(s.port)
        slow_body.sendall(body)
        # A parked long poll outlives the timeout: it is being handled, not sent.
        poll = connect(s.port)
        req = b'{"worker":"w","kernels":["pi"],"wait_s":4}'
        poll.sendall(b"POST /v1/leases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(req)).encode() + b"\r\n\r\n" + req)
        deadline = time.monotonic() + 10
        took = closed_by_peer(loris, deadline, trickle=headers)  # a byte every 0.2 s
        self.assertIsNotNone(took, "a slow-loris client kept its connection")
        self.assertLess(took, 5)
        self.assertIsNotNone(closed_by_peer(idle, deadline), "an idle connection stayed open")
        self.assertIsNotNone(closed_by_peer(slow_body, deadline), "a slow body stayed open")
        self.assertEqual(s.req("GET", "/healthz").status, 200)
        poll.settimeout(10)
        reply = poll.recv(4096)
        self.assertTrue(reply.startswith(b"HTTP/1.1 204"), reply)  # answered after its 4 s
        for c in (idle, loris, slow_body, poll):
            c.close()

    def test_clients_that_never_read_are_cut_off(self):
        # Each stuck client pipelines requests for the 21 KiB dashboard and reads nothing: its
        # replies fill the socket's buffers (the server's can grow to tcp_wmem's maximum) and the
        # server cannot send the rest.
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            n = 2 * int(f.read().split()[2]) // 20000 + 10
        s = self.server("--request-timeout", "1", "--max-connections", "3")
        stuck = []
        for _ in range(3):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.settimeout(10)
            c.connect(("127.0.0.1", s.port))
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * n)
            stuck.append(c)
        try:
            # They hold every connection the server allows: a fresh client waits in the accept
            # queue until they are cut at the request timeout (not libmicrohttpd's 300 s).
            t0 = time.monotonic()
            deadline = t0 + 20
            status = None
            while status is None and time.monotonic() < deadline:
                try:
                    status = s.req("GET", "/healthz", timeout=2).status
                except OSError:
                    pass
            took = time.monotonic() - t0
            self.assertEqual(status, 200, f"/healthz unanswered after {took:.1f} s")
            self.assertLess(took, 8)
            # Closed by the server with their replies unsent: a reset, seen without reading.
            for c in stuck:
                p = select.poll()
                p.register(c, select.POLLERR | select.POLLHUP)
                self.assertTrue(p.poll(5000), "a client that never reads kept its connection")
        finally:
            for c in stuck:
                c.close()

    def test_many_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < 2200:
            self.skipTest(f"only {hard} descriptors allowed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2200), hard))
        s = self.server("--max-connections", "2010", "--request-timeout", "3")
        conns = []
        try:
            for _ in range(2000):
                conns.append(connect(s.port))
            t0 = time.monotonic()
            self.assertEqual(s.req("GET", "/healthz").status, 200)
            self.assertLess(time.monotonic() - t0, 2)
            # Past the cap, new connections wait in the kernel's queue; the idle ones are cut
            # at the request timeout, and then /healthz is served again.
            conns += [connect(s.port) for _ in range(50)]
            t0 = time.monotonic()
            self.assertEqual(s.req("GET", "/healthz", timeout=15).status, 200)
            self.assertLess(time.monotonic() - t0, 10)
        finally:
            for c in conns:
                c.close()
        self.assertEqual(s.req("GET", "/healthz").status, 200)


def nofile(soft, hard=None):
    """A preexec_fn that starts the child with these descriptor limits (hard: unchanged)."""
    def apply():
        h = resource.getrlimit(resource.RLIMIT_NOFILE)[1] if hard is None else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, h))
    return apply


class DescriptorLimitTest(TallyTestCase):
    DEFAULT = 16384  # --max-connections 0: HTTP_CONN_LIMIT
    MARGIN = 64      # FDLIMIT_MARGIN

    def fd_line(self, s):
        m = re.search(r'msg="file descriptors" limit=(\d+) was=(\d+) hard=(\w+) '
                      r'max_connections=(\d+)', s.log())
        self.assertIsNotNone(m, s.log()[-2000:])
        return [int(x) if x.isdigit() else x for x in m.groups()]

    def test_soft_limit_raised_at_start(self):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard != resource.RLIM_INFINITY and hard < self.DEFAULT + self.MARGIN + 400:
            self.skipTest(f"hard limit {hard}: too low to show the default fitting")
        s = self.server(preexec_fn=nofile(256))
        limit, was, _, conns = self.fd_line(s)
        self.assertEqual(was, 256)
        self.assertGreaterEqual(limit, self.DEFAULT + self.MARGIN)
        self.assertEqual(conns, self.DEFAULT)
        with open(f"/proc/{s.proc.pid}/limits") as f:
            soft = next(l for l in f if l.startswith("Max open files")).split()[3]
        self.assertEqual(int(soft), limit)
        # More connections than the 256 it was started with: each still served.
        conns = [connect(s.port) for _ in range(300)]
        try:
            for c in conns[-3:]:
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(c.recv(4096).startswith(b"HTTP/1.1 200"))
        finally:
            for c in conns:
                c.close()

    def test_short_hard_limit_lowers_the_default_and_refuses_an_explicit_limit(self):
        s = self.server(preexec_fn=nofile(256, 512))
        self.assertEqual(self.fd_line(s), [512, 256, 512, 512 - self.MARGIN])
        self.assertRegex(s.log(), r'level=warn msg="too few file descriptors.*max_connections=448')
        self.assertEqual(s.req("GET", "/healthz").status, 200)
        p = subprocess.run([os.path.join(BIN, "tally-server"), "--listen", "127.0.0.1:0",
                            "--db", os.path.join(self.tmpdir, "x.db"), "--max-connections",
                            "1000"], preexec_fn=nofile(256, 512), capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("1000 connections (--max-connections) need 1064 file descriptors", p.stderr)
        self.assertIn("lower --max-connections", p.stderr)

    def test_help_names_the_default(self):
        out = subprocess.run([os.path.join(BIN, "tally-server"), "--help"], capture_output=True,
                             text=True, timeout=10).stdout
        self.assertRegex(out, r"--max-connections .*0: 16384.*file-descriptor limit")


if __name__ == "__main__":
    unittest.main()
