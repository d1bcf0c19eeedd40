#!/usr/bin/python3
"""Export torchvision models to small, weight-free ONNX files for the importer's tests.

Made the shipped files with (Debian 12's python3-torch 1.13, python3-torchvision 0.14, python3-onnx):

    /usr/bin/python3 scripts/export_onnx.py tests/data/onnx

Each model is built with weights=None (random init: the importer reads shapes, not weights),
exported at its published input size (224, efficientnet_b1 240) with opset 17, batch 1, in eval
mode with TrainingMode.PRESERVE (so BatchNormalization nodes stay in the graph instead of being
folded into the convs by the exporter: the importer folds them itself), and then
stripped: every initializer becomes a graph input of the same name, element type and dims
(so a file is a few tens of KB and every shape stays inferable), and value_info from onnx's
shape inference is kept. Optional: nothing in the build or the tests runs this script.
"""
import os
import sys

import onnx
import onnx.shape_inference
import torch
import torchvision

MODELS = [
    ("resnet18", 224), ("resnet34", 224), ("resnet50", 224), ("resnet101", 224),
    ("resnet152", 224), ("resnext50_32x4d", 224), ("wide_resnet50_2", 224),
    ("regnet_x_400mf", 224), ("regnet_y_400mf", 224), ("regnet_y_800mf", 224),
    ("regnet_y_1_6gf", 224), ("mobilenet_v2", 224), ("mobilenet_v3_large", 224),
    ("efficientnet_b0", 224), ("efficientnet_b1", 240), ("convnext_tiny", 224),
]
# Also at opset 13, where torch writes LayerNorm decomposed (ReduceMean, Sub, Pow, ReduceMean,
# Add, Sqrt, Div, Mul, Add): NAME_opset13.onnx.
OPSET13 = [("convnext_tiny", 224)]


def strip_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    existing = {i.name for i in graph.input}
    for init in graph.initializer:
        if init.name in existing:
            continue
        graph.input.append(onnx.helper.make_tensor_value_info(
            init.name, init.data_type, list(init.dims)))
    del graph.initializer[:]
    return model


def export(name: str, size: int, out_dir: str, opset: int = 17) -> None:
    torch.manual_seed(0)
    net = getattr(torchvision.models, name)(weights=None).eval()
    path = os.path.join(out_dir, name + ("" if opset == 17 else f"_opset{opset}") + ".onnx")
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        torch.onnx.export(net, x, path, opset_version=opset, input_names=["input"],
                          output_names=["logits"], do_constant_folding=True,
                          training=torch.onnx.TrainingMode.PRESERVE)
    model = onnx.load(path)
    model = onnx.shape_inference.infer_shapes(model)
    model = strip_initializers(model)
    model.doc_string = f"torchvision {torchvision.__version__} {name}(weights=None), input 1x3x{size}x{size}, initializers stripped to graph inputs"
    onnx.save(model, path)
    print(f"{path}: {os.path.getsize(path)} bytes", flush=True)


def main() -> None:
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/data/onnx"
    only = set(sys.argv[2:])
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    for name, size in MODELS:
        if only and name not in only:
            continue
        export(name, size, out_dir)
    for name, size in OPSET13:
        if only and name not in only:
            continue
        export(name, size, out_dir, opset=13)


if __name__ == "__main__":
    main()
