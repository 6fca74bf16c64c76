#!/bin/bash
# Batch throughput (issue 14): N trivial jobs (`true`) end to end, from submission to the last
# one ended, on this machine's cores, side by side in one run:
#   shoal         a one-node swarm (lib.sh's stack: own namespaces); the jobs are `shoal job
#                 sub --array 1000 -l core=1,walltime=0:1:0 true` (N/1000 of them: an
#                 array has at most 1000 jobs): busybox containers (crun), one core each;
#                 JOB_KIND=host adds --host: host processes, the cheapest kind (as Slurm's,
#                 no container), not the default (not measured since a stall was fixed:
#                 docs/benchmarks.md)
#   slurm         Debian's slurm-wlm: slurmctld + slurmd + munged on this host (own config,
#                 state and ports in the bench's directory; stopped on any exit), Slurm's
#                 defaults but what the run needs (below); `sbatch --array=1-N --wrap=true`
#   slurm-tuned   the same with the high-throughput guide's settings
#                 (https://slurm.schedmd.com/high_throughput.html): SchedulerParameters=
#                 defer,max_rpc_cnt=150,sched_min_interval=2000000,batch_sched_delay=20,
#                 MessageTimeout=30, MinJobAge=2, SlurmctldDebug/SlurmdDebug=error, no job
#                 accounting nor its gathering, no epilog/prolog.
# Both Slurm configurations need, to run N jobs at all on one 2-core node: the node
# (CPUs=nproc), one partition, SelectType=select/cons_tres with CR_CPU (the default
# select/linear gives a job the whole node: one job at a time), MaxArraySize and MaxJobCount
# above N, ProctrackType=proctrack/linuxproc and TaskPlugin=task/none (no cgroup set-up).
# Figure: jobs/s = N / (time the last job ended - submission start; the end is what each side
# recorded: shoal's latest stopped_at, Slurm's latest end time, not a poll's time; shoal: N at most
# its job-history, 10,000 by default), shoal's daemon and jobs CPU, and each side's check that
# every job ended well (shoal: Terminated with exit code 0; Slurm: COMPLETED, from squeue).
# Usage: bench/jobs.sh [--quick | N]   (N default 10000; --quick: 200, Slurm 20; as root; env:
#        SIDES="shoal slurm slurm-tuned", JOB_KIND=container|host (shoal's jobs), SLURM_N
#        (Slurm's N, default N: Slurm runs about one job a second here), TIMEOUT=7200 s per side,
#        POLL_S=1 (seconds between polls))
# The scheduler alone: `make bench && build/sched_bench [JOBS [NODES [CORES]]]`.
SIDES=${SIDES:-shoal slurm slurm-tuned}
source "$(dirname "$0")/lib.sh"
N=10000
case ${1:-} in
--quick) N=200 SLURM_N=${SLURM_N:-20} ;;
'') ;;
*) [[ $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || die "usage: $0 [--quick | N]"; N=$1 ;;
esac
SLURM_N=${SLURM_N:-$N}
TIMEOUT=${TIMEOUT:-7200}
case ${JOB_KIND:-container} in   # shoal's jobs: busybox containers, or host processes
host) JOB_KIND_ARGS=(--host) ;; container) JOB_KIND_ARGS=() ;; *) die "JOB_KIND: host or container" ;;
esac
CORES=$(nproc)

# wait_for DESC TIMEOUT_S CMD...: polls CMD (true when done) every $POLL_S s (default 1).
# A poll is one client call and bash: what the bench spends polling is taken from the machine
# it measures (a python3 per poll, every 0.2 s, was about a quarter of it: 0.5 s of CPU a
# poll through the pyenv shim, against 0.025 s for the CLI alone). The figure's end is
# not the poll's time but the ends each side recorded (read once, at the end).
POLL_S=${POLL_S:-1}
wait_for() {
    local desc=$1 end=$((EPOCHSECONDS + $2)); shift 2
    until "$@"; do
        [ "$EPOCHSECONDS" -le "$end" ] || { echo "$desc: not done after $TIMEOUT s" >&2; return 1; }
        sleep "$POLL_S"
    done
}

# ---- shoal ----
# shoal_ended ID: the job ended (Terminated or Error), from its inspect output: one CLI call,
# the state matched by bash (the job's own "state" is the only one the output has).
shoal_ended() {
    local out
    out=$(cli shoal job inspect "$1" 2>/dev/null) || return 1
    [[ $out =~ \"state\":\ *\"(Terminated|Error)\" ]]
}
# shoal_summary: "ENDED BAD LAST_STOP" of all jobs, from one `job ls`: how many ended, how
# many did not end Terminated with exit code 0, and the latest stop time (s since the epoch,
# the daemon's clock: the same host's as the bench's $EPOCHREALTIME).
shoal_summary() { cli shoal job ls --format json | /usr/bin/python3 -c '
import json, sys
jobs = json.load(sys.stdin)
ended = [j for j in jobs if j["state"] in ("Terminated", "Error")]
bad = sum(1 for j in jobs if j["state"] != "Terminated" or j.get("exit_code") != 0)
print(len(ended), bad, max((j.get("stopped_at", 0) for j in ended), default=0) / 1000)'; }
# shoal_all_ended: all N jobs ended; sets SUMMARY (a python3 per poll, but only once the last
# job ended: the other core's job ends about then too, so one or two polls).
shoal_all_ended() { SUMMARY=$(shoal_summary) && [ "${SUMMARY%% *}" -ge "$N" ]; }

# cpu_ms PID: "DAEMON CHILDREN": the process's CPU time (utime + stime, its threads') and that
# of the children it reaped (cutime + cstime: the jobs), in ms.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d %d\n", ($14 + $15) * 1000 / hz, ($16 + $17) * 1000 / hz }' "/proc/$1/stat"; }

shoal_jobs() {
    local t0 t1 first= last bad left=$N k pid c0 c1
    pid=$(pgrep -P "$(ns_init "$SH")" -x shoal | head -1)
    c0=$(cpu_ms "$pid")
    t0=$(now)
    while [ "$left" -gt 0 ]; do   # arrays of at most 1000 jobs (JOB_MAX_ARRAY)
        k=$((left < 1000 ? left : 1000))
        last=$(cli shoal job sub --array "$k" -l core=1,walltime=0:1:0 "${JOB_KIND_ARGS[@]}" true | tail -1)
        first=${first:-$((last - k + 1))}
        left=$((left - k))
    done
    log "shoal: $N jobs submitted ($first..$last) in $(calc "$(now) - $t0") s"
    wait_for shoal "$TIMEOUT" shoal_ended "$last"   # FIFO: the last one ends (about) last
    wait_for shoal "$TIMEOUT" shoal_all_ended
    read -r _ bad t1 <<<"$SUMMARY"
    c1=$(cpu_ms "$pid")   # read once the jobs ended: all of them reaped by then
    [ "$bad" = 0 ] || { echo "shoal: $bad jobs did not end Terminated with exit code 0" >&2; return 1; }
    echo "jobs $N"
    echo "seconds $(calc "$t1 - $t0")"
    echo "rate $(calc "$N / ($t1 - $t0)")"
    echo "cpu_daemon $(calc "(${c1% *} - ${c0% *}) / 1000")"
    echo "cpu_children $(calc "(${c1#* } - ${c0#* }) / 1000")"
}

# ---- Slurm ----
SL=$WORK/slurm
slurm_conf() {   # slurm_conf default|tuned
    local host; host=$(hostname -s)
    cat <<CONF
ClusterName=shoalbench
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$SL/munge.sock
StateSaveLocation=$SL/state
SlurmdSpoolDir=$SL/spool
SlurmctldPidFile=$SL/slurmctld.pid
SlurmdPidFile=$SL/slurmd.pid
SlurmctldLogFile=$SL/slurmctld.log
SlurmdLogFile=$SL/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MaxArraySize=$((SLURM_N + 1))
MaxJobCount=$((SLURM_N * 2 + 1000))
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$CORES State=UNKNOWN
PartitionName=bench Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    [ "$1" = tuned ] || return 0
    cat <<CONF
SchedulerParameters=${SLURM_TUNED_SCHED:-defer,max_rpc_cnt=150,sched_min_interval=2000000,batch_sched_delay=20}
MessageTimeout=30
MinJobAge=${SLURM_TUNED_MINAGE:-2}
SlurmctldDebug=error
SlurmdDebug=error
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
CONF
}

slurm_up() {   # slurm_up default|tuned
    local i
    mkdir -p "$SL/state" "$SL/spool"
    SLURMCTLD_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    SLURMD_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    slurm_conf "$1" >"$SL/slurm.conf"
    export SLURM_CONF=$SL/slurm.conf
    munged --force --socket="$SL/munge.sock" --key-file=/etc/munge/munge.key \
        --pid-file="$SL/munged.pid" --seed-file="$SL/munge.seed" --log-file="$SL/munged.log"
    slurmctld -i -f "$SL/slurm.conf"
    slurmd -f "$SL/slurm.conf"
    for i in $(seq 300); do
        sinfo -h -o '%T' 2>/dev/null | grep -qx idle && break
        sleep 0.1
    done
    sinfo -h -o '%T' | grep -qx idle || { tail -5 "$SL"/*.log >&2; die "slurm: the node is not idle after 30 s"; }
    log "slurm ($1): $(slurmctld -V) up on 127.0.0.1:$SLURMCTLD_PORT"
}

slurm_down() {
    local f p i
    for f in slurmd slurmctld munged; do
        [ -f "$SL/$f.pid" ] || continue
        p=$(cat "$SL/$f.pid")
        kill -TERM "$p" 2>/dev/null || continue
        for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    rm -rf "$SL"
}
slurm_start() { slurm_up default; }
slurm_stop() { slurm_down; }
slurm-tuned_start() { slurm_up tuned; }
slurm-tuned_stop() { slurm_down; }
trap 'slurm_down; rm -rf "$WORK"' EXIT   # the daemons stop on any exit

slurm_pending() { [ -z "$(squeue -h -t PD,CF,R,CG -o %i)" ]; }   # true when none is left

# slurm_last_end ID FALLBACK: the latest end time squeue shows of the array's tasks (s since the
# epoch; Slurm's resolution is a second), or FALLBACK when some are no longer shown (MinJobAge).
slurm_last_end() {
    local ends
    ends=$(squeue -h -t all -j "$1" -o '%e' | sort | tail -1)
    if [ "$(squeue -h -t all -j "$1" -o %i | wc -l)" -ge "$SLURM_N" ] && [ -n "$ends" ]; then
        date -d "$ends" +%s
    else
        echo "$2"
    fi
}

slurm_jobs() {
    local t0 t1 out id bad
    t0=$(now)
    out=$(sbatch --parsable --array="1-$SLURM_N" -n 1 -c 1 -o /dev/null -e /dev/null --wrap=true)
    id=${out%%;*}
    log "$1: $SLURM_N jobs submitted (array $id) in $(calc "$(now) - $t0") s"
    wait_for "$1" "$TIMEOUT" slurm_pending
    t1=$(slurm_last_end "$id" "$(now)")
    # every task ended COMPLETED (0:0); squeue keeps ended jobs MinJobAge s (default 300)
    bad=$(squeue -h -t all -j "$id" -o '%T' | grep -vcx COMPLETED || true)
    [ "$bad" = 0 ] || { echo "$1: $bad jobs did not complete" >&2; return 1; }
    echo "jobs $SLURM_N"
    echo "seconds $(calc "$t1 - $t0")"
    echo "rate $(calc "$SLURM_N / ($t1 - $t0)")"
    echo "cpu_daemon -"   # not measured for Slurm (three daemons)
    echo "cpu_children -"
}
slurm-tuned_jobs() { slurm_jobs slurm-tuned; }

case " $SIDES " in *" slurm"*)  # Slurm's commands only for its sides
    for c in munged slurmctld slurmd sbatch squeue sinfo; do command -v "$c" >/dev/null ||
        die "missing $c: apt-get install slurm-wlm munge"; done ;;
esac
for s in $SIDES; do
    case $s in shoal) run_side shoal shoal_jobs ;; slurm) run_side slurm slurm_jobs ;;
    slurm-tuned) run_side slurm-tuned slurm-tuned_jobs ;; *) die "unknown side $s" ;; esac || FAILED=1
done

echo "## $N trivial jobs (true), submission to the last one ended: $(machine)"
printf '%-12s %8s %10s %10s %12s %12s\n' side jobs seconds jobs/s "daemon CPU s" "children s"
for s in $SIDES; do   # CPU: shoal's daemon and the jobs it reaped, from submission to the last end
    printf '%-12s %8s %10s %10s %12s %12s\n' "$s" "$(fig "$s" jobs)" "$(fig "$s" seconds)" \
        "$(fig "$s" rate)" "$(fig "$s" cpu_daemon)" "$(fig "$s" cpu_children)"
done
exit $FAILED
