"""baton.Errc and baton.Error: the codes match baton.h, the exception carries
them faithfully. Pure Python (libbaton is not loaded)."""

import os
import pickle
import re
import unittest

import baton


def _header() -> str:
    path = os.environ.get("BATON_HEADER") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "include", "baton", "baton.h")
    with open(path, encoding="utf-8") as f:
        return f.read()


class ErrcTest(unittest.TestCase):
    def test_every_code_of_baton_h_and_no_other(self):
        enum = re.search(r"enum baton_errc \{(.*?)\};", _header(), re.S).group(1)
        codes = {name: int(value) for name, value in re.findall(r"BATON_([A-Z_]+) = (\d+)", enum)}
        self.assertEqual(len(codes), 13, enum)
        self.assertEqual({e.name: e.value for e in baton.Errc}, codes)

    def test_roles_and_levels_match_baton_h(self):
        header = _header()
        for enum_name, py in (("baton_role", baton.Role), ("baton_level", baton.Level)):
            body = re.search(r"enum %s \{(.*?)\};" % enum_name, header, re.S).group(1)
            found = {n: int(v) for n, v in re.findall(r"BATON_(?:ROLE|LEVEL)_([A-Z_]+) = (\d+)", body)}
            self.assertEqual({e.name: e.value for e in py}, found)

    def test_descriptions_are_the_library_names(self):
        self.assertEqual(baton.Errc.FAILED_PRECONDITION.description, "failed precondition")
        self.assertEqual(baton.Errc.IO_ERROR.description, "io error")
        self.assertEqual(baton.Errc.INTERNAL.description, "internal error")


class ErrorTest(unittest.TestCase):
    def test_carries_code_and_message(self):
        e = baton.Error(baton.Errc.IO_ERROR, "seal: fsync kv.log failed")
        self.assertIs(e.code, baton.Errc.IO_ERROR)
        self.assertEqual(e.message, "seal: fsync kv.log failed")
        self.assertEqual(str(e), "seal: fsync kv.log failed (io error)")
        self.assertEqual(repr(e), "baton.Error(baton.Errc.IO_ERROR, 'seal: fsync kv.log failed')")
        self.assertIsInstance(e, Exception)

    def test_a_plain_number_becomes_its_errc(self):
        e = baton.Error(8, "x")
        self.assertIs(e.code, baton.Errc.NOT_FOUND)
        self.assertEqual(str(baton.Error(baton.Errc.BUSY)), "busy")

    def test_bad_codes_are_refused(self):
        with self.assertRaises(ValueError):
            baton.Error(baton.Errc.OK, "not an error")
        with self.assertRaises(ValueError):
            baton.Error(99, "no such code")
        with self.assertRaises(TypeError):
            baton.Error("io error", "x")
        with self.assertRaises(TypeError):
            baton.Error(True, "x")
        with self.assertRaises(TypeError):
            baton.Error(baton.Errc.IO_ERROR, b"bytes")

    def test_from_code_maps_library_numbers(self):
        e = baton.Error.from_code(3, "start: the data dir is locked")
        self.assertIs(e.code, baton.Errc.FAILED_PRECONDITION)
        self.assertEqual(e.message, "start: the data dir is locked")
        for bogus in (0, -1, 13, 1000):
            e = baton.Error.from_code(bogus, "what")
            self.assertIs(e.code, baton.Errc.INTERNAL)
            self.assertIn(f"unexpected status {bogus}", e.message)

    def test_pickles(self):
        e = pickle.loads(pickle.dumps(baton.Error(baton.Errc.ABORTED, "rolled back")))
        self.assertIs(e.code, baton.Errc.ABORTED)
        self.assertEqual(e.message, "rolled back")


if __name__ == "__main__":
    unittest.main()
