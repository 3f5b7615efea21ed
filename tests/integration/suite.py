"""Runs integration test modules for ctest, which must tell a skip from a pass: exits 1 when a
test failed, 77 (the SKIP_RETURN_CODE of every integration test in tests/CMakeLists.txt) when
none failed but one was skipped, 0 only when every test ran and passed. The skipped tests and
why are listed last, so that ctest's log says what did not run.

    python3 suite.py test_pi test_faults ...   (what ctest runs; -q for terse output)
"""
import sys
import unittest

SKIPPED = 77


def main(argv):
    quiet = "-q" in argv
    names = [a for a in argv if a != "-q"]
    if not names:
        print("usage: suite.py [-q] MODULE...", file=sys.stderr)
        return 2
    tests = unittest.defaultTestLoader.loadTestsFromNames(names)
    result = unittest.TextTestRunner(verbosity=1 if quiet else 2).run(tests)
    if not result.wasSuccessful():
        return 1
    if result.testsRun == 0:
        print("suite: no test ran", file=sys.stderr)
        return SKIPPED
    if result.skipped:
        print(f"suite: {len(result.skipped)} of {result.testsRun} skipped:", file=sys.stderr)
        for test, why in result.skipped:
            print(f"  SKIPPED {test.id()}: {why}", file=sys.stderr)
        return SKIPPED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
