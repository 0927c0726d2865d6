"""Script mode on the GPU image without a GPU: a small Gluon regression trained on the CPU context
(mxnet-cu112 runs CPU jobs too); reports what MXNet and the launcher see, and the losses."""
import json
import os

import mxnet as mx
from mxnet import autograd, gluon

from mx_training_toolkit import training_utils

mx.random.seed(1)
ctx = mx.cpu()
net = gluon.nn.Dense(1, in_units=3)
net.initialize(mx.init.Constant(0.1), ctx=ctx)
net.hybridize()
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
loss_fn = gluon.loss.L2Loss()
data = mx.nd.random.uniform(-1, 1, shape=(64, 3), ctx=ctx)
label = data.sum(axis=1, keepdims=True) * 2 + 1
losses = []
for _ in range(100):
    with autograd.record():
        loss = loss_fn(net(data), label)
    loss.backward()
    trainer.step(data.shape[0])
    losses.append(float(loss.mean().asscalar()))
report = {"num_gpus": mx.context.num_gpus(), "SM_NUM_GPUS": os.environ["SM_NUM_GPUS"],
          "first_loss": losses[0], "last_loss": losses[-1], "mxnet": mx.__version__}
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "train.json"), "w") as f:
    json.dump(report, f)
training_utils.save(os.environ["SM_MODEL_DIR"], net, data_shapes=[("data", (64, 3))])
print("gpu_image_cpu_train: loss %.4f -> %.4f on %s" % (losses[0], losses[-1], ctx), flush=True)
