"""The drill's figures: per scenario, the median and worst of each measured time over the runs, the target it
is held to, and the table and JSON the drill command prints."""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass

from harbor_ha.drill.scenarios import SCENARIOS, Run

METRICS = {
    "to_master": "fault -> new MASTER",
    "to_vip": "fault -> Elastic IP moved",
    "to_one_master": "link back -> one MASTER",
    "to_vip_on_master": "link back -> EIP on that MASTER",
    "to_rejoin": "restart -> BACKUP",
    "out_of_pool": "unhealthy -> out of the LVS pool",
    "back_in_pool": "healthy -> back in the LVS pool",
}


@dataclass(frozen=True)
class Target:
    scenario: str
    metric: str
    limit: float
    why: str


TARGETS = (
    Target("sigkill", "to_vip", 4.0, "a crashed master's VIP on its peer"),
    Target("graceful-stop", "to_vip", 1.5, "a stopped master's VIP on its peer"),
    Target("link-cut", "to_one_master", 3.0, "after a healed partition, one MASTER"),
    Target("lvs-health", "out_of_pool", 10.0, "an unhealthy Harbor out of the LVS pool (delay_loop + misc_timeout)"),
)


def summarize(stack: str, runs: list[Run]) -> dict:
    """The figures of one drill as a JSON-able dict; ``ok`` is False if a run failed or a target was missed."""
    descriptions = {s.name: s.description for s in SCENARIOS}
    descriptions["lvs-health"] = "a Harbor server's health body unhealthy, then healthy (LVS in the guest)"
    scenarios = []
    for name in dict.fromkeys(run.scenario for run in runs):
        mine = [run for run in runs if run.scenario == name]
        entry: dict = {"name": name, "description": descriptions.get(name, name), "runs": len(mine),
                       "failed": sum(not run.ok for run in mine),
                       "problems": [f"run {run.index + 1}: {p}" for run in mine for p in run.problems]}
        for metric in METRICS:
            values = [getattr(run, metric) for run in mine if getattr(run, metric, None) is not None]
            if values:
                entry[metric] = {"median": round(statistics.median(values), 2), "worst": round(max(values), 2),
                                 "values": values}
        for target in TARGETS:
            if target.scenario == name:
                worst = entry.get(target.metric, {}).get("worst")
                entry["target"] = {"metric": target.metric, "limit": target.limit, "why": target.why,
                                   "met": worst is not None and worst <= target.limit}
        scenarios.append(entry)
    ok = all(e["failed"] == 0 and e.get("target", {}).get("met", True) for e in scenarios) and bool(scenarios)
    return {"stack": stack, "ok": ok, "load_average": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(), "scenarios": scenarios}


def _cell(entry: dict, metric: str) -> str:
    figure = entry.get(metric)
    return f"{figure['median']:.2f} / {figure['worst']:.2f}" if figure else "-"


def table(summary: dict) -> str:
    """The figures as a text table (seconds, median / worst)."""
    header = ["scenario", "runs ok", "-> MASTER", "-> EIP", "other", "target", ""]
    rows = [header]
    for entry in summary["scenarios"]:
        other = "; ".join(f"{METRICS[m]}: {_cell(entry, m)}" for m in (
            "to_one_master", "to_vip_on_master", "out_of_pool", "back_in_pool", "to_rejoin") if m in entry)
        target = entry.get("target")
        verdict = "ok" if entry["failed"] == 0 and (target is None or target["met"]) else "FAILED"
        rows.append([entry["name"], f"{entry['runs'] - entry['failed']}/{entry['runs']}", _cell(entry, "to_master"),
                     _cell(entry, "to_vip"), other,
                     f"{target['metric']} <= {target['limit']:g} s" if target else "", verdict])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for entry in summary["scenarios"]:
        lines += [f"  {entry['name']}: {problem}" for problem in entry["problems"]]
    load = ", ".join(map(str, summary["load_average"]))
    lines.append(f"seconds, median / worst; load average {load} on {summary['cpus']} CPUs")
    return "\n".join(lines)


def to_json(summary: dict) -> str:
    return json.dumps(summary, indent=2)
