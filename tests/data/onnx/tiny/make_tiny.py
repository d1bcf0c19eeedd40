#!/usr/bin/python3
"""Tiny hand-made ONNX graphs (a few hundred bytes each, python3-onnx only): the importer's
fuzz seeds, one per block pattern, small so libFuzzer runs thousands of inputs a second.

    /usr/bin/python3 tests/data/onnx/tiny/make_tiny.py
"""
import os

import onnx
from onnx import TensorProto, helper

here = os.path.dirname(os.path.abspath(__file__))


class G:
    def __init__(self, c, hw):
        self.nodes, self.inputs, self.n = [], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])], 0
        self.init = []

    def w(self, dims):
        self.n += 1
        name = f"w{self.n}"
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
        return name

    def const(self, value):
        self.n += 1
        name = f"k{self.n}"
        self.init.append(helper.make_tensor(name, TensorProto.FLOAT, [], [value]))
        return name

    def op(self, op, inputs, **attrs):
        self.n += 1
        out = f"v{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op.lower()}{self.n}", **attrs))
        return out

    def conv(self, x, cin, cout, k, s=1, g=1, bn=True, act="Relu", bias=False):
        ins = [x, self.w([cout, cin // g, k, k])] + ([self.w([cout])] if bias else [])
        y = self.op("Conv", ins, kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4, group=g)
        if bn:
            y = self.op("BatchNormalization", [y] + [self.w([cout]) for _ in range(4)])
        if act == "SiLU":
            y = self.op("Mul", [y, self.op("Sigmoid", [y])])
        elif act:
            y = self.op(act, [y])
        return y

    def se(self, x, c, sq, act="Relu", gate="Sigmoid"):
        p = self.op("GlobalAveragePool", [x])
        a = self.conv(p, c, sq, 1, bn=False, act=act, bias=True)
        b = self.conv(a, sq, c, 1, bn=False, act=gate, bias=True)
        return self.op("Mul", [x, b])

    def head(self, x, c):
        p = self.op("GlobalAveragePool", [x])
        f = self.op("Flatten", [p])
        return self.op("Gemm", [f, self.w([4, c]), self.w([4])], transB=1)

    def save(self, name, out):
        graph = helper.make_graph(self.nodes, name, self.inputs,
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                                  initializer=self.init)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.save(model, os.path.join(here, name + ".onnx"))


# ResNet basic block with a strided projection shortcut.
g = G(4, 8)
y = g.conv("x", 4, 4, 3, s=1)
y = g.op("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
a = g.conv(y, 4, 8, 3, s=2)
a = g.conv(a, 8, 8, 3, act=None)
s = g.conv(y, 4, 8, 1, s=2, act=None)
y = g.op("Relu", [g.op("Add", [a, s])])
g.save("basic", g.head(y, 8))

# RegNetY-like bottleneck: grouped 3x3 and SE.
g = G(8, 8)
a = g.conv("x", 8, 8, 1)
a = g.conv(a, 8, 8, 3, g=2)
a = g.se(a, 8, 2)
a = g.conv(a, 8, 8, 1, act=None)
y = g.op("Relu", [g.op("Add", [a, "x"])])
g.save("regnety", g.head(y, 8))

# EfficientNet-like inverted residual: SiLU, 5x5 depthwise, SE, residual; then one without.
g = G(4, 8)
a = g.conv("x", 4, 16, 1, act="SiLU")
a = g.conv(a, 16, 16, 5, g=16, act="SiLU")
a = g.se(a, 16, 2, act="SiLU")
a = g.conv(a, 16, 4, 1, act=None)
y = g.op("Add", [a, "x"])
b = g.conv(y, 4, 4, 3, s=2, g=4, act="Clip") if False else g.conv(y, 4, 4, 3, s=2, g=4, act="HardSwish")
b = g.conv(b, 4, 8, 1, act=None)
g.save("inverted", g.head(b, 8))

# ConvNeXt-like block: dw 7x7 (bias), NHWC LayerNorm, MatMul + GELU (erf), MatMul, scale, add.
g = G(4, 8)
d = g.conv("x", 4, 4, 7, g=4, bn=False, act=None, bias=True)
t = g.op("Transpose", [d], perm=[0, 2, 3, 1])
n = g.op("LayerNormalization", [t, g.w([4]), g.w([4])], axis=-1)
m = g.op("Add", [g.op("MatMul", [n, g.w([4, 16])]), g.w([16])])
e = g.op("Add", [g.op("Erf", [g.op("Div", [m, g.const(1.4142135)])]), g.const(1.0)])
m = g.op("Mul", [g.op("Mul", [m, e]), g.const(0.5)])
m = g.op("Add", [g.op("MatMul", [m, g.w([16, 4])]), g.w([4])])
b = g.op("Transpose", [m], perm=[0, 3, 1, 2])
b = g.op("Mul", [b, g.w([4, 1, 1])])
y = g.op("Add", [b, "x"])
g.save("convnext", g.head(y, 4))

# The same block with its LayerNorm decomposed as torch writes it below opset 17.
g = G(4, 8)
d = g.conv("x", 4, 4, 7, g=4, bn=False, act=None, bias=True)
t = g.op("Transpose", [d], perm=[0, 2, 3, 1])
c = g.op("Sub", [t, g.op("ReduceMean", [t], axes=[-1])])
v = g.op("ReduceMean", [g.op("Pow", [c, g.const(2.0)])], axes=[-1])
n = g.op("Div", [c, g.op("Sqrt", [g.op("Add", [v, g.const(1e-6)])])])
n = g.op("Add", [g.op("Mul", [n, g.w([4])]), g.w([4])])
m = g.op("Add", [g.op("MatMul", [n, g.w([4, 16])]), g.w([16])])
e = g.op("Add", [g.op("Erf", [g.op("Div", [m, g.const(1.4142135)])]), g.const(1.0)])
m = g.op("Mul", [g.op("Mul", [m, e]), g.const(0.5)])
m = g.op("Add", [g.op("MatMul", [m, g.w([16, 4])]), g.w([4])])
b = g.op("Transpose", [m], perm=[0, 3, 1, 2])
y = g.op("Add", [b, "x"])
g.save("convnext_decomposed", g.head(y, 4))
