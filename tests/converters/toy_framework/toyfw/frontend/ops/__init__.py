"""The frontend's converters, one module per family of layers; ``load_op_modules`` imports them."""
