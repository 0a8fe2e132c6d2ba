"""Files shipped beside exported graphs: they import only NumPy and onnxruntime, never rnnlab."""
