"""Example Horovod training script (Gluon), written the way SageMaker MXNet scripts with
distribution={'mpi': {...}} are: every rank runs it, Horovod averages the gradients.

It fits y = w.x + b, on the CSV files of the ``train`` channel when there is one (last column is
y), else on generated data. Each rank trains on its own shard; rank 0 saves the model.

    mx-train --hosts 2 --horovod 2 --code examples/horovod_gluon
"""
import argparse
import glob
import os

import horovod.mxnet as hvd
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from mx_training_toolkit.training_utils import save


def load(channel_dir):
    if channel_dir and glob.glob(os.path.join(channel_dir, "*.csv")):
        rows = [np.loadtxt(p, delimiter=",", ndmin=2) for p in sorted(glob.glob(os.path.join(channel_dir, "*.csv")))]
        data = np.concatenate(rows).astype("float32")
        return data[:, :-1], data[:, -1:]
    rng = np.random.RandomState(7)  # the same data on every rank: each takes its own shard below
    x = rng.uniform(-1, 1, size=(2048, 3)).astype("float32")
    y = (x @ np.array([[2.0], [-3.0], [0.5]], dtype="float32") + 1 + rng.normal(0, 0.01, (2048, 1))).astype("float32")
    return x, y


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    args = parser.parse_args()

    hvd.init()
    x, y = load(args.train)
    x, y = x[hvd.rank()::hvd.size()], y[hvd.rank()::hvd.size()]
    print("example: rank {} of {} (local rank {}) on {}: {} rows".format(
        hvd.rank(), hvd.size(), hvd.local_rank(), os.environ.get("SM_CURRENT_HOST"), len(x)), flush=True)

    net = gluon.nn.Dense(1, in_units=x.shape[1])
    net.initialize(mx.init.Xavier())
    net.hybridize()
    params = net.collect_params()
    hvd.broadcast_parameters(params, root_rank=0)  # every rank starts from rank 0's weights
    # The learning rate scales with the number of ranks, as Horovod recommends.
    trainer = hvd.DistributedTrainer(params, "sgd", {"learning_rate": args.learning_rate * hvd.size()})
    loss_fn = gluon.loss.L2Loss()
    data = gluon.data.DataLoader(gluon.data.ArrayDataset(x, y), batch_size=args.batch_size, shuffle=True)
    for epoch in range(args.epochs):
        total = 0.0
        for batch, label in data:
            with autograd.record():
                loss = loss_fn(net(batch), label)
            loss.backward()
            trainer.step(batch.shape[0])
            total += loss.sum().asscalar()
        # The mean loss over every rank's shard, the same number on every rank.
        mean = hvd.allreduce(mx.nd.array([total / len(x)]), average=True, name="loss-{}".format(epoch)).asscalar()
        if hvd.rank() == 0:
            print("example: epoch {} loss {:.5f}".format(epoch, mean), flush=True)
    weights = params[net.weight.name].data().asnumpy().round(2).tolist()
    print("example: rank {} weights {}".format(hvd.rank(), weights), flush=True)
    save(args.model_dir, net, data_shapes=[("data", (args.batch_size, x.shape[1]))])  # writes on rank 0 only
    mx.nd.waitall()  # finish every pending operation, then stop Horovod, before the interpreter exits
    hvd.shutdown()


if __name__ == "__main__":
    main()
