"""Failover drills: the stacks' keepalived configuration run for real, and how fast a failover is.

    harbor-ha drill active-active|active-standby [--runs N] [--json]

netns.py      network namespaces, sockets inside them, the relay to the local emulator
standins.py   the instance-metadata and Harbor health stand-ins
pair.py       a stack's VRRP pair in two namespaces (real keepalived, vip-notify, emulator)
scenarios.py  the faults, what each must show, and the runs
figures.py    median / worst per scenario, the targets, table and JSON
guest.py      a QEMU guest with Debian's kernel for LVS (IPVS), built once and cached
lvs_in_guest.py  the LVS drill run inside that guest
"""
