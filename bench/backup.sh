#!/bin/bash
# Volume backup and restore throughput: `shoal volume backup` / `shoal volume restore` of a
# volume against `tar | gzip` and `tar | pigz` (when Debian's pigz is installed) of the same
# directory, side by side in one run. The volume holds mixed data: half text (log-like lines,
# gzip takes it to about a fifth), 40 % random bytes (incompressible), 10 % small files of both
# kinds (4-64 KB). Every side reads the same directory, warm in the page cache (each side
# runs after a first read of it), and writes to the same file system.
#
# What each side does:
#   shoal   backup: libarchive pax tar + gzip into the daemon's backup dir, fsync, sha256
#           (checksum file), retention; restore: sha256 verify, extract into a fresh
#           directory, swap it in place of _data, remove the old data.
#   tar|gzip, tar|pigz   backup: tar -cf - | gzip (-6, as libarchive's default) > FILE;
#           restore: gzip -dc FILE | tar -xf - into an empty directory.
# Usage: bench/backup.sh [quick]   (quick: a 100 MB volume; env SIZE_MB=1024 otherwise)
export SIDES=shoal
source "$(dirname "$0")/lib.sh"
SIZE_MB=${SIZE_MB:-1024}
[ "${1:-}" = quick ] && SIZE_MB=100
[ "${1:-}" = "" ] || [ "${1:-}" = quick ] || die "usage: bench/backup.sh [quick]"
for c in tar gzip sha256sum python3; do command -v "$c" >/dev/null || die "missing $c"; done
PIGZ=$(command -v pigz || true)
VOL=benchvol

# make_data DIR: SIZE_MB of mixed files (see the header), the same for a given SIZE_MB.
make_data() {
    python3 - "$1" "$SIZE_MB" <<'EOF'
import os, random, sys
root, size_mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(16)
words = ["GET", "POST", "/api/v1/orders", "/static/app.js", "user", "session", "ok", "error",
         "timeout", "db", "query", "cache", "miss", "hit", "worker", "started", "stopped",
         "INFO", "WARN", "DEBUG", "latency_ms", "bytes", "client", "upstream", "retry"]
lines, total = [], 0
while total < 8 << 20:  # an 8 MB pool of distinct text
    lines.append("2026-12-%02d %02d:%02d:%02d.%03d %s %s %s=%d %s=%d id=%08x\n" % (
        rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
        rng.randint(0, 999), rng.choice(words), rng.choice(words), rng.choice(words),
        rng.randint(0, 99999), rng.choice(words), rng.randint(0, 999), rng.getrandbits(32)))
    total += len(lines[-1])
pool = "".join(lines).encode()
MB = 1 << 20

def text(n):
    off = rng.randrange(len(pool))
    data = (pool[off:] + pool[:off]) * (n // len(pool) + 1)
    return data[:n]

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

budget = {"text": size_mb * MB // 2, "random": size_mb * MB * 4 // 10}
budget["small"] = size_mb * MB - budget["text"] - budget["random"]
i = 0
for kind in ("text", "random"):
    left = budget[kind]
    while left > 0:
        n = min(left, rng.randint(1, 16) * MB)
        write("%s/%s/%s-%04d.%s" % (root, kind, kind, i, "log" if kind == "text" else "bin"),
              text(n) if kind == "text" else os.urandom(n))
        left -= n
        i += 1
left = budget["small"]
while left > 0:
    n = min(left, rng.randint(4, 64) * 1024)
    write("%s/small/d%02d/f%05d" % (root, i % 50, i), text(n) if i % 2 else os.urandom(n))
    left -= n
    i += 1
EOF
}

start_daemon() {
    mkdir -p "$SH/state" "$SH/run" "$WORK/backups"
    echo "{\"backup-dir\": \"$WORK/backups\"}" >"$SH/daemon.json"
    local port i
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    ns_spawn "$SH" "$SHOAL" daemon --state-dir "$SH/state" --socket "$SH/shoal.sock" \
        --run-dir "$SH/run" --config "$SH/daemon.json"
    for i in $(seq 300); do
        [ -S "$SH/shoal.sock" ] && break
        ns_alive "$SH" || { tail -20 "$SH/log" >&2; die "shoal daemon exited"; }
        sleep 0.1
    done
    cli shoal swarm init --advertise-addr "127.0.0.1:$port" >/dev/null
}

# timed CMD...: runs CMD, prints its wall time in seconds.
timed() {
    local t0; t0=$(now)
    "$@" >/dev/null
    calc "$(now) - $t0"
}

tar_backup() { tar -C "$1" -cf - . | "$2" -6 >"$3"; }
tar_restore() { mkdir "$3" && "$2" -dc "$1" | tar -C "$3" -xf -; }

trap 'shoal_stop; rm -rf "$WORK"' EXIT
[ -x "$SHOAL" ] || die "no shoal binary at $SHOAL (make, or set SHOAL=)"
start_daemon
cli shoal volume create "$VOL" >/dev/null
DATA=$SH/state/volumes/$VOL/_data
log "making ${SIZE_MB} MB of data in $DATA"
make_data "$DATA"
FILES=$(find "$DATA" -type f | wc -l)
tar -C "$DATA" -cf - . | cat >/dev/null   # warm: every side reads it from the page cache
sync

declare -A B R S
log "tar | gzip"
B[gzip]=$(timed tar_backup "$DATA" gzip "$WORK/gzip.tar.gz")
S[gzip]=$(stat -c %s "$WORK/gzip.tar.gz")
R[gzip]=$(timed tar_restore "$WORK/gzip.tar.gz" gzip "$WORK/gzip.out")
rm -rf "$WORK/gzip.out" "$WORK/gzip.tar.gz"
if [ -n "$PIGZ" ]; then
    log "tar | pigz ($(nproc) threads)"
    B[pigz]=$(timed tar_backup "$DATA" pigz "$WORK/pigz.tar.gz")
    S[pigz]=$(stat -c %s "$WORK/pigz.tar.gz")
    R[pigz]=$(timed tar_restore "$WORK/pigz.tar.gz" pigz "$WORK/pigz.out")
    rm -rf "$WORK/pigz.out" "$WORK/pigz.tar.gz"
fi
log "shoal volume backup / restore"
CLI_TIMEOUT=1200
B[shoal]=$(timed cli shoal volume backup "$VOL")
S[shoal]=$(stat -c %s "$WORK"/backups/$VOL/*.tar.gz)
R[shoal]=$(timed cli shoal volume restore "$VOL")
[ "$(find "$DATA" -type f | wc -l)" -eq "$FILES" ] || die "shoal restore: not $FILES files back"

mbps() { calc "$SIZE_MB / $1"; }
echo "## Volume backup and restore: ${SIZE_MB} MB, $FILES files (half text, 40 % random, 10 % small files), $(machine)"
echo
echo "| side | backup s | backup MB/s | archive MB | restore s | restore MB/s |"
echo "|---|---:|---:|---:|---:|---:|"
for s in shoal gzip pigz; do
    [ -n "${B[$s]:-}" ] || continue
    case $s in shoal) name="shoal volume backup / restore" ;; *) name="tar \\| $s" ;; esac
    echo "| $name | ${B[$s]} | $(mbps "${B[$s]}") | $(calc "${S[$s]} / 1048576") | ${R[$s]} | $(mbps "${R[$s]}") |"
done
echo
echo "shoal / tar|gzip: backup $(ratio "${B[shoal]}" "${B[gzip]}")x, restore $(ratio "${R[shoal]}" "${R[gzip]}")x (goal: 1.2x at most)"
