"""diffv2m.export: what makes the runtime's artefacts -- ONNX export and parity (torch),
TensorRT engine builds and their entry in the engine cache -- and their CLIs.  Running the
artefacts is :mod:`diffv2m.runtime` (torch-free)."""
