"""A small Gluon regression trained with hvd.DistributedTrainer; every rank reports its final
parameters, and every rank calls training_utils.save (only rank 0 may write)."""
import json
import os

import horovod.mxnet as hvd
import mxnet as mx
from mxnet import autograd, gluon

from mx_training_toolkit import training_utils

hvd.init()
rank, size = hvd.rank(), hvd.size()
mx.random.seed(1)
net = gluon.nn.Dense(1, in_units=3)
net.initialize(mx.init.Constant(0.1))
net.hybridize()
params = net.collect_params()
hvd.broadcast_parameters(params, root_rank=0)
trainer = hvd.DistributedTrainer(params, "sgd", {"learning_rate": 0.1})
loss_fn = gluon.loss.L2Loss()
data = mx.nd.random.uniform(-1, 1, shape=(64, 3), ctx=mx.cpu()) + rank  # different data on every rank
label = data.sum(axis=1, keepdims=True) * 2 + 1
for _ in range(20):
    with autograd.record():
        loss = loss_fn(net(data), label)
    loss.backward()
    trainer.step(data.shape[0])
final = {name: p.data().asnumpy().round(6).tolist() for name, p in params.items()}
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "params-rank{}.json".format(rank)), "w") as f:
    json.dump(final, f, sort_keys=True)
training_utils.save(os.environ["SM_MODEL_DIR"], net, data_shapes=[("data", (64, 3))])
print("gluon: rank {} of {} trained".format(rank, size), flush=True)
# An orderly end: MXNet's engine may still hold Horovod operations when the interpreter exits, and
# tearing both down at once crashed a rank once in CI ("pure virtual method called", SIGABRT).
mx.nd.waitall()
hvd.shutdown()
