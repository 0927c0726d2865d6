"""Trains a tiny hybridized Gluon net; its last forward call is on a (10, 5) batch."""
import os

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd


def train(num_cpus, output_data_dir):
    np.random.seed(3)
    mx.random.seed(3)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(8, activation="relu"), gluon.nn.BatchNorm(), gluon.nn.Dense(2))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    x = nd.array(np.random.rand(64, 5))
    y = nd.array((x.asnumpy().sum(axis=1) > 2.5).astype("float32"))
    for start in range(0, 64, 16):
        with autograd.record():
            loss = loss_fn(net(x[start:start + 16]), y[start:start + 16])
        loss.backward()
        trainer.step(16)
    inputs = np.random.rand(10, 5).astype("float32")
    predictions = net(nd.array(inputs)).asnumpy()
    np.save(os.path.join(output_data_dir, "inputs.npy"), inputs)
    np.save(os.path.join(output_data_dir, "predictions.npy"), predictions)
    return net
