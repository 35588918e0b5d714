"""diffv2m.export: ONNX export and parity (torch), TensorRT engines and their cache, and the
torch-free runtime (``diffv2m.export.runtime``) that runs exported graphs."""
