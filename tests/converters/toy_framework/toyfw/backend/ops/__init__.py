"""The backend's converters, one module per op family; ``load_op_modules`` imports them all."""
