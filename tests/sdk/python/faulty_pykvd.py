#!/usr/bin/env python3
"""pykvd with test faults, for tests/sdk/python/python_test.cc:

    faulty_pykvd.py --fault {exit-at-start,fail-begin,fail-seal} [pykvd's arguments]

exit-at-start: exit 1 once the baton.Daemon exists (before start);
fail-begin: the begin hook fails after its replay; fail-seal: the seal hook
fails after closing the writer (so resume must reopen it).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "examples", "python"))

import baton  # noqa: E402
import pykvd  # noqa: E402

argv = sys.argv[1:]
fault = ""
if "--fault" in argv:
    i = argv.index("--fault")
    fault = argv[i + 1] if i + 1 < len(argv) else ""
    del argv[i:i + 2]
if fault not in ("exit-at-start", "fail-begin", "fail-seal"):
    sys.exit("faulty_pykvd: --fault exit-at-start|fail-begin|fail-seal is required")


class FaultyHooks(pykvd.KvHooks):
    def begin(self, sealed: baton.SealedState) -> None:
        if fault == "fail-begin":
            self.store.replay(repair=True)
            raise baton.Error(baton.Errc.FAILED_PRECONDITION, "refused by --fault fail-begin")
        super().begin(sealed)

    def seal(self) -> baton.SealReport:
        report = super().seal()
        if fault == "fail-seal":
            raise OSError(5, "Input/output error (--fault fail-seal)")
        return report


if fault == "exit-at-start":
    with baton.Daemon(build_id="faulty pykvd"):
        print("faulty_pykvd: exiting at start", file=sys.stderr)
        sys.exit(1)
sys.exit(pykvd.main(argv, hooks_class=FaultyHooks))
