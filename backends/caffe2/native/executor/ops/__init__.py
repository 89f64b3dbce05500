"""Op implementations of the reference executor, one module per family.

Importing a module registers its ops; ``workspace.load_ops`` imports every module here (found by
``pkgutil``), so adding a family is adding a file.
"""
