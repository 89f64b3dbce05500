"""Core ML backend: ONNX IR -> an ML Program ``.mlpackage``, built op by op with coremltools' MIL builder.

``coremltools`` is imported only inside this package (``native/`` loads it quietly), never by
``import unframe``.
"""
