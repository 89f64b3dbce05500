"""Caffe2 backend: ``ir.Model`` -> predict and init NetDefs with Caffe2's own operators.

The shape every backend has: ``driver.py`` (the conversion loop: ``export_model``,
``export_registry``), ``context.py`` (``ExportContext``, what converters ask), ``registry.py``
(the ``OpRegistry``), ``ops/<family>.py`` (the converters) and ``native/`` (the Caffe2 format:
proto, NetDef I/O, dtypes, arguments, the reference executor), which the importer
(``frontends/caffe2``) shares.
"""
