"""The folders' include graph (issue #11): a file of folder A may include
only the folders A may use. Checked for the folders whose graph is clean so
far; the others join as they are untangled."""
import glob
import os
import re

import pytest

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

# folder -> the folders it may include (besides itself)
MAY_USE = {
    "base": set(),
    "store": {"base"},
    "raft": {"base", "store"},
    "agent": {"base", "model"},
}

# Single headers still included across the line, until they move (task
# states and CIDR math to a model folder below agent/ and manager/).
PENDING = {
    ("agent", "manager/scheduler.h"),
    ("agent", "manager/netmodel.h"),
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([^"]+)"', re.M)


def includes(folder):
    for path in sorted(glob.glob(os.path.join(SRC, folder, "*.[ch]"))):
        with open(path) as f:
            for m in INCLUDE.finditer(f.read()):
                yield os.path.basename(path), m.group(1), "%s/%s" % (m.group(1), m.group(2))


@pytest.mark.parametrize("folder", sorted(MAY_USE))
def test_folder_includes_only_what_it_may_use(folder):
    bad = ["%s/%s includes %s" % (folder, name, header)
           for name, used, header in includes(folder)
           if used != folder and used not in MAY_USE[folder] and (folder, header) not in PENDING]
    assert not bad, "\n".join(bad)
