"""Core ML -> IR, op by op: ML Program packages (MIL ops) and NeuralNetwork ``.mlmodel`` layers."""
