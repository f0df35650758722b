#!/usr/bin/python3
"""lb-pool: keep this director's LVS pool equal to the deployment's real-server list.

The list lives in an SSM parameter that Terraform writes (never in the director's user-data), as JSON:
    {"servers": [{"address": "10.40.128.10", "weight": 1}, {"address": "10.40.192.10", "weight": 0}]}
weight 1 serves; weight 0 drains (IPVS quiesces the server: no new connections, open ones continue).

One run: read the parameter, render the checker-only keepalived configuration (virtual servers on this
director's own address, one MISC_CHECK of check-harbor-health per real server, ``alpha`` so that a new
server stays out of IPVS until its health body says healthy), and when it differs from the installed one:
check it with ``keepalived -t``, put the servers into the nftables set that the SNAT rule matches, install
it and send SIGHUP to the checker-only keepalived (harbor-lvs.service). The VRRP keepalived
(harbor-vrrp.service, its own process and file) is never touched, so a pool change cannot move the VIP.
Then tag this instance ``harbor-ha:lb-pool=<parameter version>``: harbor-ha waits for that before it
destroys a drained server.

Usage: lb-pool [--config FILE] [--no-reload]   (settings: /etc/harbor-ha/lb-pool.json)
Runs on the director's Python 3 (3.9 on Amazon Linux 2023) with the standard library and the aws CLI.
"""

import argparse
import ipaddress
import json
import os
import signal
import subprocess
import sys
import urllib.request

DEFAULT_CONFIG = "/etc/harbor-ha/lb-pool.json"
ACK_TAG = "harbor-ha:lb-pool"


class PoolError(Exception):
    """What stops one run; the installed pool stays as it was."""


def log(message):
    print("lb-pool: " + message, flush=True)


def metadata(endpoint, path):
    """One value from the instance metadata service (IMDSv2)."""
    token_request = urllib.request.Request(endpoint + "/latest/api/token", method="PUT",
                                           headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    with urllib.request.urlopen(token_request, timeout=2) as answer:
        token = answer.read().decode()
    request = urllib.request.Request(endpoint + "/latest/meta-data/" + path,
                                     headers={"X-aws-ec2-metadata-token": token})
    with urllib.request.urlopen(request, timeout=2) as answer:
        return answer.read().decode()


def aws(region, *args):
    result = subprocess.run(["aws", "--region", region, "--output", "json", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise PoolError("aws " + " ".join(args[:2]) + " failed: " + result.stderr.strip())
    return json.loads(result.stdout) if result.stdout.strip() else {}


def parse_pool(value):
    """The (address, weight) pairs of a parameter value; refuses anything else."""
    try:
        servers = json.loads(value)["servers"]
        pool = [(str(ipaddress.IPv4Address(s["address"])), int(s["weight"])) for s in servers]
    except (ValueError, KeyError, TypeError) as error:
        raise PoolError("the real-server list is not {\"servers\": [{\"address\", \"weight\"}...]}: %s" % error)
    if not pool or len({a for a, _ in pool}) != len(pool) or any(w not in (0, 1) for _, w in pool):
        raise PoolError("the real-server list needs one or more distinct addresses with weight 0 or 1")
    return pool


def block(head, items):
    body = "".join("    " + line + "\n" for item in items for line in item.splitlines())
    return head + " {\n" + body + "}\n"


def render(settings, pool):
    """The checker-only keepalived configuration for ``pool``."""
    health = settings["health_program"]
    parts = [block("global_defs", ["router_id " + settings["router_id"], "script_user root",
                                   "enable_script_security"])]
    for port in settings["ports"]:
        servers = [block("real_server %s %d" % (address, port), [
            "weight %d" % weight,
            block("MISC_CHECK", ['misc_path "%s https://%s%s"' % (health, address, settings["health_path"]),
                                 "misc_timeout 5"])])
            for address, weight in pool]
        parts.append(block("virtual_server %s %d" % (settings["own_ip"], port), [
            "delay_loop 5", "lb_algo wlc", "lb_kind NAT",
            "persistence_timeout %d" % settings["persistence_timeout"], "protocol TCP", "alpha", *servers]))
    return "\n".join(parts)


def nft_rules(settings, pool):
    """One nftables transaction: the set of SNAT targets becomes exactly the listed servers."""
    table, name = settings["nft_table"], settings["nft_set"]
    return ("table ip %s {\n  set %s { type ipv4_addr; }\n}\nflush set ip %s %s\n"
            "add element ip %s %s { %s }\n" % (table, name, table, name, table, name,
                                               ", ".join(a for a, _ in pool)))


def run(command, what, stdin=None):
    result = subprocess.run(command, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise PoolError(what + " failed: " + (result.stderr or result.stdout).strip())


def install(settings, text, pool, reload):
    """Check, install and apply ``text``; True if the checker was told to reload."""
    path = settings["config"]
    candidate = path + ".new"
    with open(candidate, "w") as out:
        out.write(text)
    os.chmod(candidate, 0o640)
    run([settings["keepalived"], "-t", "-f", candidate], "keepalived -t of the new pool")
    # Before the checker may add a server to IPVS, its answers must already be SNATed.
    run(["nft", "-f", "-"], "nft (SNAT targets)", stdin=nft_rules(settings, pool))
    os.replace(candidate, path)
    with open(path + ".pool.json", "w") as saved:
        json.dump(pool, saved)
    if not reload:
        return False
    try:
        with open(settings["pid_file"]) as pid_file:
            pid = int(pid_file.read().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        log("the checker (pid file %s) is not running; it reads the pool when it starts" % settings["pid_file"])
        return False
    return True


def acknowledge(settings, region, version):
    """Tag this instance with the version it applied, once per version."""
    marker = settings["ack_file"]
    try:
        with open(marker) as done:
            if done.read().strip() == str(version):
                return
    except OSError:
        pass
    instance = metadata(settings["imds"], "instance-id")
    aws(region, "ec2", "create-tags", "--resources", instance, "--tags", "Key=%s,Value=%s" % (ACK_TAG, version))
    with open(marker, "w") as done:
        done.write(str(version))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lb-pool", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="settings file (default %(default)s)")
    parser.add_argument("--no-reload", action="store_true",
                        help="install only (before the checker starts); keep an installed pool if AWS is unreachable")
    args = parser.parse_args(argv)
    with open(args.config) as source:
        settings = json.load(source)
    settings.setdefault("imds", os.environ.get("HARBOR_HA_IMDS_ENDPOINT", "http://169.254.169.254"))
    try:
        region = metadata(settings["imds"], "placement/region")
        parameter = aws(region, "ssm", "get-parameter", "--with-decryption", "--name", settings["parameter"])["Parameter"]
        pool = parse_pool(parameter["Value"])
        text = render(settings, pool)
        try:
            with open(settings["config"]) as current:
                unchanged = current.read() == text
        except OSError:
            unchanged = False
        if unchanged:
            # The SNAT set lives in the kernel: after a reboot it is filled again from the same pool.
            run(["nft", "-f", "-"], "nft (SNAT targets)", stdin=nft_rules(settings, pool))
        else:
            reloaded = install(settings, text, pool, reload=not args.no_reload)
            log("pool version %s installed: %s%s" % (parameter["Version"], ", ".join(
                "%s%s" % (a, "" if w else " (draining)") for a, w in pool), "; checker reloaded" if reloaded else ""))
        acknowledge(settings, region, parameter["Version"])
    except (PoolError, OSError) as error:
        if args.no_reload and os.path.exists(settings["config"]):
            # At boot without AWS: serve the pool installed last, SNAT targets included.
            with open(settings["config"] + ".pool.json") as saved:
                pool = [tuple(server) for server in json.load(saved)]
            log("%s; starting with the installed pool" % error)
            try:
                run(["nft", "-f", "-"], "nft (SNAT targets)", stdin=nft_rules(settings, pool))
            except PoolError as nft_error:
                log(str(nft_error))
                return 1
            return 0
        log(str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
