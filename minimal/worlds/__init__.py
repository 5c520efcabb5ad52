"""The worlds the chapters learn in: environments, tasks and datasets, with no learning inside.

See :mod:`minimal` for the map of the package.
"""
