#!/usr/bin/env bash
# Stop the daemons that scripts/slurm/start_local_slurm.sh started, by their pid files in
# the state directory, and nothing else. Packages stay installed: never purge them here
# (removing munge's library would also remove OpenMPI and CP2K).
#
# Usage:  scripts/slurm/stop_local_slurm.sh [STATE_DIR]      (default /tmp/perovskite-slurm)
set -uo pipefail

STATE_DIR=${1:-${PEROVSKITE_SLURM_DIR:-/tmp/perovskite-slurm}}
[ -d "$STATE_DIR" ] || { echo "stop_local_slurm: no state directory $STATE_DIR"; exit 0; }

stop() {
    local name=$1 pidfile=$2 pid
    if [ ! -s "$pidfile" ]; then
        echo "stop_local_slurm: $name: no pid file (not started by start_local_slurm.sh)"
        return
    fi
    pid=$(cat "$pidfile")
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "stop_local_slurm: $name (pid $pid) is not running"
        rm -f "$pidfile"
        return
    fi
    kill -TERM "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop_local_slurm: $name (pid $pid) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
    echo "stop_local_slurm: stopped $name (pid $pid)"
}

# Reverse order of start: compute daemon, controller, then authentication.
stop slurmd "$STATE_DIR/slurmd.pid"
stop slurmctld "$STATE_DIR/slurmctld.pid"
if [ -s "$STATE_DIR/munge-dir" ]; then
    MUNGE_DIR=$(cat "$STATE_DIR/munge-dir")
    stop munged "$MUNGE_DIR/munged.pid"
    rm -rf "$MUNGE_DIR" "$STATE_DIR/munge-dir"
else
    echo "stop_local_slurm: munged: not started by start_local_slurm.sh"
fi

# The /etc/slurm/slurm.conf link, only if it is the one the start script made.
if [ -s "$STATE_DIR/linked-conf" ]; then
    link=$(cat "$STATE_DIR/linked-conf")
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$STATE_DIR/slurm.conf" ]; then
        rm -f "$link"
        echo "stop_local_slurm: removed link $link"
    fi
    rm -f "$STATE_DIR/linked-conf"
fi

