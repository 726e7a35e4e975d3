"""The pipeline's stages, one module each, every one a ``run(params, paths)`` owning its IO.

``dvc.yaml`` lists each stage's module and the modules it imports as the stage's code
dependencies (the project's tests check that list against the imports).
"""
