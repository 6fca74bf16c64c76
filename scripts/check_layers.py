#!/usr/bin/env python3
"""Checks the folders' include graph against the layer table (docs/design.md, Layers).

Every `#include "folder/x.h"` in a file under src/<dir>/ must name <dir> itself or a folder
that ALLOWED lets <dir> use. The include lines issue #11 is still removing are listed in
KNOWN: they are counted and printed as a warning, not an error. Anything else fails:
a new include across the layers, a folder of src/ the table does not place, or a cycle
in the table itself (two folders that may use each other, directly or through others).

Usage: scripts/check_layers.py [SRC_DIR]   (default: src/ next to this script)
Exit status: 0 when no new violation, 1 otherwise.
"""
import os
import re
import sys

# Who may include whom, bottom first. A folder always uses itself.
ALLOWED = {
    "base": set(),                                   # platform, errors, logs, JSON access
    "store": {"base"},                               # the replicated state (SQLite)
    "raft": {"base", "store"},                       # consensus, applies entries to the store
    "model": {"base"},                               # what agent/ and manager/ share: task
                                                     # states, image references, CIDR math
    "tls": {"base"},                                 # node identity, PEM, every TLS context
    "agent": {"base", "model"},                      # runs the node's tasks
    "manager": {"base", "model", "tls", "store", "raft"},  # orchestrator, scheduler, dispatcher
    "http": {"base", "tls"},                         # HTTP/1.1 server and clients, JSON lines
    # The daemon's wiring (struct shoal); it serves the API handed to it from above
    # (struct daemon_front, given by src/main.c), so it includes nothing of api/.
    "daemon": {"base", "tls", "store", "raft", "model", "agent", "manager", "http"},
    "api": {"base", "tls", "store", "raft", "model", "agent", "manager", "http", "daemon"},
    # The client side: the CLI speaks HTTP (http/'s client) and sees no daemon internals.
    "cli": {"base", "tls", "model", "http"},
    "dev": {"base", "tls", "model", "agent", "http", "cli"},  # above cli/ (its framework)
    "ui": set(),                                     # the dashboard's files: no C
}

# Includes across the layers that issue #11 is removing: (file under src/, included header).
# Remove an entry when its include goes; the script says which entries are gone.
KNOWN = set()  # none left since the agent's upstream interface and model/mount.h

INCLUDE = re.compile(r'^\s*#\s*include\s+"([A-Za-z0-9_]+)/([^"]+)"')


def scan(src):
    """Yields (file relative to src, included folder, included path) for each include
    of a file under src/<dir>/ that names a folder."""
    for top in sorted(os.listdir(src)):
        folder = os.path.join(src, top)
        if not os.path.isdir(folder):
            continue
        for root, _, files in os.walk(folder):
            for name in sorted(files):
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.join(root, name)
                rel = os.path.relpath(path, src).replace(os.sep, "/")
                with open(path, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        m = INCLUDE.match(line)
                        if m:
                            yield rel, m.group(1), m.group(1) + "/" + m.group(2)


def table_cycle(allowed):
    """A cycle of the table ["api", "daemon", "api"], or None: the folders
    must form layers (issue #11: no cycle between folders)."""
    done, path = set(), []

    def visit(d):
        if d in path:
            return path[path.index(d):] + [d]
        if d in done:
            return None
        path.append(d)
        for used in sorted(allowed.get(d, ())):
            found = visit(used)
            if found:
                return found
        path.pop()
        done.add(d)
        return None

    for d in sorted(allowed):
        found = visit(d)
        if found:
            return found
    return None


def check(src, allowed=None):
    """Returns (errors, known violations found, known entries no longer found)."""
    allowed = ALLOWED if allowed is None else allowed
    errors, known_found = [], set()
    cycle = table_cycle(allowed)
    if cycle:
        errors.append("the layer table has a cycle: " + " -> ".join(cycle))
    folders = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    for d in folders:
        if d not in allowed:
            errors.append(f"src/{d}/: a folder the layer table does not place "
                          "(add it to ALLOWED in scripts/check_layers.py and docs/design.md)")
    for rel, used, header in scan(src):
        owner = rel.split("/", 1)[0]
        if owner not in allowed or used == owner or used not in folders:
            continue
        if used in allowed[owner]:
            continue
        if (rel, header) in KNOWN:
            known_found.add((rel, header))
        else:
            errors.append(f"src/{rel}: includes {header}, but {owner}/ may not use {used}/ "
                          f"(it may use: {', '.join(sorted(allowed[owner])) or 'nothing'})")
    return errors, known_found, KNOWN - known_found


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "src")
    errors, known_found, gone = check(src)
    if known_found:
        print(f"warning: {len(known_found)} known layer violations left (KNOWN in "
              f"scripts/check_layers.py, issue #11)")
    for rel, header in sorted(gone):
        print(f"note: src/{rel} no longer includes {header}: remove it from KNOWN")
    for e in errors:
        print(f"error: {e}")
    if errors:
        print(f"{len(errors)} new layer violations (docs/design.md, Layers)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
