"""Run under torchrun (2 CPU processes): newtune's Accelerator honours the ddp_* keys.

argv: bucket_cap_mb broadcast_buffers find_unused timeout_s sync_dir. Prints one JSON line per rank.
"""

import json
import sys
import time
from pathlib import Path

import torch

from newtune.config.distributed import DistributedConfig
from newtune.train.distributed import make_accelerator

bucket, broadcast, unused, timeout = int(sys.argv[1]), sys.argv[2] == "true", sys.argv[3] == "true", int(sys.argv[4])
cfg = DistributedConfig(ddp_bucket_cap_mb=bucket, ddp_broadcast_buffers=broadcast, ddp_find_unused_parameters=unused,
                        ddp_timeout=timeout)
acc = make_accelerator(cfg, mixed_precision="no")
# Meet through files first: on a busy machine the ranks start seconds apart, which a short timeout would not survive.
sync = Path(sys.argv[5])
(sync / str(acc.process_index)).touch()
while len(list(sync.iterdir())) < 2:
    time.sleep(0.05)
model = acc.prepare(torch.nn.Linear(4, 4))
out = {"rank": acc.process_index, "type": str(acc.distributed_type), "bucket_bytes": model.bucket_bytes_cap,
       "broadcast_buffers": model.broadcast_buffers, "find_unused": model.find_unused_parameters}
# ddp_timeout: rank 1 reaches the barrier 3 × timeout late; rank 0 must give up after about `timeout` seconds.
start = time.monotonic()
if acc.process_index == 1:
    time.sleep(3 * timeout)
try:
    torch.distributed.barrier()
    out["barrier"] = "passed"
except Exception as e:  # gloo's timeout error
    out["barrier"] = f"failed: {type(e).__name__}"
out["waited_s"] = time.monotonic() - start
print(json.dumps(out), flush=True)
