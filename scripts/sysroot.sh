#!/bin/bash
# Makes a sysroot for cross-building shoal: the target architecture's libraries and
# headers, downloaded from the host's Debian archive and unpacked with dpkg -x.
# Usage: scripts/sysroot.sh ARCH DIR      (ARCH: armhf or arm64)
#
# Why not `dpkg --add-architecture` + libfoo-dev:armhf: multiarch ties every -dev package to
# the exact version of the host's one (Multi-Arch: same), so it breaks whenever the target's
# index lags the host's (a security update), and libhttp-parser-dev cannot be installed for
# two architectures at all. A private apt state (DIR.apt/) leaves the host's apt and dpkg
# untouched; only the sources are taken from the host.
# The sysroot is rebuilt only when this script changes (DIR/.stamp).
set -euo pipefail
ARCH=${1:?usage: sysroot.sh ARCH DIR}
DIR=${2:?usage: sysroot.sh ARCH DIR}
PKGS=(libc6-dev libuv1-dev libraft-dev libsqlite3-dev libarchive-dev libjansson-dev
      libssl-dev libldns-dev libhttp-parser-dev libyaml-dev)
# libcurl for the registry client, when the Makefile links it.
PKGS+=(libcurl4-openssl-dev)

stamp="$DIR/.stamp"
want=$(cat "$0" | sha256sum | cut -d' ' -f1)
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && exit 0

APT="$DIR.apt"
rm -rf "$DIR" "$APT"
mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/sources.list.d" "$DIR"
: >"$APT/status"
# The host's Debian sources only (other vendors' repositories have no such architectures).
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -qs 'debian-archive-keyring\|/debian' "$f" && cp "$f" "$APT/sources.list.d/"
done
opts=(-o APT::Architecture="$ARCH" -o APT::Architectures="$ARCH"
      -o Dir::State::Lists="$APT/lists" -o Dir::State::status="$APT/status"
      -o Dir::Cache::archives="$APT/archives" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
      -o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$APT/sources.list.d"
      -o Debug::NoLocking=1 -o APT::Sandbox::User=root -q)
# An index that fails to download (a mirror mid-sync) is skipped: the others still resolve.
apt-get "${opts[@]}" update >/dev/null || echo "sysroot: some $ARCH indexes failed, going on without them" >&2
apt-get "${opts[@]}" install -y --download-only --no-install-recommends "${PKGS[@]}" >/dev/null
# DIR/.shlibs: the libraries' shlibs lines, for the Depends of packages (scripts/package.sh)
for deb in "$APT"/archives/*.deb; do
    dpkg -x "$deb" "$DIR"
    dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./shlibs 2>/dev/null >>"$DIR/.shlibs" || true
done
# Absolute symlinks (libfoo.so -> /lib/...) would point into the host: make them relative.
find "$DIR" -type l -lname '/*' | while read -r link; do
    target=$(readlink "$link")
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$DIR$target")" "$link"
done
rm -rf "$APT" "$DIR"/usr/share/{doc,man,info,locale,lintian}
echo "$want" >"$stamp"
echo "sysroot: $DIR ($ARCH, $(du -sh "$DIR" | cut -f1))" >&2
