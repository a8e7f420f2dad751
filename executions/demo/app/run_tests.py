"""Run the unit tests and write a JUnit XML report: ``python3 run_tests.py --junit FILE``."""

import argparse
import sys
import time
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path


class Recorder(unittest.TextTestResult):
    """Keeps each test's outcome and duration for the report."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cases = []
        self._started = 0.0

    def startTest(self, test):  # noqa: N802 (unittest's naming)
        self._started = time.perf_counter()
        super().startTest(test)

    def _record(self, test, kind, detail=""):
        self.cases.append((test, kind, detail, time.perf_counter() - self._started))

    def addSuccess(self, test):  # noqa: N802
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test, err):  # noqa: N802
        super().addFailure(test, err)
        self._record(test, "failure", self._exc_info_to_string(err, test))

    def addError(self, test, err):  # noqa: N802
        super().addError(test, err)
        self._record(test, "error", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):  # noqa: N802
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)


def junit(cases) -> ET.Element:
    suite = ET.Element("testsuite", name="shop", tests=str(len(cases)),
                       failures=str(sum(c[1] == "failure" for c in cases)),
                       errors=str(sum(c[1] == "error" for c in cases)),
                       skipped=str(sum(c[1] == "skipped" for c in cases)))
    for test, kind, detail, seconds in cases:
        classname, _, name = test.id().rpartition(".")
        case = ET.SubElement(suite, "testcase", classname=classname, name=name,
                             time=f"{seconds:.3f}")
        if kind != "passed":
            ET.SubElement(case, kind, message=detail.strip().splitlines()[-1][:200]
                          if detail.strip() else kind).text = detail
    return suite


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--junit", default="reports/junit.xml")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    tests = unittest.defaultTestLoader.discover(str(here / "tests"), top_level_dir=str(here))
    result = unittest.TextTestRunner(resultclass=Recorder, verbosity=2).run(tests)
    report = Path(args.junit)
    report.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(junit(result.cases)).write(report, encoding="utf-8", xml_declaration=True)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
