"""toyfw: a toy framework plugged into unframe through the ``unframe.frameworks`` entry point.

The worked example of docs/adding-a-framework.md, shaped as unframe's own frameworks are:

- ``native``: the ``.toy`` format (read, write, dtype table, a numpy runtime), used by both
  directions, as ``backends/caffe2/native`` is for Caffe2;
- ``backend``: IR -> toy, op by op (driver, context, registry, ``ops/``);
- ``frontend``: toy -> IR, layer by layer, importing only ``native``;
- ``adapter``: the ``Framework`` subclass the entry point names::

    [project.entry-points."unframe.frameworks"]
    toyfw = "toyfw.adapter:ToyFramework"
"""
