#!/bin/bash
# Install the packages shoal builds and tests with (Debian 12; chromium, nodejs and npm
# run the dashboard's browser tests; libclang-rt-14-dev holds clang's libFuzzer, for
# `make fuzz`). Idempotent: a fast no-op
# when every package is installed; runs `apt-get update` only when something is missing.
# Usage: scripts/deps.sh [EXTRA-PACKAGE...]
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# Debian's npm only when no npm is there: NodeSource's nodejs ships its own and
# conflicts with Debian's package.
NPM=(); command -v npm >/dev/null || NPM=(npm)
PKGS=(build-essential pkg-config libraft-dev libuv1-dev libsqlite3-dev libarchive-dev
      libssl-dev libhttp-parser-dev libjansson-dev libldns-dev libcurl4-openssl-dev libyaml-dev crun
      busybox-static tini docker-registry skopeo buildah apache2-utils zstd tzdata
      python3-pytest clang libclang-rt-14-dev valgrind chromium nodejs nftables iproute2 "${NPM[@]}" "$@")

# Cross builds for armhf/arm64 and their tests under qemu-user, .deb packages checked by lintian
# (docs/packaging.md); mmdebstrap makes the fresh Debian root the package is installed in.
# The ARM libraries come in a sysroot made by scripts/sysroot.sh.
PKGS+=(gcc-arm-linux-gnueabihf gcc-aarch64-linux-gnu qemu-user-static file dpkg-dev lintian mmdebstrap)

missing=()
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
# Update the lists first only if apt cannot resolve a missing package as they are; if the
# install still fails (stale lists: 404 on download), update once and retry.
if ! $SUDO apt-get install -y --no-install-recommends --dry-run "${missing[@]}" >/dev/null 2>&1; then
    $SUDO apt-get update
fi
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
