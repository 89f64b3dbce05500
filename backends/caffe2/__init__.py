"""Caffe2 backend: caffe2-compatible protobuf bindings, NetDef I/O and a reference executor."""
