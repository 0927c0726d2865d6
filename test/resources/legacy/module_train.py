"""Trains a tiny Module on generated data; saves its predictions; the default save writes it.

Imports the default serializer the way old scripts do: the runner must still call it as
save(model_dir, model), not as the script's own save(model, model_dir).
"""
import os

import mxnet as mx
import numpy as np
from sagemaker_mxnet_container.training_utils import save

IMPORTED_DEFAULT_SAVE = save  # the runner must see this is our own save, not a user save(model, model_dir)


def train(hyperparameters, output_data_dir, **kwargs):
    np.random.seed(7)
    mx.random.seed(7)
    x = np.random.rand(64, 5).astype("float32")
    y = (x.sum(axis=1) > 2.5).astype("float32")
    data = mx.sym.var("data")
    net = mx.sym.FullyConnected(data, num_hidden=8, name="fc1")
    net = mx.sym.Activation(net, act_type="relu", name="relu1")
    net = mx.sym.FullyConnected(net, num_hidden=2, name="fc2")
    net = mx.sym.SoftmaxOutput(net, name="softmax")
    module = mx.mod.Module(net, data_names=["data"], label_names=["softmax_label"],
                           context=mx.cpu())
    module.fit(mx.io.NDArrayIter(x, y, batch_size=16), num_epoch=int(hyperparameters["epochs"]),
               initializer=mx.init.Xavier(), optimizer="sgd",
               optimizer_params={"learning_rate": 0.5})
    predictions = module.predict(mx.io.NDArrayIter(x, batch_size=16)).asnumpy()
    np.save(os.path.join(output_data_dir, "inputs.npy"), x)
    np.save(os.path.join(output_data_dir, "predictions.npy"), predictions)
    return module
