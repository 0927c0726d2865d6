"""Returns a Module whose parameter file fails half-way through, as on a full disk."""
import errno

import mxnet as mx


class DiskFullModule(mx.mod.Module):
    def save_params(self, fname):
        with open(fname, "wb") as stream:
            stream.write(b"\x00" * 64)
        raise OSError(errno.ENOSPC, "No space left on device", fname)


def train(**kwargs):
    data = mx.sym.var("data")
    module = DiskFullModule(mx.sym.FullyConnected(data, num_hidden=2, name="fc"),
                            data_names=["data"], label_names=None)
    module.bind(data_shapes=[("data", (4, 3))], for_training=False)
    module.init_params()
    return module
