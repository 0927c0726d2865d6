"""Horovod job for SDK local mode: an allreduce of rank+1 over every rank; each rank reports its slot
in output/data; rank 0 waits --save_delay seconds, then saves the model (see ps_sum.py for why)."""
import argparse
import json
import os
import time

import horovod.mxnet as hvd
import mxnet as mx

parser = argparse.ArgumentParser()
parser.add_argument("--save_delay", type=float, default=3.0)
args = parser.parse_args()

hvd.init()
rank, size = hvd.rank(), hvd.size()
total = hvd.allreduce(mx.nd.ones((3,)) * (rank + 1), average=False, name="sum").asnumpy().tolist()
report = {"rank": rank, "size": size, "local_rank": hvd.local_rank(), "local_size": hvd.local_size(),
          "host_index": json.loads(os.environ["SM_HOSTS"]).index(os.environ["SM_CURRENT_HOST"]), "sum": total}
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "rank-{}.json".format(rank)), "w") as f:
    json.dump(report, f)
print("hvd_sum: rank {} of {} got {}".format(rank, size, total), flush=True)
if rank == 0:
    time.sleep(args.save_delay)
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "hvd-sum.json"), "w") as f:
        json.dump({"size": size, "sum": total}, f)
hvd.shutdown()
