"""Builds the libFuzzer targets (tests/fuzz/fuzz_*.c, `make fuzz`) and runs each
for SHOAL_FUZZ_SECONDS (default 20) over its committed corpus
(tests/fuzz/corpus/TARGET). Any crash, leak, sanitizer report or hang fails
with the reproducer's path; docs/fuzzing.md says how to replay it.

The build and the runs are one background job (tests/integration/background.py):
started with the session, at low priority, as many targets at a time as there
are CPUs, while the integration tests wait on their daemons; each test_fuzz[TARGET]
then checks its target's run.

Runs in the normal pass of the suite only: the targets carry their own
AddressSanitizer + UBSan, so the `make test-asan` pass skips them."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration"))

import background  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.join(ROOT, "build-fuzz")
SECONDS = int(os.environ.get("SHOAL_FUZZ_SECONDS", "20"))
TARGETS = sorted(os.path.basename(p)[len("fuzz_"):-len(".c")]
                 for p in glob.glob(os.path.join(ROOT, "tests", "fuzz", "fuzz_*.c")))

pytestmark = pytest.mark.skipif(bool(os.environ.get("SHOAL_SANITIZER_DIR")),
                                reason="fuzz targets run in the normal pass only")


def build_targets():
    # Not the variables of a `make test` this runs under (its BUILD, CC, jobserver).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    res = subprocess.run(["make", "-C", ROOT, "-j%d" % (os.cpu_count() or 1), "fuzz"],
                         capture_output=True, text=True, timeout=1800, env=env)
    assert res.returncode == 0, "make fuzz failed:\n" + res.stdout[-3000:] + res.stderr[-3000:]


def _fuzzer_env(tmp):
    env = dict(os.environ)
    env["TMPDIR"] = tmp  # the targets' work directories; a crash leaves its own there
    # The suite's sanitizer settings (log files) would hide the reports here.
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        env.pop(var, None)
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env


def fuzz_one(target):
    """Runs the target over its corpus: (command, exit code, output). Its work
    directory is removed when it passed; a failed run's is kept for the report."""
    corpus = os.path.join(ROOT, "tests", "fuzz", "corpus", target)
    artifacts = os.path.join(BUILD, "artifacts", target)
    shutil.rmtree(artifacts, ignore_errors=True)
    os.makedirs(artifacts)
    tmp = tempfile.mkdtemp(prefix="shoal-fuzz-%s-" % target)
    new_inputs = os.path.join(tmp, "corpus")  # what this run finds; the committed corpus stays as is
    work = os.path.join(tmp, "tmp")
    os.mkdir(new_inputs)
    os.mkdir(work)
    cmd = [os.path.join(BUILD, "fuzz_" + target), "-max_total_time=%d" % SECONDS,
           "-timeout=30", "-rss_limit_mb=2048", "-print_final_stats=1",
           "-artifact_prefix=" + artifacts + "/", new_inputs, corpus]
    res = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                         env=_fuzzer_env(work), timeout=SECONDS + 600)
    if res.returncode == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    return cmd, res.returncode, res.stdout + res.stderr


def build_and_fuzz():
    """{target: fuzz_one(target)} for every target with a corpus, a CPU's worth at a time."""
    build_targets()
    with_corpus = [t for t in TARGETS if os.listdir(os.path.join(ROOT, "tests", "fuzz", "corpus", t))]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return dict(zip(with_corpus, pool.map(fuzz_one, with_corpus)))


RUNS = background.Job("make fuzz and the fuzz runs", build_and_fuzz)
BACKGROUND = [RUNS]


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz(target):
    corpus = os.path.join(ROOT, "tests", "fuzz", "corpus", target)
    assert os.path.isdir(corpus) and os.listdir(corpus), "no seed corpus in " + corpus
    cmd, code, out = RUNS.result()[target]
    written = re.findall(r"Test unit written to (\S+)", out)
    summary = re.findall(r"^SUMMARY: .*$", out, re.M)
    assert code == 0 and not written, (
        "fuzz_%s failed (exit %d): %s\nreproducer: %s\nreplay: %s %s\n\n%s" % (
            target, code, "; ".join(summary) or "see the log",
            ", ".join(written) or "none written", cmd[0], written[0] if written else "",
            out[-6000:]))
