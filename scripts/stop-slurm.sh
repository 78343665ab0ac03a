#!/usr/bin/env bash
# Stop the single-node Slurm started by scripts/start-slurm.sh: cancel its jobs, stop slurmd
# and slurmctld, and clear their state so the next start is clean. munged is left running
# (one per machine, shared by any other Slurm or user of munge here).
#
#   scripts/stop-slurm.sh            # state in $HEPML_SLURM_DIR, default /tmp/hepml-slurm
set -euo pipefail

dir=${HEPML_SLURM_DIR:-/tmp/hepml-slurm}
export SLURM_CONF=$dir/slurm.conf

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if alive "$dir/slurmctld.pid"; then
  jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
  if [ -n "$jobs" ]; then
    # shellcheck disable=SC2086
    timeout 10 scancel $jobs 2>/dev/null || true
    for _ in $(seq 50); do
      [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null || true)" ] && break
      sleep 0.1
    done
  fi
fi
for daemon in slurmd slurmctld; do
  if alive "$dir/$daemon.pid"; then kill "$(cat "$dir/$daemon.pid")" || true; fi
done
for _ in $(seq 100); do
  alive "$dir/slurmd.pid" || alive "$dir/slurmctld.pid" || break
  sleep 0.1
done
for daemon in slurmd slurmctld; do
  if alive "$dir/$daemon.pid"; then kill -9 "$(cat "$dir/$daemon.pid")" || true; fi
done
rm -rf "$dir/state" "$dir/spool" "$dir"/*.pid
echo "stop-slurm: stopped the cluster in $dir" >&2
