#!/bin/sh
# vmvc agent: the one script that runs inside every instance (VM, container, native chroot).
#
# Protocol (read by vmvc/agent/protocol.py on the host):
#   VMVC-READY image=<id> kernel=<release>     the instance is ready for work
#   VMVC-BEGIN <task-id> <workload>            start of one workload's raw output
#   ...raw tool output (sysbench text, vmvc-memtool key=value lines, fio JSON, facts)...
#   VMVC-END <task-id> rc=<exit status>        end of that output
# The host parses raw output itself, so this script stays a thin, dependency-free runner
# (the image has no Python) and the parsing is unit-tested on recorded real output.
#
# Modes:
#   agent ready                  print the ready line and exit (baseline measurements)
#   agent idle                   ready line, then wait until terminated (container main process)
#   agent serve                  ready line, then run one command per input line (VM, native)
#   agent run ID WORKLOAD ARGS   run one workload, framed (docker exec)
#
# Workloads: cpu, memory, io, facts [PROBE], ping, die (the agent SIGKILLs itself: the
# recovery workload's "workload process dies"), crash (VM guests only: kernel panic, for
# the recovery workload; refused anywhere else because on the host it would crash the host).

IMAGE_ID=$(cat /etc/vmvc/image-id 2>/dev/null || echo unknown)
WORKDIR=/tmp

ready_line() {
    printf 'VMVC-READY image=%s kernel=%s\n' "$IMAGE_ID" "$(uname -r)"
}

run_cpu() { # threads seconds max_prime [events]
    # events 0 (the default): as many as the seconds allow. The isolation workload's fixed
    # mix asks for a few events and no time limit instead (--time=0): sysbench's system
    # calls are made at start and end, whatever runs between.
    sysbench cpu --threads="$1" --time="$2" --events="${4:-0}" --cpu-max-prime="$3" run
}

run_memory() { # bandwidth_mib bandwidth_seconds threads latency_mib latency_seconds
    # vmvc-memtool (vmvc/agent/memtool.c, compiled statically at image build): STREAM copy
    # and triad over working sets past the last-level cache, then a random pointer chase.
    /opt/vmvc/vmvc-memtool bandwidth "$1" "$2" "$3" || return $?
    /opt/vmvc/vmvc-memtool latency "$4" "$5"
}

run_io() { # size_mib runtime_s ramp_s directory
    jobfile="$WORKDIR/vmvc-fio.job"
    # Every backend runs exactly these semantics (fio echoes them back under "global
    # options", and the host records them with each sample): O_DIRECT, synchronous psync at
    # queue depth 1, no fsync per write, one fsync at the end of each writing job.
    # The prefill job writes the whole file first: reads of a file laid out by fallocate
    # return zeros without any I/O and would report impossible IOPS. ramp_time runs each
    # measured job that long before fio starts counting (caches and queues settle).
    cat > "$jobfile" <<EOF
[global]
ioengine=psync
direct=1
iodepth=1
fsync=0
end_fsync=1
filename=$4/vmvc-fio.dat
size=$1M
[prefill]
rw=write
bs=1M
[seqwrite_1m]
stonewall
rw=write
bs=1M
time_based
runtime=$2
ramp_time=$3
[seqread_1m]
stonewall
rw=read
bs=1M
time_based
runtime=$2
ramp_time=$3
[randwrite_4k]
stonewall
rw=randwrite
bs=4k
time_based
runtime=$2
ramp_time=$3
[randread_4k]
stonewall
rw=randread
bs=4k
time_based
runtime=$2
ramp_time=$3
EOF
    fio --output-format=json "$jobfile"
    status=$?
    rm -f "$4/vmvc-fio.dat" "$jobfile"
    return $status
}

run_facts() { # [probe token]
    # Facts about isolation as seen from inside (no timing). key=value, one per line.
    echo "kernel_release=$(uname -r)"
    . /etc/os-release 2>/dev/null && echo "os_release=$PRETTY_NAME"
    echo "pid1_comm=$(cat /proc/1/comm 2>/dev/null)"
    echo "processes_visible=$(ls -d /proc/[0-9]* 2>/dev/null | wc -l)"
    echo "cap_eff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)"
    echo "no_new_privs=$(sed -n 's/^NoNewPrivs:[[:space:]]*//p' /proc/self/status)"
    echo "seccomp=$(sed -n 's/^Seccomp:[[:space:]]*//p' /proc/self/status)"
    echo "devices_visible=$(ls /dev 2>/dev/null | wc -l)"
    echo "block_devices=$(ls /sys/class/block 2>/dev/null | tr '\n' ' ')"
    echo "mem_total_kib=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo)"
    echo "cpus_online=$(grep -c ^processor /proc/cpuinfo)"
    echo "kernel_modules_visible=$( (wc -l < /proc/modules) 2>/dev/null || echo 0)"
    echo "hostname=$(cat /proc/sys/kernel/hostname)"
    echo "uid=$(id -u)"
    # Same boot id as the host's = same running kernel (a release string can coincide).
    echo "boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
    # The running kernel's boot time: systemd as a container's init replaces the boot id
    # above with a fresh one, btime it cannot (a VM's or gVisor's kernel has its own).
    echo "kernel_btime=$(sed -n 's/^btime //p' /proc/stat 2>/dev/null)"
    if [ -n "$1" ]; then
        # The host runs a process named vmvc-probe-<token>: seeing it means seeing host
        # processes. "[e]" keeps grep's own command line (which holds the pattern) from
        # matching; this script's command line holds only the bare token.
        if grep -qsa "vmvc-prob[e]-$1" /proc/[0-9]*/cmdline; then
            echo "host_probe_visible=1"
        else
            echo "host_probe_visible=0"
        fi
    fi
}

run_crash() {
    # Panic the kernel so the engine's crash/reboot policy has to bring the instance back.
    # Only inside a vmvc VM guest (its init is guest-init and the kernel command line names
    # a vmvc run): in the native chroot /proc/sysrq-trigger is the host's.
    if [ "$(cat /proc/1/comm 2>/dev/null)" != guest-init ] \
        || ! grep -q 'vmvc\.run=' /proc/cmdline 2>/dev/null; then
        echo "vmvc agent: crash refused: not a vmvc VM guest"
        return 1
    fi
    echo c > /proc/sysrq-trigger
}

run_die() {
    # The serving agent dies by SIGKILL, as if the OOM killer or a fault took it; $$ is the
    # agent's own shell (in `agent run` just this one command's). Whatever supervises it
    # decides what happens next (the VM's guest init respawns it).
    kill -KILL $$
}

dispatch() { # id workload args...
    id=$1
    workload=$2
    shift 2
    printf 'VMVC-BEGIN %s %s\n' "$id" "$workload"
    case "$workload" in
        cpu) run_cpu "$@" ;;
        memory) run_memory "$@" ;;
        io) run_io "$@" ;;
        facts) run_facts "$@" ;;
        crash) run_crash ;;
        die) run_die ;;
        ping) echo pong ;;
        *) echo "vmvc agent: unknown workload '$workload'"; false ;;
    esac
    printf 'VMVC-END %s rc=%s\n' "$id" "$?"
}

mode=${1:-serve}
[ $# -gt 0 ] && shift
case "$mode" in
    ready)
        ready_line
        ;;
    idle)
        trap 'exit 0' TERM INT
        ready_line
        # sleep in the background and wait: a shell blocked in wait still runs the trap.
        while :; do
            sleep 3600 &
            wait $!
        done
        ;;
    serve)
        ready_line
        # Commands are single lines of validated tokens (the host builds them; no quoting).
        while IFS= read -r line; do
            [ -z "$line" ] && continue
            # shellcheck disable=SC2086
            set -- $line
            case "$1" in
                exit) break ;;
                *) dispatch "$@" ;;
            esac
        done
        ;;
    run)
        dispatch "$@"
        ;;
    *)
        echo "usage: agent ready|idle|serve|run ID WORKLOAD ARGS..." >&2
        exit 2
        ;;
esac
