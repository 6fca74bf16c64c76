"""Runs last: with `make test-asan`, every shoal process the suite started
(daemons, CLI, unit tests) wrote its AddressSanitizer / UBSan / LeakSanitizer
reports to SHOAL_SANITIZER_DIR. Any report fails the suite."""
import glob
import os

import pytest


@pytest.mark.skipif(not os.environ.get("SHOAL_SANITIZER_DIR"), reason="not a sanitizer build")
def test_no_sanitizer_reports():
    reports = sorted(glob.glob(os.path.join(os.environ["SHOAL_SANITIZER_DIR"], "*")))
    text = ""
    for path in reports[:5]:
        with open(path, errors="replace") as f:
            text += "==> %s\n%s\n" % (path, f.read()[:4000])
    assert not reports, "%d sanitizer report(s):\n%s" % (len(reports), text)
