#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine (Debian's slurm-wlm and munge, two fake GPUs as gres), the
# tiny DAG of tests/slurm/tiny.yaml run through profiles/slurm as a user would (on the GPU partition, as the
# profile ships, then on a CPU-only partition as the profile documents), each compared with a local run of
# the same config. The daemons are stopped on exit, whatever happens. Needs root (apt, munge, slurmd).
#
#   bash tests/slurm/cluster.sh            # from the repository root, after `make test` built .venv
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BIN=${BIN:-$ROOT/.venv/bin}
WORK=$(mktemp -d /tmp/memorization-slurm.XXXXXX)
HOST=$(hostname)
# The cluster's configuration goes where every SLURM command looks (the jobs' srun too); a configuration
# already there is put back on exit.
CONF_DIR=/etc/slurm
mkdir -p "$CONF_DIR"
[ -f "$CONF_DIR/slurm.conf" ] && cp "$CONF_DIR/slurm.conf" "$WORK/slurm.conf.saved"
[ -f "$CONF_DIR/gres.conf" ] && cp "$CONF_DIR/gres.conf" "$WORK/gres.conf.saved"

if ! command -v slurmctld > /dev/null || ! command -v munged > /dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge > "$WORK/apt.log"
fi

stop() {
  for pid in "$WORK"/slurmd.pid "$WORK"/slurmctld.pid; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2> /dev/null || true
  done
  [ -n "${MUNGE_PID:-}" ] && kill "$MUNGE_PID" 2> /dev/null || true
  for f in slurm.conf gres.conf; do
    if [ -f "$WORK/$f.saved" ]; then cp "$WORK/$f.saved" "$CONF_DIR/$f"; else rm -f "$CONF_DIR/$f"; fi
  done
}
trap stop EXIT

mkdir -p "$WORK"/{state,spool,gpus}
for i in 0 1; do mknod "$WORK/gpus/gpu$i" c 1 3; done  # character devices, so SLURM sets CUDA_VISIBLE_DEVICES
cat > "$CONF_DIR/slurm.conf" << CONF
ClusterName=local
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
GresTypes=gpu
NodeName=$HOST CPUs=2 RealMemory=20000 Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
echo "NodeName=$HOST Name=gpu File=$WORK/gpus/gpu[0-1]" > "$CONF_DIR/gres.conf"

if [ ! -f /etc/munge/munge.key ]; then
  mkdir -p /etc/munge && dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2> /dev/null
  chown munge: /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge: /run/munge
runuser -u munge -- munged --foreground > "$WORK/munged.log" 2>&1 &
MUNGE_PID=$!
sleep 1
slurmctld
slurmd
for _ in $(seq 60); do
  state=$(sinfo -h -o %T 2> /dev/null || true)
  [ "$state" = idle ] && break
  sleep 1
done
[ "$state" = idle ] || { echo "SLURM did not come up (node state: '$state'); logs in $WORK"; exit 1; }
echo "one-node SLURM up: $(sinfo -h -o '%P %D %T %G')"

run_local() {
  "$BIN/snakemake" -s "$ROOT/Snakefile" -d "$1" --configfile "$ROOT/tests/slurm/tiny.yaml" \
    --workflow-profile none --cores 2 --quiet
}
run_slurm() {  # as a user would: the profile, plus what this test cluster needs (no accounts, quick polling)
  "$BIN/snakemake" -s "$ROOT/Snakefile" -d "$1" --configfile "$ROOT/tests/slurm/tiny.yaml" \
    --workflow-profile "$ROOT/profiles/slurm" --slurm-no-account \
    --slurm-init-seconds-before-status-checks 2 --quiet "${@:2}"
}

SECONDS=0
run_local "$WORK/local"
echo "local run: ${SECONDS} s"

SECONDS=0
run_slurm "$WORK/gpu"
echo "through SLURM, GPU partition (the profile as shipped): ${SECONDS} s"
"$BIN/python" "$ROOT/tests/slurm/compare_tables.py" "$WORK/local" "$WORK/gpu"
# every training job was given a (fake) GPU by SLURM, and said so in its log
trained=$(ls "$WORK"/gpu/results/logs/train/*.log | wc -l)
granted=$(grep -l "GPUs granted by the environment:.*CUDA_VISIBLE_DEVICES=[0-9]" "$WORK"/gpu/results/logs/train/*.log | wc -l)
[ "$trained" -gt 0 ] && [ "$granted" = "$trained" ] || { echo "only $granted of $trained training jobs got a GPU"; exit 1; }
echo "$granted of $trained training jobs were given a GPU by SLURM"

SECONDS=0
run_slurm "$WORK/cpu" --set-resources train:gpu=0 metric:gpu=0
echo "through SLURM, CPU-only partition (set-resources gpu: 0): ${SECONDS} s"
"$BIN/python" "$ROOT/tests/slurm/compare_tables.py" "$WORK/local" "$WORK/cpu"
if grep -l "GPUs granted by the environment" "$WORK"/cpu/results/logs/train/*.log; then echo "a job got a GPU"; exit 1; fi
rm -rf "$WORK/local" "$WORK/gpu" "$WORK/cpu"
echo "SLURM test passed"
