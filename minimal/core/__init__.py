"""The shared core: configs, the training loop, the tiny GPT, and the equations every chapter reuses.

See :mod:`minimal` for the map of the package.
"""
