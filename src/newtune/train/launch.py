"""`newtune train CONFIG --nproc N`: start N local worker processes with torch's elastic launcher (torchrun's).

Each worker runs `python -m newtune train ...` with the launcher's RANK/WORLD_SIZE/MASTER_* environment,
exactly as under `torchrun`; gloo on CPU, nccl on GPUs (accelerate picks). Several nodes: the same command
on each node with `--nnodes` and the same `--rdzv-endpoint`.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid

from newtune import env
from newtune.errors import NewtuneError


class LaunchError(NewtuneError):
    """A worker failed or the processes could not meet: the run stopped (not a config mistake: exit 1)."""

    exit_code = 1


def launch(nproc: int, argv: list[str], *, nnodes: int = 1, rdzv_endpoint: str | None = None,
           rdzv_timeout: int = 600) -> None:
    """Run `python -m newtune *argv` in nproc processes per node; raise LaunchError naming the failed rank."""
    # Read once, when torch starts: the launcher's own C++ socket retries and stack traces stay quiet (not the workers').
    os.environ["TORCH_CPP_LOG_LEVEL"], before = "FATAL", os.environ.get("TORCH_CPP_LOG_LEVEL")
    import torch  # noqa: F401

    if before is None:
        os.environ.pop("TORCH_CPP_LOG_LEVEL")
    else:
        os.environ["TORCH_CPP_LOG_LEVEL"] = before
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nnodes > 1 and not rdzv_endpoint:
        raise NewtuneError("--rdzv-endpoint", "several nodes need a rendezvous endpoint (host:port of one node)",
                           "run the same command on each node with --nnodes N --rdzv-endpoint HOST:PORT")
    if not os.environ.get("OMP_NUM_THREADS"):  # as torchrun: N processes share the cores instead of each taking all
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    # torch's launcher logs INFO lines and, on a failed rendezvous, C++ stack traces: newtune says it in one message
    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)
    endpoint = rdzv_endpoint or "localhost:0"  # one node: a free local port, as `torchrun --standalone`
    config = LaunchConfig(min_nodes=nnodes, max_nodes=nnodes, nproc_per_node=nproc, run_id=env.value(
        "NEWTUNE_RUN_ID") or (str(uuid.uuid4()) if nnodes == 1 else "newtune"), rdzv_backend="c10d",
        rdzv_endpoint=endpoint, rdzv_configs={"join_timeout": rdzv_timeout,
                                                                  "read_timeout": rdzv_timeout}, max_restarts=0, monitor_interval=0.5)
    try:
        elastic_launch(config, sys.executable)("-m", "newtune", *argv)
    except ChildFailedError as e:
        raise failed(e) from None
    except RendezvousError as e:
        raise LaunchError("--rdzv-endpoint", f"the processes could not meet at {endpoint}: {first_line(e)}",
                          "check that the host is reachable from every node, the port is open, and every "
                          "node runs the same command with the same --nnodes") from None


def failed(e) -> LaunchError:
    """One message for the first failed worker; a worker's own user error (exit 2) was already printed by it."""
    rank, failure = e.get_first_failure()
    if failure.exitcode == 2:
        err = LaunchError("", f"rank {rank} stopped on the error above")
        err.exit_code = 2
        return err
    if failure.exitcode < 0:
        import signal

        how = f"was killed by {signal.Signals(-failure.exitcode).name}"
    else:
        how = f"exited with code {failure.exitcode}"
    return LaunchError("train", f"worker rank {rank} (pid {failure.pid}) {how}; the other workers were stopped",
                       "its output above says why; checkpoints without newtune_checkpoint.json are incomplete "
                       "and are never resumed from")


def first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]
