"""A heterogeneous job: the hosts of the distribution instance groups push and pull over a dist_sync
kvstore, the others run on their own. Each host writes what it saw to output/data/hetero.json.
Options: --linger S (the kvstore workers wait S seconds at the end), --fail-on-host H:C:S (host H
exits with status C after S seconds)."""
import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--linger", type=float, default=0.0)
parser.add_argument("--fail-on-host", default="")
args = parser.parse_args()

env = json.loads(os.environ["SM_TRAINING_ENV"])
current = env["current_host"]
seen = {"group": env["current_instance_group"], "is_master": env["is_master"],
        "distribution_hosts": env["distribution_hosts"], "is_hetero": env["is_hetero"],
        "dmlc": sorted(k for k in os.environ if k.startswith("DMLC_"))}

if args.fail_on_host:
    host, status, after = args.fail_on_host.split(":")
    if host == current:
        time.sleep(float(after))
        print("hetero_sum: exiting with {} on purpose".format(status), file=sys.stderr, flush=True)
        sys.exit(int(status))

if current in env["distribution_hosts"]:
    import mxnet as mx

    kv = mx.kv.create("dist_sync")
    kv.init("sum", mx.nd.zeros((2,)))
    kv.push("sum", mx.nd.ones((2,)) * (kv.rank + 1))
    pulled = mx.nd.zeros((2,))
    kv.pull("sum", out=pulled)
    seen.update(rank=kv.rank, num_workers=kv.num_workers, sum=pulled.asnumpy().tolist())
    print("hetero_sum: {} pulled {}".format(current, seen["sum"]), flush=True)
    time.sleep(args.linger)
else:
    print("hetero_sum: {} trains on its own".format(current), flush=True)
seen["finished_at"] = time.time()
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "hetero.json"), "w") as f:
    json.dump(seen, f)
