"""Descriptor and state handover outside a handoff, over the real libbaton:
refusals with their codes, ownership of a refused descriptor, empty takes.
Real handoffs run under `baton supervise` in tests/sdk/handover_test.cc
(with tests/sdk/python/handover_probe.py)."""

import tempfile
import unittest

import baton
from test_daemon import run


class HandoverTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_outside_a_handoff(self):
        rc, out, err = run(f"""
            import json, os, socket, baton
            out = {{}}
            d = baton.Daemon(data_dir={self.dir!r})
            a, b = socket.socketpair()
            def code(fn):
                try:
                    fn()
                    return "OK"
                except baton.Error as e:
                    return e.code.name
            out["socket"] = code(lambda: d.hand_over("conn", a, b"unread"))
            out["socket_open"] = a.fileno() >= 0
            r, w = os.pipe()
            out["pipe_as_conn"] = code(lambda: d.hand_over("pipe", r))
            out["pipe_as_file"] = code(lambda: d.hand_over("pipe", r, kind=baton.HandoverKind.FILE))
            out["empty_name"] = code(lambda: d.hand_over("", r, kind=baton.HandoverKind.FILE))
            os.write(w, b"ok")
            out["pipe_open"] = os.read(r, 2).decode()
            try:
                d.hand_over("x", "not a socket")
            except TypeError:
                out["type"] = "TypeError"
            out["state"] = code(lambda: d.set_handover_state(b"state"))
            out["handed"] = len(d.take_handed_over())
            out["taken_state"] = d.take_handover_state()
            b.sendall(b"still ours")
            out["read"] = a.recv(16).decode()
            d.close()
            out["closed"] = code(lambda: d.take_handed_over())
            print(json.dumps(out))
        """)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out["socket"], "FAILED_PRECONDITION")
        self.assertTrue(out["socket_open"])
        self.assertEqual(out["pipe_as_conn"], "INVALID_ARGUMENT")
        self.assertEqual(out["pipe_as_file"], "FAILED_PRECONDITION")
        self.assertEqual(out["empty_name"], "INVALID_ARGUMENT")
        self.assertEqual(out["pipe_open"], "ok")
        self.assertEqual(out["type"], "TypeError")
        self.assertEqual(out["state"], "FAILED_PRECONDITION")
        self.assertEqual(out["handed"], 0)
        self.assertIsNone(out["taken_state"])
        self.assertEqual(out["read"], "still ours")
        self.assertEqual(out["closed"], "FAILED_PRECONDITION")

    def test_kinds_have_the_c_numbers(self):
        self.assertEqual(int(baton.HandoverKind.CONNECTION), 0)
        self.assertEqual(int(baton.HandoverKind.FILE), 1)


if __name__ == "__main__":
    unittest.main()
