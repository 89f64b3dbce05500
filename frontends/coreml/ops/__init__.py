"""Converters, one module per family: ``mil_*`` for MIL ops, ``layers_*`` for NeuralNetwork layers."""
