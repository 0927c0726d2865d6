"""Uses each library of the image's MXNet ecosystem once, with no network, and writes what worked
to output/data/ecosystem.json: a GluonCV model-zoo network's forward pass (no pretrained weights),
OpenCV on its output, a GluonNLP vocabulary and its compiled BERT tokenizer, pandas, scikit-learn,
SciPy and h5py on the results, and an MXNet model exported to ONNX and checked."""
import json
import os

import cv2
import gluoncv
import gluonnlp
import h5py
import mxnet as mx
import numpy as np
import onnx
import pandas as pd
import scipy.special
import sklearn.linear_model

out_dir = os.environ["SM_OUTPUT_DATA_DIR"]
report = {"versions": {m.__name__: m.__version__ for m in (cv2, gluoncv, gluonnlp, h5py, mx, np, onnx, pd, scipy,
                                                            sklearn)}}

net = gluoncv.model_zoo.get_model("resnet18_v1b", pretrained=False, classes=10)
net.initialize(mx.init.Xavier())
image = cv2.resize(np.random.RandomState(0).randint(0, 255, (64, 48, 3)).astype(np.uint8), (32, 32))
batch = mx.nd.array(image.transpose(2, 0, 1)[None].astype(np.float32) / 255)
scores = net(batch)
report["gluoncv_output_shape"] = list(scores.shape)
report["scipy_softmax_sum"] = round(float(scipy.special.softmax(scores.asnumpy()[0]).sum()), 6)

counter = gluonnlp.data.count_tokens("the cat sat on the mat the end".split())
vocab = gluonnlp.Vocab(counter, min_freq=1)
report["gluonnlp_vocab"] = {"len": len(vocab), "the": vocab["the"], "unknown": vocab["zebra"]}
from gluonnlp.data.fast_bert_tokenizer import BasicTokenizer  # the Cython extension
report["gluonnlp_tokens"] = BasicTokenizer(lower=True).tokenize("Hello, World!")

frame = pd.DataFrame({"x": np.arange(6.0), "y": 2 * np.arange(6.0) + 1})
model = sklearn.linear_model.LinearRegression().fit(frame[["x"]], frame["y"])
report["sklearn_slope"] = round(float(model.coef_[0]), 6)
with h5py.File(os.path.join(out_dir, "scores.h5"), "w") as f:
    f["scores"] = scores.asnumpy()
with h5py.File(os.path.join(out_dir, "scores.h5"), "r") as f:
    report["h5py_shape"] = list(f["scores"].shape)

small = mx.gluon.nn.HybridSequential()
small.add(mx.gluon.nn.Conv2D(4, 3), mx.gluon.nn.Activation("relu"), mx.gluon.nn.Dense(3))
small.initialize()
small.hybridize()
small(mx.nd.ones((1, 3, 8, 8)))
prefix = os.path.join(out_dir, "small")
small.export(prefix)
path = mx.onnx.export_model(prefix + "-symbol.json", prefix + "-0000.params", in_shapes=[(1, 3, 8, 8)],
                            in_types=[np.float32], onnx_file_path=os.path.join(out_dir, "small.onnx"))
onnx.checker.check_model(onnx.load(path))
report["onnx_nodes"] = sorted({node.op_type for node in onnx.load(path).graph.node})

with open(os.path.join(out_dir, "ecosystem.json"), "w") as f:
    json.dump(report, f, indent=1, sort_keys=True)
print("ecosystem: ok")
