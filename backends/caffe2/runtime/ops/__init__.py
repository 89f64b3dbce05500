"""Op implementations of the reference executor, one module per family.

Importing a module registers its ops; ``runtime.workspace.load_ops`` imports them all, and
``extra.py`` too where it exists.
"""
