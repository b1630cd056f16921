#!/usr/bin/env bash
# Start a single-node SLURM "cluster" on this machine, for the slurm-marked tests and for
# trying the cluster profile without a cluster.
#
# As root on Debian/Ubuntu: installs munge, slurmctld, slurmd and slurm-client with apt-get
# when missing, writes a slurm.conf for localhost into the state directory, and starts
# munged (as the munge user), slurmctld and slurmd in the background, without systemd.
# Each daemon this script starts gets a pid file in the state directory; the matching
# scripts/slurm/stop_local_slurm.sh stops exactly those and nothing else.
#
# Usage:  scripts/slurm/start_local_slurm.sh [STATE_DIR]     (default /tmp/perovskite-slurm)
# Then:   export SLURM_CONF=STATE_DIR/slurm.conf   (printed at the end)
#
# No slurmdbd (accounting database) is started, so `sacct` does not work: run Snakemake
# with `--slurm-status-command squeue` (profiles/slurm-local does).
set -euo pipefail

STATE_DIR=${1:-${PEROVSKITE_SLURM_DIR:-/tmp/perovskite-slurm}}
WAIT_SECONDS=${PEROVSKITE_SLURM_WAIT:-60}

die() { echo "start_local_slurm: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, runs slurmd as root)"
[ -f /etc/debian_version ] || die "only Debian/Ubuntu are supported (no /etc/debian_version)"
command -v apt-get >/dev/null || die "apt-get not found"

# ---------------------------------------------------------------- packages
# libpmix-dev: the PMIx library (libpmix.so) that srun needs to start OpenMPI (CP2K) ranks.
PACKAGES=(munge slurmctld slurmd slurm-client libpmix-dev)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "start_local_slurm: installing ${missing[*]}"
    # Package scripts must not try to start the daemons (no systemd here; we start them).
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } \
        || die "apt-get install ${missing[*]} failed"
fi

mkdir -p "$STATE_DIR"/{state,spool,log}
STATE_DIR=$(cd "$STATE_DIR" && pwd)
CONF="$STATE_DIR/slurm.conf"

# ---------------------------------------------------------------- munge
# munged needs a key readable only by the munge user; Debian's postinst usually creates it.
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge /var/lib/munge /var/log/munge

if munge -n >/dev/null 2>&1; then
    echo "start_local_slurm: munged already running; using it (not started here, not stopped later)"
else
    # munged runs as the munge user, so its pid and log files live in a folder it owns,
    # outside STATE_DIR (which may sit in a folder only root can enter, e.g. pytest's).
    MUNGE_DIR=$(mktemp -d /tmp/perovskite-munge.XXXXXX)
    chown munge:munge "$MUNGE_DIR"
    echo "$MUNGE_DIR" >"$STATE_DIR/munge-dir"  # for the stop script
    runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_DIR/munged.pid" \
        --log-file="$MUNGE_DIR/munged.log"
    for _ in $(seq 20); do munge -n >/dev/null 2>&1 && break; sleep 0.5; done
    munge -n >/dev/null 2>&1 || die "munged did not start (see $MUNGE_DIR/munged.log)"
fi

# ---------------------------------------------------------------- slurm.conf
NODE=$(hostname -s)
# CPUs, sockets, cores, threads and RealMemory as slurmd measures them on this machine.
NODE_FACTS=$(slurmd -C | head -n1 | sed -e 's/^NodeName=[^ ]* //' -e 's/UpTime=.*//')
[ -n "$NODE_FACTS" ] || die "slurmd -C reported no node facts"

cat >"$CONF" <<EOF
# Single-node SLURM for tests, written by scripts/slurm/start_local_slurm.sh.
ClusterName=perovskite-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR/state
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
# No cgroups in containers: track processes by parent pid, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# Keep finished jobs visible to squeue for 5 min: without slurmdbd, squeue is the only
# place the executor can read a final state from.
MinJobAge=300
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# srun starts OpenMPI ranks through PMIx (libpmix-dev provides the library slurm loads).
MpiDefault=pmix
NodeName=$NODE NodeAddr=127.0.0.1 $NODE_FACTS State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
# The executor plugin removes SLURM_* variables (SLURM_CONF too) before its nested srun
# calls, so the configuration must sit where every SLURM command looks by default. Link
# it there, unless a configuration of a real cluster is already in place.
SYSTEM_CONF=/etc/slurm/slurm.conf
if [ -L "$SYSTEM_CONF" ] && [ "$(readlink "$SYSTEM_CONF")" = "$CONF" ]; then
    :
elif [ -e "$SYSTEM_CONF" ] || [ -L "$SYSTEM_CONF" ]; then
    die "$SYSTEM_CONF exists and is not ours; refusing to replace a real cluster's configuration"
else
    mkdir -p /etc/slurm
    ln -s "$CONF" "$SYSTEM_CONF"
    echo "$SYSTEM_CONF" >"$STATE_DIR/linked-conf"  # for the stop script
fi
export SLURM_CONF="$CONF"

# ---------------------------------------------------------------- daemons
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if running "$STATE_DIR/slurmctld.pid"; then
    echo "start_local_slurm: slurmctld already running (pid $(cat "$STATE_DIR/slurmctld.pid"))"
else
    # -i: ignore state from an earlier run that cannot be recovered; daemonises and
    # writes SlurmctldPidFile.
    slurmctld -f "$CONF" -i
fi
if running "$STATE_DIR/slurmd.pid"; then
    echo "start_local_slurm: slurmd already running (pid $(cat "$STATE_DIR/slurmd.pid"))"
else
    slurmd -f "$CONF" -N "$NODE"
fi

for _ in $(seq "$WAIT_SECONDS"); do
    state=$(sinfo -h -N -n "$NODE" -o '%t' 2>/dev/null || true)
    if [ "$state" = "idle" ]; then
        echo "start_local_slurm: node $NODE idle"
        echo "export SLURM_CONF=$CONF"
        exit 0
    fi
    sleep 1
done
die "node $NODE not idle after ${WAIT_SECONDS}s (state '${state:-none}'); logs in $STATE_DIR/log"
