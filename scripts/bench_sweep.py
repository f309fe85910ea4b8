"""How well a sweep keeps its slots busy: its wall time against the time its jobs ran, and the idle cores.

Runs a sweep command, and while it runs samples every job process (found by a pattern in its command line, e.g.
``ganbench.local_jobs`` for ganbench's launcher=parallel, ``submitit.core._submit`` for hydra-submitit-launcher's)
and the machine's CPU time (/proc/stat). Prints the sweep's wall time; Σ of its jobs' lifetimes (process start-up
included, since that is the job's time too) and that Σ ÷ slots, the best wall time the slots allow; slot idle time
(slots × wall − Σ lifetimes); and the core idle time the kernel counted (idle + iowait over all cores). Linux only.

    python scripts/bench_sweep.py --slots 2 --pattern ganbench.local_jobs -- \\
        ganbench-train -m experiment=study_triangles_cpu study.dir=runs/bench/triangles
Nothing else should run on the machine meanwhile: other work shows up as busy cores and slows the jobs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def cpu_times() -> tuple[float, float]:
    """(idle, total) jiffies of all cores since boot: idle counts idle and iowait."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def job_processes(pattern: str, besides: set[int]) -> set[tuple[int, int]]:
    """(pid, start time) of the processes whose command line contains ``pattern``, other than ``besides`` and other
    than children forked by such a process (they keep its command line); the start time tells a reused pid from the
    process that had it before."""
    matching: dict[int, tuple[int, int]] = {}  # pid → (parent pid, start time)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in besides:
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parent, started = int(fields[1]), int(fields[19])
        except (OSError, IndexError, ValueError):
            continue
        if pattern in command:
            matching[int(entry.name)] = (parent, started)
    return {(pid, started) for pid, (parent, started) in matching.items() if parent not in matching}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, required=True, help="the sweep's parallel jobs")
    parser.add_argument("--pattern", required=True, help="a string in every job process's command line")
    parser.add_argument("--every", type=float, default=0.2, help="sampling period, seconds")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the sweep command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    cores = os.cpu_count() or 1
    lifetimes: dict[tuple[int, int], list[float]] = {}  # (pid, start time) → [first seen, last seen]
    idle_before, total_before = cpu_times()
    started = time.monotonic()
    sweep = subprocess.Popen(command)
    while sweep.poll() is None:
        now = time.monotonic()
        for process in job_processes(args.pattern, besides={sweep.pid, os.getpid()}):  # this script names it too
            lifetimes.setdefault(process, [now, now])[1] = now
        time.sleep(args.every)
    wall = time.monotonic() - started
    idle_after, total_after = cpu_times()
    idle_share = (idle_after - idle_before) / max(total_after - total_before, 1)
    job_time = sum(last - first for first, last in lifetimes.values())
    best = job_time / args.slots
    print(f"sweep exit {sweep.returncode}; {cores} cores, {args.slots} slots, {len(lifetimes)} jobs")
    print(f"wall {wall:.0f} s | Σ job lifetimes {job_time:.0f} s, ÷ slots {best:.0f} s | wall ÷ that {wall / best:.3f}")
    slot_idle = args.slots * wall - job_time
    print(f"slot idle {slot_idle:.0f} s ({slot_idle / (args.slots * wall):.1%} of slots × wall)")
    print(f"core idle {idle_share * cores * wall:.0f} core-s ({idle_share:.1%} of {cores} cores × wall)")
    sys.exit(sweep.returncode)


if __name__ == "__main__":
    main()
