"""IR -> toyfw, one ONNX node at a time (driver, context, registry, ``ops/``)."""
