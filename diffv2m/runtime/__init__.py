"""The torch-free runtime: running exported graphs behind :class:`diffv2m.synthesis.Backend`.

* :mod:`~diffv2m.runtime.ort` -- ``load_runtime``: ONNX Runtime sessions (TensorRT EP ->
  CUDA EP -> CPU), or TensorRT engines where the engine cache has matching ones;
* :mod:`~diffv2m.runtime.manifest` -- the exported-graph directory's ``manifest.json``;
* :mod:`~diffv2m.runtime.providers` -- execution-provider order, physical-core count;
* :mod:`~diffv2m.runtime.engines` -- the TensorRT engine cache: GPU identity, lookup;
* :mod:`~diffv2m.runtime.tensorrt` -- running one engine (tensorrt imported lazily).

What makes these artefacts (ONNX export and parity, engine builds) is :mod:`diffv2m.export`.
"""
