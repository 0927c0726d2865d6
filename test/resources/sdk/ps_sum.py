"""Parameter-server job for SDK local mode: every worker pushes rank+1 through the servers and checks
the pulled sum; the first host waits --save_delay seconds, then saves the model. The delay makes the
test see a host that leaves early: docker-compose (--abort-on-container-exit) stops every container
once the first one exits, so the model exists only if the other hosts wait for the job's end."""
import argparse
import json
import os
import time

import mxnet as mx

parser = argparse.ArgumentParser()
parser.add_argument("--save_delay", type=float, default=3.0)
args = parser.parse_args()

hosts = json.loads(os.environ["SM_HOSTS"])
current = os.environ["SM_CURRENT_HOST"]
kv = mx.kv.create("dist_sync")
kv.init("sum", mx.nd.zeros((2, 3)))
kv.push("sum", mx.nd.ones((2, 3)) * (kv.rank + 1))
pulled = mx.nd.zeros((2, 3))
kv.pull("sum", out=pulled)
total = pulled.asnumpy().tolist()
print("ps_sum: rank {} of {} on {} pulled {}".format(kv.rank, kv.num_workers, current, total[0]), flush=True)
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "sum-{}.json".format(kv.rank)), "w") as f:
    json.dump({"rank": kv.rank, "workers": kv.num_workers, "host_index": hosts.index(current), "sum": total}, f)
if current == hosts[0]:
    time.sleep(args.save_delay)
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "ps-sum.json"), "w") as f:
        json.dump({"workers": kv.num_workers, "sum": total}, f)
print("ps_sum: done", flush=True)
