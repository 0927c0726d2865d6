"""Each rank adds rank+1 into an allreduce; every rank checks the sum and reports its slot."""
import argparse
import json
import os
import sys
import time

import horovod.mxnet as hvd
import mxnet as mx

parser = argparse.ArgumentParser()
parser.add_argument("--fail_rank", type=int, default=-1)
parser.add_argument("--no_init_rank", type=int, default=-1)
parser.add_argument("--sleep", type=float, default=0)
parser.add_argument("--consequence_ranks", default="")  # ranks that raise Horovod's own error before sleeping
args = parser.parse_args()
if int(os.environ["HOROVOD_RANK"]) == args.no_init_rank:
    print("allreduce: rank {} leaves without hvd.init()".format(args.no_init_rank), flush=True)
    sys.exit(0)
hvd.init()
rank, size = hvd.rank(), hvd.size()
print("allreduce: rank {} of {} started, pid {}".format(rank, size, os.getpid()), flush=True)
if str(rank) in args.consequence_ranks.split(","):  # as if another rank had failed: a consequence
    from horovod.common.exceptions import HorovodInternalError

    raise HorovodInternalError("rank {} stands for a consequence".format(rank))
time.sleep(args.sleep)
if args.fail_rank == rank:
    raise ValueError("rank {} fails on purpose".format(rank))
total = hvd.allreduce(mx.nd.ones((3,)) * (rank + 1), average=False, name="sum").asnumpy().tolist()
expected = size * (size + 1) / 2
report = {"rank": rank, "size": size, "local_rank": hvd.local_rank(), "local_size": hvd.local_size(),
          "host": os.environ["SM_CURRENT_HOST"], "sum": total}
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "rank-{}.json".format(rank)), "w") as f:
    json.dump(report, f)
print("allreduce: rank {} of {} got {}".format(rank, size, total), flush=True)
sys.exit(0 if total == [expected] * 3 else 1)
