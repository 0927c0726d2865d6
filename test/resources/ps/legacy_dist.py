"""A legacy-mode script (train() and no __main__ block) that trains with kvstore dist_sync."""
import mxnet as mx
import numpy as np


def train(hyperparameters, num_cpus, hosts, current_host, **kwargs):
    kv = mx.kv.create("dist_sync")
    assert kv.num_workers == len(hosts)
    kv.init("check", mx.nd.zeros((3,)))
    kv.push("check", mx.nd.ones((3,)) * (kv.rank + 1))
    out = mx.nd.zeros((3,))
    kv.pull("check", out=out)
    assert out.asnumpy().tolist() == [sum(range(1, len(hosts) + 1))] * 3, out
    print("legacy_dist: rank {} pulled {}".format(kv.rank, out.asnumpy().tolist()), flush=True)
    rng = np.random.RandomState(kv.rank)
    x = rng.rand(64, 4).astype("float32")
    y = x.sum(axis=1)
    it = mx.io.NDArrayIter(x, y, batch_size=16, label_name="label")
    net = mx.sym.LinearRegressionOutput(mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=1),
                                        mx.sym.Variable("label"), name="out")
    mod = mx.mod.Module(net, label_names=["label"])
    mod.fit(it, num_epoch=2, kvstore=kv, optimizer="sgd", optimizer_params={"learning_rate": 0.1})
    return mod
