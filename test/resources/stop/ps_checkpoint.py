"""A dist_sync job that trains until SIGTERM, then finishes its batch (a push and a pull, which
need every server of the job) and saves a checkpoint on every host. Prints "ps_checkpoint: ready"
once its handler is installed and the kvstore works."""
import json
import os
import signal
import threading

import mxnet as mx

host = os.environ["SM_CURRENT_HOST"]
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

kv = mx.kv.create("dist_sync")
shape = (2, 3)
kv.init("w", mx.nd.zeros(shape))


def batch():
    kv.push("w", mx.nd.ones(shape) * (kv.rank + 1))
    out = mx.nd.zeros(shape)
    kv.pull("w", out=out)
    return out.asnumpy()


batch()
print("ps_checkpoint: ready on {}".format(host), flush=True)
while not stop.wait(0.1):
    pass
print("ps_checkpoint: got SIGTERM on {}: finishing the batch".format(host), flush=True)
pulled = batch()  # blocks for good if the servers are gone
with open(os.path.join(os.environ["SM_MODEL_DIR"], "checkpoint-rank{}.json".format(kv.rank)), "w") as f:
    json.dump({"rank": kv.rank, "w": pulled.tolist()}, f)
print("ps_checkpoint: saved on {}".format(host), flush=True)
