"""Import converters, one module per op family.

Every public module here is imported by ``driver.import_registry`` (``load_op_modules``, by
``pkgutil``), so adding a family is adding a file.
"""
