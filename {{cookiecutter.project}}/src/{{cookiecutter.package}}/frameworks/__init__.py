"""The training framework chosen when the project was generated.

Every framework module offers the same functions, so the stages never name a framework.
"""

from .{{ cookiecutter.framework }} import NAME, TrainParams, fit, load, predict_proba, save, to_onnx

__all__ = ["NAME", "TrainParams", "fit", "load", "predict_proba", "save", "to_onnx"]
