#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for testing `snakemake --profile slurm` for real.
#
# Usage (as root, Debian/Ubuntu):
#   tests/slurm/cluster.sh install   # apt-get install slurm-wlm munge (Debian packages)
#   tests/slurm/cluster.sh start     # write /etc/slurm/{slurm,gres,cgroup}.conf, start munged, slurmctld, slurmd
#   tests/slurm/cluster.sh status    # sinfo + squeue
#   tests/slurm/cluster.sh stop      # stop (by pid) only the daemons that `start` started
#
# The cluster: one node (this host) in two partitions, `cpu` (default) and `gpu`, with one GPU
# GRES that is not a real device (gres.conf: AutoDetect=off, File=/dev/null), so GPU requests
# (`--gpus=1`) are scheduled and can be checked on a machine without a GPU. No accounting
# database: the workflow's slurm profile therefore needs `slurm-status-command: squeue`, and
# MinJobAge=3600 keeps finished jobs visible to `squeue`/`scontrol` for an hour.
# The node advertises HHFM_SLURM_CPUS (default 16) CPUs and HHFM_SLURM_MEM_MB (default 64000) MB
# whatever the machine has (SlurmdParameters=config_overrides), so rules asking for more threads
# or memory than a small test machine has still get scheduled (they just share its cores).
# State, logs and pid files live in HHFM_SLURM_STATE (default /tmp/hhfm-slurm).
# `start` refuses to overwrite an /etc/slurm/slurm.conf it did not write.
set -euo pipefail

STATE=${HHFM_SLURM_STATE:-/tmp/hhfm-slurm}
CPUS=${HHFM_SLURM_CPUS:-16}
MEM_MB=${HHFM_SLURM_MEM_MB:-64000}
CONF_DIR=/etc/slurm
MARK="# written by hhfm tests/slurm/cluster.sh"
NODE=$(hostname -s)

die() { echo "cluster.sh: $*" >&2; exit 1; }
alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
ours() { alive "$2" && [[ $(cat "/proc/$2/comm" 2>/dev/null) == "$1" ]]; }  # name pid: still that daemon?
pid_of() { [[ -f "$1" ]] && cat "$1" || true; }

install() {
    [[ $(id -u) == 0 ]] || die "install needs root"
    if command -v slurmctld >/dev/null && command -v munged >/dev/null; then
        echo "slurm-wlm and munge already installed"; return
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge
}

write_conf() {
    mkdir -p "$CONF_DIR" "$STATE"/{ctld,d,log}
    if [[ -f $CONF_DIR/slurm.conf ]] && ! grep -q "^$MARK" "$CONF_DIR/slurm.conf"; then
        die "$CONF_DIR/slurm.conf exists and was not written by this script; not touching it"
    fi
    cat > "$CONF_DIR/slurm.conf" <<CONF
$MARK
ClusterName=hhfm-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=3600
ReturnToService=2
SlurmdParameters=config_overrides
MpiDefault=none
SwitchType=switch/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE MaxTime=INFINITE State=UP
CONF
    printf '%s\nAutoDetect=off\nName=gpu File=/dev/null Count=1\n' "$MARK" > "$CONF_DIR/gres.conf"
    printf '%s\nCgroupPlugin=cgroup/v1\nIgnoreSystemd=yes\n' "$MARK" > "$CONF_DIR/cgroup.conf"
}

start_munge() {
    local pidfile=/run/munge/munged.pid
    if ours munged "$(pid_of $pidfile)"; then echo "munged already running"; return; fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    [[ -f /etc/munge/munge.key ]] || { mungekey --create --keyfile=/etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; }
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do ours munged "$(pid_of $pidfile)" && break; sleep 0.1; done
    ours munged "$(pid_of $pidfile)" || die "munged did not start"
    echo "munged $(pid_of $pidfile)" >> "$STATE/started"
}

start_daemon() {  # name pidfile
    local name=$1 pidfile=$2
    if ours "$name" "$(pid_of "$pidfile")"; then echo "$name already running"; return; fi
    if [[ $name == slurmctld ]]; then slurmctld -c; else slurmd; fi
    for _ in $(seq 100); do ours "$name" "$(pid_of "$pidfile")" && break; sleep 0.1; done
    ours "$name" "$(pid_of "$pidfile")" || die "$name did not start; see $STATE/log/$name.log"
    echo "$name $(pid_of "$pidfile")" >> "$STATE/started"
}

start() {
    [[ $(id -u) == 0 ]] || die "start needs root"
    command -v slurmctld >/dev/null || die "SLURM not installed; run: $0 install"
    write_conf
    # forget entries of daemons that are gone (e.g. machine restarted; pids may be reused)
    if [[ -f "$STATE/started" ]]; then
        while read -r name pid; do ours "$name" "$pid" && echo "$name $pid"; done < "$STATE/started" > "$STATE/started.new" || true
        mv "$STATE/started.new" "$STATE/started"
    fi
    touch "$STATE/started"
    start_munge
    start_daemon slurmctld "$STATE/slurmctld.pid"
    start_daemon slurmd "$STATE/slurmd.pid"
    for _ in $(seq 60); do
        state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1 || true)
        case $state in
            idle*|mixed*|alloc*) echo "SLURM up: node $NODE $state, partitions cpu (default) and gpu"; return;;
            down*|drain*) scontrol update nodename="$NODE" state=resume || true;;
        esac
        sleep 1
    done
    die "node $NODE never became idle (state: ${state:-unknown}); see $STATE/log/"
}

stop() {
    [[ -f "$STATE/started" ]] || { echo "nothing started by cluster.sh"; return; }
    # reverse order: slurmd, slurmctld, munged
    tac "$STATE/started" | while read -r name pid; do
        if ours "$name" "$pid"; then
            kill "$pid"
            for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
            alive "$pid" && kill -9 "$pid"
            echo "stopped $name ($pid)"
        fi
    done
    rm -f "$STATE/started"
}

status() { sinfo; squeue -t all; }

case ${1:-} in
    install) install;;
    start) start;;
    stop) stop;;
    status) status;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2;;
esac
