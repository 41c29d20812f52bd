"""OpenMP waiting: brief spinning on free CPUs, sleeping on busy ones, the user's setting untouched."""

from __future__ import annotations

import subprocess
import sys
import time

from newtune.threads import busy_cpus, configure_openmp, usable_cpus


def test_free_cpus_spin_briefly():
    env: dict[str, str] = {}
    configure_openmp(env, sample=lambda: 0.2)
    assert env == {"GOMP_SPINCOUNT": "10000"}


def test_busy_cpus_sleep():
    env: dict[str, str] = {}
    note = configure_openmp(env, sample=lambda: len(usable_cpus()) / 2)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"} and "busy" in note


def test_the_users_setting_wins():
    for given in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "0"}):
        env = dict(given)
        configure_openmp(env, sample=lambda: 0.0)
        assert env == given


def test_busy_cpus_sees_a_spinning_process():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert busy_cpus(0.3) >= 0.7
    finally:
        spinner.kill()
        spinner.wait()
