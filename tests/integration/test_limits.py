"""Limits: a client that sends a request slowly (slow loris), a slow body, or nothing at all is
cut off after --request-timeout, while parked long polls are not; 2,000 open connections leave
/healthz answering; past --max-connections, connections wait until idle ones are cut."""
import resource
import socket
import time
import unittest

from harness import TallyTestCase


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


if __name__ == "__main__":
    unittest.main()
