#!/bin/bash
# Run by systemd before the LVS checker (harbor-lvs) starts, every boot: prepares one-arm LVS-NAT here.
# IPVS rewrites a client's packet to a Harbor node; SNAT to this director's own address ($own_ip) makes the
# node answer through the director, which turns the answer back into one from the VIP. SNAT of IPVS
# traffic needs IPVS connection tracking (net.ipv4.vs.conntrack), and the answers are forwarded. The SNAT
# targets are the set real_servers, which lb-pool keeps equal to the pool. A persistence template that
# points at a drained (weight 0) server expires instead of sending that client's new connections there.
set -euo pipefail
modprobe ip_vs
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv4.vs.conntrack=1
sysctl -qw net.ipv4.vs.expire_quiescent_template=1
nft -f - <<'RULES'
table ip harbor_lvs
delete table ip harbor_lvs
table ip harbor_lvs {
  set real_servers { type ipv4_addr; }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip daddr @real_servers tcp dport { $ports } snat to $own_ip
  }
}
RULES
