#!/usr/bin/env bash
# `make demo`: the user's own example, PyTorch -> Caffe2 with validation, then Caffe2 -> ONNX,
# and an ONNX opset conversion of a model that ships with onnx. Outputs go to out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=out/demo
mkdir -p "$out"

available() { unframe frameworks --json | python -c "import json,sys; d={f['name']: f for f in json.load(sys.stdin)}; sys.exit(0 if d.get('$1', {}).get('export') else 1)"; }

if available pytorch && available caffe2; then
  echo "== PyTorch -> Caffe2 (py:examples/demo_model.py:make_model) =="
  unframe convert py:examples/demo_model.py:make_model --input x=1,3,32,32 \
    --from pytorch --to caffe2 -o "$out/demo_net" --validate --force
  echo
  echo "== Caffe2 -> ONNX =="
  unframe convert "$out/demo_net" --from caffe2 --to onnx -o "$out/demo.onnx" --validate --force
  echo
else
  echo "(the pytorch and caffe2 adapters are not both available here: skipping their demo)"
fi

echo "== ONNX opset 9 -> 13 (light_resnet50.onnx shipped inside the onnx package) =="
resnet=$(python -c "import onnx, pathlib; print(pathlib.Path(onnx.__file__).parent / 'backend/test/data/light/light_resnet50.onnx')")
unframe convert "$resnet" --from onnx --to onnx --opset 13 -o "$out/resnet50_opset13.onnx" --validate --force
