"""The project's package: pipeline stages, tracking, gates and the ONNX serving app."""
