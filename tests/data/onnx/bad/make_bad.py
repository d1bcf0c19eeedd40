#!/usr/bin/python3
"""Bad inputs for `lasnet import`, each resnet18.onnx with one defect (python3-onnx only):

    /usr/bin/python3 tests/data/onnx/bad/make_bad.py

dynamic_input.onnx   the image input's batch and spatial dims are symbolic (N, H, W)
unsupported_op.onnx  the first Relu inside layer1.0 is a Softplus
cycle.onnx           layer1.0's first conv reads the output of its own block's add
missing_input.onnx   layer1.0's first conv reads a value nothing produces
"""
import os

import onnx

here = os.path.dirname(os.path.abspath(__file__))
source = os.path.join(here, "..", "resnet18.onnx")


def load():
    return onnx.load(source)


def first(model, prefix, op):
    return next(n for n in model.graph.node if n.name.startswith(prefix) and n.op_type == op)


m = load()
dims = m.graph.input[0].type.tensor_type.shape.dim
for k, name in ((0, "N"), (2, "H"), (3, "W")):
    dims[k].ClearField("dim_value")
    dims[k].dim_param = name
onnx.save(m, os.path.join(here, "dynamic_input.onnx"))

m = load()
first(m, "/layer1/layer1.0/", "Relu").op_type = "Softplus"
onnx.save(m, os.path.join(here, "unsupported_op.onnx"))

m = load()
conv = first(m, "/layer1/layer1.0/", "Conv")
add = first(m, "/layer1/layer1.0/", "Add")
conv.input[0] = add.output[0]
onnx.save(m, os.path.join(here, "cycle.onnx"))

m = load()
conv = first(m, "/layer1/layer1.0/", "Conv")
conv.input[0] = "nowhere"
onnx.save(m, os.path.join(here, "missing_input.onnx"))
