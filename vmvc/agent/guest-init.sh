#!/bin/sh
# PID 1 of a vmvc VM after the initramfs switched to the (read-only) root disk. The
# initramfs already mounted /proc, /sys, /dev, /tmp and /data and set the console raw; this
# serves commands on the serial console, then powers off.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
/opt/vmvc/agent serve < /dev/ttyS0 > /dev/ttyS0 2>&1
# Without ACPI power-off a halted guest stays "running": ask the kernel directly.
echo o > /proc/sysrq-trigger
sleep 10
