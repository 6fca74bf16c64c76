#!/bin/bash
# Everything scripts/deps.sh installs, plus what bench/ needs: Docker (dockerd, containerd,
# runc, the docker CLI) to compare against, procps for ps/pgrep, util-linux for findmnt, wrk and
# haproxy and nginx-light for bench/mesh.sh, time for bench/pull.sh (docker-registry and skopeo come
# with deps.sh), pigz for bench/backup.sh, python3-cryptography for bench/c1m.py.
set -euo pipefail
exec "$(dirname "$0")/deps.sh" docker.io procps util-linux wrk haproxy nginx-light time pigz python3-cryptography "$@"
