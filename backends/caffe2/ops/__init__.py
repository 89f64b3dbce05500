"""Export converters, one module per op family (every version of an op in one module).

Every public module here is imported by ``driver.export_registry`` (``load_op_modules``, by
``pkgutil``), so adding a family is adding a file. Modules starting with ``_`` hold helpers.
"""
