"""Argument checks of baton.Daemon and the hooks' error mapping, all
refused in Python before libbaton is called."""

import unittest
from unittest import mock

import baton
from baton import daemon as bd


class DaemonArgumentTest(unittest.TestCase):
    def assertInvalid(self, **kwargs):
        with self.assertRaises(baton.Error) as cm:
            baton.Daemon(**kwargs)
        self.assertIs(cm.exception.code, baton.Errc.INVALID_ARGUMENT, cm.exception)
        return cm.exception

    def test_schema_range(self):
        self.assertIn("empty range", self.assertInvalid(state_schema=(3, 2)).message)
        self.assertIn("out of range", self.assertInvalid(state_schema=(0, 1)).message)
        self.assertIn("out of range", self.assertInvalid(state_schema=(1, 2**32)).message)
        with self.assertRaises(TypeError):
            baton.Daemon(state_schema=[1, 1])
        with self.assertRaises(TypeError):
            baton.Daemon(state_schema=(1, "2"))
        with self.assertRaises(TypeError):
            baton.Daemon(state_schema=(1, 2, 3))

    def test_strings(self):
        with self.assertRaises(TypeError):
            baton.Daemon(build_id=7)
        with self.assertRaises(TypeError):
            baton.Daemon(build_id=None)
        with self.assertRaises(TypeError):
            baton.Daemon(data_dir=3.5)
        self.assertIn("NUL", self.assertInvalid(data_dir="/tmp/a\0b").message)
        self.assertIn("lease_name", self.assertInvalid(lease_name="x\0").message)

    def test_lease_durations(self):
        self.assertIn("lease_ttl_ms", self.assertInvalid(lease_ttl_ms=-1).message)
        self.assertIn("lease_poll_interval_ms", self.assertInvalid(lease_poll_interval_ms=2**63).message)
        with self.assertRaises(TypeError):
            baton.Daemon(lease_op_timeout_ms=1.5)
        with self.assertRaises(TypeError):
            baton.Daemon(lease_renew_interval_ms=True)

    def test_log_must_be_callable(self):
        with self.assertRaises(TypeError):
            baton.Daemon(log="stderr")

    def test_keyword_only(self):
        with self.assertRaises(TypeError):
            baton.Daemon("mykv 1.0")


class SealReportTest(unittest.TestCase):
    def test_accepts_a_report_or_a_pair(self):
        self.assertEqual(bd._seal_report(baton.SealReport(42, "00ff")), (42, b"00ff"))
        self.assertEqual(bd._seal_report((0, "")), (0, b""))
        self.assertEqual(bd._seal_report(baton.SealReport(7)), (7, b""))

    def test_refuses_what_baton_cannot_carry(self):
        for bad in (None, 42, (1,), (1, "a", "b"), (-1, "a"), (2**64, "a"), (1.0, "a"), (1, b"bytes"),
                    (1, "caf\u00e9"), (1, "tab\there"), (1, "x" * 1025)):
            with self.subTest(bad=bad):
                with self.assertRaises((baton.Error, TypeError)) as cm:
                    bd._seal_report(bad)
                if isinstance(cm.exception, baton.Error):
                    self.assertIs(cm.exception.code, baton.Errc.INVALID_ARGUMENT)
        self.assertEqual(bd._seal_report((1, "x" * 1024))[1], b"x" * 1024)


class HookErrorMappingTest(unittest.TestCase):
    """What a hook raises becomes baton_hook_fail(code, message)."""

    def run_hook(self, fn):
        calls = []
        with mock.patch.object(bd, "_fail", side_effect=lambda ctx, code, msg: calls.append((code, msg)) or code):
            with mock.patch("traceback.print_exc"):
                rc = bd._call_hook("seal", None, fn)
        return rc, calls

    def test_success_is_zero(self):
        self.assertEqual(self.run_hook(lambda: None), (0, []))

    def test_baton_error_keeps_code_and_message(self):
        def hook():
            raise baton.Error(baton.Errc.FAILED_PRECONDITION, "begin: revision 3, sealed 4")
        self.assertEqual(self.run_hook(hook), (3, [(baton.Errc.FAILED_PRECONDITION, "begin: revision 3, sealed 4")]))

    def test_baton_error_without_message_names_the_hook(self):
        def hook():
            raise baton.Error(baton.Errc.BUSY)
        self.assertEqual(self.run_hook(hook), (7, [(baton.Errc.BUSY, "seal hook failed")]))

    def test_os_error_is_io_error(self):
        def hook():
            raise OSError(5, "Input/output error")
        rc, calls = self.run_hook(hook)
        self.assertEqual(rc, 12)
        self.assertEqual(calls, [(baton.Errc.IO_ERROR, "seal: [Errno 5] Input/output error")])

    def test_anything_else_is_internal(self):
        for exc in (ValueError("bad"), KeyError("k"), KeyboardInterrupt(), SystemExit(3)):
            def hook(exc=exc):
                raise exc
            with self.subTest(exc=exc):
                rc, calls = self.run_hook(hook)
                self.assertEqual(rc, 10)
                self.assertEqual(calls[0][0], baton.Errc.INTERNAL)
                self.assertTrue(calls[0][1].startswith(f"seal: {type(exc).__name__}"), calls)


class HooksBaseTest(unittest.TestCase):
    def test_defaults_do_nothing(self):
        h = baton.Hooks()
        self.assertIsNone(h.warm())
        self.assertIsNone(h.drain(None))
        self.assertEqual(h.seal(), (0, ""))
        self.assertIsNone(h.begin(baton.SealedState(True, 1, "f", 2, 0)))
        self.assertIsNone(h.resume(True))
        self.assertIsNone(h.retire())


if __name__ == "__main__":
    unittest.main()
