#!/bin/sh
# PID 1 of a vmvc VM after the initramfs switched to the (read-only) root disk. The
# initramfs already mounted /proc, /sys, /dev, /tmp and /data and set the console raw; this
# serves commands on the serial console, then powers off.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
# The agent is the guest's one service. Like an init's `respawn` (inittab) or systemd's
# Restart=on-failure, a signal's death of it starts it again at once (no delay: the recovery
# workload times this); a normal exit ends the guest.
while :; do
    /opt/vmvc/agent serve < /dev/ttyS0 > /dev/ttyS0 2>&1
    status=$?
    [ "$status" -gt 128 ] || break
    echo "VMVC-RESPAWN status=$status" > /dev/ttyS0
done
# Without ACPI power-off a halted guest stays "running": ask the kernel directly.
echo o > /proc/sysrq-trigger
sleep 10
