#!/bin/sh
# Sourced by pd-defaults-sourced.pkt: a setup file in packetdrill's
# manner (defaults.sh), read line by line by the drill, not by a shell.

# Flush cached metrics: nothing to flush on a new host.
ip tcp_metrics flush all > /dev/null 2>&1

# Receive buffer: min, default, max (the max fixes the window scale).
sysctl -q net.ipv4.tcp_rmem="4096 540000 $((15*1024*1024))"

# No timestamps, SACK written in hex.
sysctl -q net.ipv4.tcp_timestamps=0
sysctl -q net.ipv4.tcp_sack=0x1

# packetdrill's plain FIFO on its device.
tc qdisc add dev tun0 root pfifo
