"""Builds the libFuzzer targets (tests/fuzz/fuzz_*.c, `make fuzz`) and runs each
for SHOAL_FUZZ_SECONDS (default 20) over its committed corpus
(tests/fuzz/corpus/TARGET). Any crash, leak, sanitizer report or hang fails
with the reproducer's path; docs/fuzzing.md says how to replay it.

Runs in the normal pass of the suite only: the targets carry their own
AddressSanitizer + UBSan, so the `make test-asan` pass skips them."""
import glob
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.join(ROOT, "build-fuzz")
SECONDS = int(os.environ.get("SHOAL_FUZZ_SECONDS", "20"))
TARGETS = sorted(os.path.basename(p)[len("fuzz_"):-len(".c")]
                 for p in glob.glob(os.path.join(ROOT, "tests", "fuzz", "fuzz_*.c")))

pytestmark = pytest.mark.skipif(bool(os.environ.get("SHOAL_SANITIZER_DIR")),
                                reason="fuzz targets run in the normal pass only")


@pytest.fixture(scope="module")
def fuzz_build():
    # Not the variables of a `make test` this runs under (its BUILD, CC, jobserver).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    res = subprocess.run(["make", "-C", ROOT, "-j%d" % (os.cpu_count() or 1), "fuzz"],
                         capture_output=True, text=True, timeout=1800, env=env)
    assert res.returncode == 0, "make fuzz failed:\n" + res.stdout[-3000:] + res.stderr[-3000:]
    return BUILD


def _fuzzer_env(tmp):
    env = dict(os.environ)
    env["TMPDIR"] = tmp  # the targets' work directories; a crash leaves its own there
    # The suite's sanitizer settings (log files) would hide the reports here.
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        env.pop(var, None)
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz(fuzz_build, target, tmp_path):
    corpus = os.path.join(ROOT, "tests", "fuzz", "corpus", target)
    assert os.path.isdir(corpus) and os.listdir(corpus), "no seed corpus in " + corpus
    artifacts = os.path.join(fuzz_build, "artifacts", target)
    shutil.rmtree(artifacts, ignore_errors=True)
    os.makedirs(artifacts)
    new_inputs = tmp_path / "corpus"  # what this run finds; the committed corpus stays as is
    new_inputs.mkdir()
    cmd = [os.path.join(fuzz_build, "fuzz_" + target), "-max_total_time=%d" % SECONDS,
           "-timeout=30", "-rss_limit_mb=2048", "-print_final_stats=1",
           "-artifact_prefix=" + artifacts + "/", str(new_inputs), corpus]
    work = tmp_path / "tmp"
    work.mkdir()
    res = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                         env=_fuzzer_env(str(work)), timeout=SECONDS + 600)
    out = res.stdout + res.stderr
    written = re.findall(r"Test unit written to (\S+)", out)
    summary = re.findall(r"^SUMMARY: .*$", out, re.M)
    assert res.returncode == 0 and not written, (
        "fuzz_%s failed (exit %d): %s\nreproducer: %s\nreplay: %s %s\n\n%s" % (
            target, res.returncode, "; ".join(summary) or "see the log",
            ", ".join(written) or "none written", cmd[0], written[0] if written else "",
            out[-6000:]))
