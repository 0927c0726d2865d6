"""Example training script, written the way SageMaker MXNet scripts are: it reads its data from
SM_CHANNEL_TRAIN, its hyperparameters from the command line, and saves the model to SM_MODEL_DIR.

It fits y = w.x + b on the CSV files of the ``train`` channel (last column is y). On more than one
host it uses the parameter server (kvstore ``dist_sync``) and each worker reads its own shard.
"""
import argparse
import glob
import json
import logging
import os

import mxnet as mx
import numpy as np

from mx_training_toolkit.training_utils import save


def load(channel_dir):
    rows = [np.loadtxt(path, delimiter=",", ndmin=2) for path in sorted(glob.glob(os.path.join(channel_dir, "*.csv")))]
    data = np.concatenate(rows).astype("float32")
    return data[:, :-1], data[:, -1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--kvstore", default="local")
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    hosts = json.loads(os.environ.get("SM_HOSTS", '["algo-1"]'))
    current_host = os.environ.get("SM_CURRENT_HOST", "algo-1")
    kvstore = mx.kv.create(args.kvstore)
    x, y = load(args.train)
    # each worker trains on its own shard of the data
    x, y = x[kvstore.rank::kvstore.num_workers], y[kvstore.rank::kvstore.num_workers]
    print("example: worker {} of {} on {}: {} rows, {} features".format(
        kvstore.rank, kvstore.num_workers, current_host, len(x), x.shape[1]), flush=True)

    data = mx.io.NDArrayIter(x, y, batch_size=args.batch_size, shuffle=True, label_name="label")
    net = mx.sym.LinearRegressionOutput(
        mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=1, name="fc"), mx.sym.Variable("label"),
        name="output")
    module = mx.mod.Module(net, data_names=["data"], label_names=["label"])
    module.fit(data, num_epoch=args.epochs, kvstore=kvstore, optimizer="sgd",
               optimizer_params={"learning_rate": args.learning_rate}, eval_metric="mse",
               initializer=mx.init.Xavier())
    mse = module.score(mx.io.NDArrayIter(x, y, batch_size=args.batch_size, label_name="label"), "mse")[0][1]
    weights = module.get_params()[0]["fc_weight"].asnumpy().round(2).tolist()
    print("example: final mse {:.4f}, weights {}".format(mse, weights), flush=True)
    save(args.model_dir, module, current_host, hosts)


if __name__ == "__main__":
    main()
