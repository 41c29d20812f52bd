"""How OpenMP threads wait between parallel regions: decided once, before torch loads its OpenMP runtime.

A training step runs thousands of short parallel regions (a LoRA layer's small matmuls, norms,
elementwise ops). Threads that fall asleep between them pay a wake-up on every region: with
OMP_WAIT_POLICY=PASSIVE a LoRA step on short rows took 1.6x as long as with spinning, on a quiet
2-core machine. But when another process wants the same cores, spinning threads take turns from it
and from each other: with libgomp's default spin (300,000 iterations) two concurrent runs were 3.3x
slower than PASSIVE. So: when the CPUs this process may use are free, spin briefly (GOMP_SPINCOUNT=10000
gave all of the quiet-machine gain; torch's Linux wheels use libgomp); when other work keeps at least
half of them busy, sleep (PASSIVE). Business is sampled from /proc/stat over 0.1 s (the load average
lags by minutes: it still counts a run that just ended). Either variable set by the user wins.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, MutableMapping

SPIN = "10000"


def usable_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def _cpu_times(cpus: set[int]) -> dict[int, tuple[int, int]]:
    """cpu → (busy, total) jiffies from /proc/stat, for the given CPUs."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
                continue
            values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
            out[int(name[3:])] = (sum(values) - values[3] - values[4], sum(values))
    return out


def busy_cpus(interval: float = 0.1) -> float | None:
    """How many of this process's CPUs other work keeps busy right now (None where /proc/stat is missing)."""
    cpus = usable_cpus()
    try:
        before = _cpu_times(cpus)
        time.sleep(interval)
        after = _cpu_times(cpus)
    except (OSError, ValueError):
        return None
    busy = 0.0
    for cpu, (b1, t1) in after.items():
        b0, t0 = before.get(cpu, (b1, t1))
        if t1 > t0:
            busy += (b1 - b0) / (t1 - t0)
    return busy


def configure_openmp(environ: MutableMapping[str, str] = os.environ,
                     sample: Callable[[], float | None] = busy_cpus) -> str:
    """Set how OpenMP threads wait, unless the user did; returns a one-line description."""
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return "OpenMP waiting as set in the environment"
    busy = sample()
    if busy is None:  # no /proc/stat: the load average, over the last minute
        try:
            busy = os.getloadavg()[0]
        except OSError:
            busy = 0.0
    n = len(usable_cpus())
    if busy >= n / 2:
        environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return f"OpenMP threads sleep between regions (other work keeps {busy:.1f} of {n} CPUs busy)"
    environ["GOMP_SPINCOUNT"] = SPIN
    return f"OpenMP threads spin {SPIN} iterations before sleeping ({busy:.1f} of {n} CPUs busy elsewhere)"
