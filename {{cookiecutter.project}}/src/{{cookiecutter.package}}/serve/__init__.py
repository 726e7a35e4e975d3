"""The serving side: onnxruntime and a lean ASGI app, free of training dependencies."""
