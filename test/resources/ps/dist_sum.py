"""A dist_sync job: push rank-dependent arrays, check the pulled sum, train a small model, save on
the first host. Options: --steps N (training batches), --sleep S (pause per batch), --exit-on-host H:C."""
import argparse
import json
import os
import sys
import time

import mxnet as mx
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--exit_on_host", default="")
args = parser.parse_args()

hosts = json.loads(os.environ["SM_HOSTS"])
current = os.environ["SM_CURRENT_HOST"]
kv = mx.kv.create("dist_sync")
print("dist_sum: rank {} of {} on {}".format(kv.rank, kv.num_workers, current), flush=True)
assert kv.num_workers == len(hosts), (kv.num_workers, hosts)

shape = (2, 3)
kv.init("sum", mx.nd.zeros(shape))
kv.push("sum", mx.nd.ones(shape) * (kv.rank + 1))
pulled = mx.nd.zeros(shape)
kv.pull("sum", out=pulled)
expected = sum(range(1, kv.num_workers + 1))
assert (pulled.asnumpy() == expected).all(), pulled.asnumpy()
print("dist_sum: pulled sum {} as expected".format(expected), flush=True)
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "sum.json"), "w") as f:
    json.dump({"rank": kv.rank, "sum": pulled.asnumpy().tolist(), "expected": expected}, f)

if args.exit_on_host:
    host, code = args.exit_on_host.split(":")
    if host == current:
        print("dist_sum: exiting with {} on purpose".format(code), file=sys.stderr, flush=True)
        os._exit(int(code))

rng = np.random.RandomState(kv.rank)
x = rng.rand(16 * args.steps, 4).astype("float32")
y = (x @ np.array([1.0, -2.0, 3.0, 0.5], dtype="float32")).astype("float32")
data = mx.io.NDArrayIter(x, y, batch_size=16, label_name="lin_reg_label")
net = mx.sym.LinearRegressionOutput(mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=1, name="fc"),
                                    name="lin_reg")
mod = mx.mod.Module(net, label_names=["lin_reg_label"])


def pause(_param):
    if args.sleep:
        time.sleep(args.sleep)


mod.fit(data, num_epoch=1, kvstore=kv, optimizer="sgd", optimizer_params={"learning_rate": 0.05},
        batch_end_callback=pause)
print("dist_sum: trained {} steps".format(args.steps), flush=True)
if current == hosts[0]:
    mod.save_checkpoint(os.path.join(os.environ["SM_MODEL_DIR"], "model"), 1)
print("dist_sum: done", flush=True)
