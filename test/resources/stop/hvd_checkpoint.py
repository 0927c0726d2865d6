"""Horovod ranks that train until SIGTERM, then finish their step (one more allreduce, which
needs every rank) and save a checkpoint each. Prints "hvd_checkpoint: ready" once its handler is
installed and Horovod works."""
import json
import os
import signal
import threading

import horovod.mxnet as hvd
import mxnet as mx

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
hvd.init()
rank = hvd.rank()
hvd.allreduce(mx.nd.ones((3,)), average=False, name="warmup").wait_to_read()
print("hvd_checkpoint: ready, rank {}".format(rank), flush=True)
while not stop.wait(0.1):
    pass
total = hvd.allreduce(mx.nd.ones((3,)) * (rank + 1), average=False, name="last").asnumpy().tolist()
with open(os.path.join(os.environ["SM_MODEL_DIR"], "checkpoint-rank{}.json".format(rank)), "w") as f:
    json.dump({"rank": rank, "sum": total}, f)
print("hvd_checkpoint: saved, rank {}".format(rank), flush=True)
