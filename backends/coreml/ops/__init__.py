"""Converters of ONNX ops to MIL ops, one module per op family (found by ``load_op_modules``).

A converter gets the ONNX node and the ``ExportContext``, builds MIL ops with ``ctx.mb`` and
returns one MIL variable per ONNX output. It names nothing: the driver names every op it added
after the ONNX node.
"""
