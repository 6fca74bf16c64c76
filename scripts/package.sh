#!/bin/bash
# Builds the Debian package shoal_VERSION_ARCH.deb from a built shoal (`make deb` runs it).
# Usage: scripts/package.sh ARCH BUILD_DIR [SYSROOT]
#   ARCH      Debian architecture of BUILD_DIR/shoal (amd64, armhf, arm64)
#   SYSROOT   for a cross build: scripts/sysroot.sh's directory, whose .shlibs give the
#             library packages; this machine's dpkg database otherwise
# Writes BUILD_DIR/shoal_VERSION_ARCH.deb; the files come from packaging/ (docs/packaging.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:?usage: package.sh ARCH BUILD_DIR [SYSROOT]}
BUILD=${2:?usage: package.sh ARCH BUILD_DIR [SYSROOT]}
SYSROOT=${3:-}
VERSION=$(sed -n 's/^#define SHOAL_VERSION "\(.*\)"$/\1/p' src/base/version.h)
[ -n "$VERSION" ] || { echo "package: no SHOAL_VERSION in src/base/version.h" >&2; exit 1; }
case "$ARCH" in
amd64) TRIPLET=x86_64-linux-gnu ;;
armhf) TRIPLET=arm-linux-gnueabihf ;;
arm64) TRIPLET=aarch64-linux-gnu ;;
*) echo "package: unknown architecture $ARCH" >&2; exit 1 ;;
esac
STRIP=strip READELF=readelf
if [ "$ARCH" != "$(dpkg --print-architecture)" ]; then
    STRIP=$TRIPLET-strip READELF=$TRIPLET-readelf
    [ -f "$SYSROOT/.shlibs" ] || { echo "package: cross build without SYSROOT/.shlibs" >&2; exit 1; }
fi
# Reproducible: every date is the last commit's.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

ROOT="$BUILD/deb-root"
rm -rf "$ROOT"
install -D -m 755 "$BUILD/shoal" "$ROOT/usr/bin/shoal"
# as dh_strip does; the debug information stays in BUILD_DIR/shoal
$STRIP --remove-section=.comment --remove-section=.note --strip-unneeded "$ROOT/usr/bin/shoal"
# the OAR commands: shoal under their names (src/cli/cli_oar.c)
for cmd in oarsub oarstat oardel oarnodes oarhold oarresume; do
    ln -s shoal "$ROOT/usr/bin/$cmd"
done
install -D -m 644 packaging/shoal.service "$ROOT/lib/systemd/system/shoal.service"
install -D -m 644 packaging/daemon.json "$ROOT/etc/shoal/daemon.json"
install -D -m 644 packaging/shoal.1 "$ROOT/usr/share/man/man1/shoal.1"
gzip -9n "$ROOT/usr/share/man/man1/shoal.1"
for cmd in oarsub oarstat oardel oarnodes oarhold oarresume; do
    ln -s shoal.1.gz "$ROOT/usr/share/man/man1/$cmd.1.gz"
done
DOC="$ROOT/usr/share/doc/shoal"
install -D -m 644 packaging/copyright "$DOC/copyright"
{
    printf 'shoal (%s) unstable; urgency=medium\n\n' "$VERSION"
    printf '  * shoal %s, built from its source tree (README.md, docs/).\n\n' "$VERSION"
    printf ' -- shoal developers <dev@shoal.example>  %s\n' "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} >"$DOC/changelog"
gzip -9n "$DOC/changelog"
install -D -m 644 packaging/lintian-overrides "$ROOT/usr/share/lintian/overrides/shoal"

# Depends: the library packages, crun, and the ip and nft programs the daemon runs. Native:
# dpkg-shlibdeps (symbols files give the oldest versions that work). Cross: the target's
# packages are not installed here, so the shlibs lines of the sysroot's packages name them,
# as dpkg-shlibdeps does for libraries without symbols files.
native_libdeps() {
    local dir
    dir=$(mktemp -d)
    mkdir -p "$dir/debian/shoal/usr/bin" "$dir/debian/shoal/DEBIAN"
    printf 'Source: shoal\n\nPackage: shoal\nArchitecture: any\n' >"$dir/debian/control"
    cp "$ROOT/usr/bin/shoal" "$dir/debian/shoal/usr/bin/"
    (cd "$dir" && dpkg-shlibdeps -O "$dir/debian/shoal/usr/bin/shoal") | sed -n 's/^shlibs:Depends=//p' | sed 's/, /\n/g'
    rm -rf "$dir"
}
# The package of a library from its soname, by the shlibs lines of FILES.
shlibs_dep() {
    local soname=$1 name ver dep
    shift
    # libfoo.so.1 -> "libfoo 1"; libfoo-1.2.so -> "libfoo-1.2" with an empty version
    if [[ $soname =~ ^(.*)\.so\.(.*)$ ]]; then
        name=${BASH_REMATCH[1]} ver=${BASH_REMATCH[2]}
    else
        name=${soname%.so} ver=
    fi
    dep=$(cat "$@" | awk -v n="$name" -v v="$ver" '!found && $1 == n && $2 == v {
        $1 = ""; $2 = ""; sub(/^ +/, ""); print; found = 1 }')
    [ -n "$dep" ] || { echo "package: no shlibs entry for $soname" >&2; exit 1; }
    echo "$dep"
}
cross_libdeps() {
    local soname
    for soname in $($READELF -d "$ROOT/usr/bin/shoal" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        shlibs_dep "$soname" "$SYSROOT/.shlibs"
    done
}
# The libraries the stubs of src/base/lazy_stubs.S load (not linked, so not seen above).
stubbed_libdeps() {
    local soname shlibs
    if [ -n "$SYSROOT" ]; then shlibs=("$SYSROOT/.shlibs"); else shlibs=(/var/lib/dpkg/info/*.shlibs); fi
    for soname in $(sed -n 's/^STUB_LIB([a-z0-9_]*, "\(.*\)")$/\1/p' src/base/lazy_stubs.def); do
        shlibs_dep "$soname" "${shlibs[@]}"
    done
}
if [ -n "$SYSROOT" ]; then libdeps=$(cross_libdeps); else libdeps=$(native_libdeps); fi
[ -n "$libdeps" ] || { echo "package: no library dependencies found" >&2; exit 1; }
stubbed=$(stubbed_libdeps)
[ -n "$stubbed" ] || { echo "package: no stubbed library found in src/base/lazy_stubs.def" >&2; exit 1; }
# libcurl, libarchive and libyaml are loaded when first used (src/base/curl_lazy.c,
# archive_lazy.c, yaml_lazy.c), not linked: named here (curl_multi_poll came with libcurl 7.66).
depends=$(printf '%s\n' "$libdeps" "$stubbed" crun iproute2 nftables "libcurl4 (>= 7.66.0)" libarchive13 libyaml-0-2 |
    sort -u | paste -sd, - | sed 's/,/, /g')

mkdir -p "$ROOT/DEBIAN"
install -m 755 packaging/postinst packaging/prerm packaging/postrm "$ROOT/DEBIAN/"
echo /etc/shoal/daemon.json >"$ROOT/DEBIAN/conffiles"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
    LC_ALL=C sort -z | xargs -0 md5sum) >"$ROOT/DEBIAN/md5sums"
cat >"$ROOT/DEBIAN/control" <<EOF
Package: shoal
Version: $VERSION
Architecture: $ARCH
Maintainer: shoal developers <dev@shoal.example>
Installed-Size: $(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
Depends: $depends
Recommends: tzdata
Suggests: buildah
Section: admin
Priority: optional
Description: cluster orchestrator for small boards
 shoal runs Docker Swarm-style services (replicated containers, rolling
 updates, overlay networks, a routing mesh) on clusters of small boards such
 as the Raspberry Pi, ODROID and Pine64, in one small C binary. Managers keep
 the cluster state replicated with Raft; every node runs its tasks as OCI
 containers with crun.
 .
 This package ships the shoal command, its node daemon as shoal.service and
 /etc/shoal/daemon.json.
EOF
# files owned by root, modes as installed above
find "$ROOT" -type d -exec chmod 755 {} +
out="$BUILD/shoal_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$out" >/dev/null
echo "$out"
