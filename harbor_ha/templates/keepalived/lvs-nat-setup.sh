#!/bin/bash
# Run by systemd before keepalived starts (every boot): prepares one-arm LVS-NAT on this director.
# IPVS rewrites a client's packet to a Harbor node; SNAT to this director's own address ($own_ip) makes the
# node answer through the director, which turns the answer back into one from the VIP. SNAT of IPVS
# traffic needs IPVS connection tracking (net.ipv4.vs.conntrack), and the answers are forwarded.
set -euo pipefail
modprobe ip_vs
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv4.vs.conntrack=1
nft -f - <<'RULES'
table ip harbor_lvs
delete table ip harbor_lvs
table ip harbor_lvs {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip daddr { $real_servers } tcp dport { $ports } snat to $own_ip
  }
}
RULES
