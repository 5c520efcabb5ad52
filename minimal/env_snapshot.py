"""Save and restore a gymnasium environment's state, so that an RL run resumes exactly.

A checkpoint of a supervised run needs the weights, the optimizer and the random
generators.  A checkpoint of an RL run needs the *environments* too: where each
episode stands, how many steps it has run (the time limit), and the generator
that will draw the next start state.  Without them a resumed run starts fresh
episodes and drifts away from the run that was never interrupted.

Gymnasium has no general "get state" API, so this module takes the simplest
route that is exact for the environments in this book.  It walks the wrapper
chain (``TimeLimit -> OrderEnforcing -> PassiveEnvChecker -> CartPoleEnv``) and,
for each layer, saves

* every attribute that is plain data: ``None``, numbers, strings, numpy arrays
  and scalars, and lists, tuples and string-keyed dicts of those (for CartPole:
  the pole's ``state`` and ``steps_beyond_terminated``; TimeLimit's
  ``_elapsed_steps``);
* the state of every numpy random generator (the one ``reset`` draws from).

It skips attributes that describe the environment and never change (its
observation and action spaces, its registry spec) and the ``env`` link to the
next layer, which it visits in turn.  Anything else, such as a physics engine's
handle, cannot be saved this way: :func:`env_state` raises
:class:`NotSnapshotable` naming the attribute, so that a trainer can refuse to
resume instead of silently resuming a different run.

Snapshots hold only tensors, Python scalars, strings and containers, so they go
into checkpoints that load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from typing import Any, Iterator

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec


class NotSnapshotable(ValueError):
    """An environment keeps state in an object that :func:`env_state` cannot save."""


def wrapper_chain(env: gym.Env) -> Iterator[gym.Env]:
    """The outermost wrapper first, the unwrapped environment last."""
    layer = env
    while isinstance(layer, gym.Wrapper):
        yield layer
        layer = layer.env
    yield layer


# -------------------------------------------------- one value <-> plain data
def _encode(value: Any, where: str) -> Any:
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":  # before float: np.float64
        return {"scalar": torch.from_numpy(np.asarray(value).copy())}  # is a float subclass
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"ndarray": torch.from_numpy(value.copy())}
    if isinstance(value, np.random.Generator):
        return {"rng": value.bit_generator.state}  # a dict of ints and a name
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
    raise NotSnapshotable(f"{where} is a {type(value).__name__}, which an environment "
                          "snapshot cannot save (only plain data and numpy generators)")


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    (kind, data), = value.items()
    if kind == "ndarray":
        return data.numpy().copy()
    if kind == "scalar":
        return data.numpy()[()]  # a numpy scalar of the saved dtype
    if kind == "rng":
        bit_generator = getattr(np.random, data["bit_generator"], None)
        if not (isinstance(bit_generator, type) and issubclass(bit_generator, np.random.BitGenerator)):
            raise ValueError(f"snapshot names an unknown bit generator {data['bit_generator']!r}")
        rng = np.random.Generator(bit_generator())
        rng.bit_generator.state = data
        return rng
    if kind in ("list", "tuple"):
        items = [_decode(v) for v in data]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {k: _decode(v) for k, v in data.items()}
    raise ValueError(f"snapshot holds a value of unknown kind {kind!r}")


# --------------------------------------------------------- whole environment
def env_state(env: gym.Env) -> list[dict]:
    """Snapshot of ``env``: for each layer of its wrapper chain, its type and saved attributes."""
    layers = []
    for layer in wrapper_chain(env):
        name = type(layer).__name__
        saved = {attr: _encode(value, f"{name}.{attr}") for attr, value in vars(layer).items()
                 if attr != "env" and not isinstance(value, (gym.Space, EnvSpec))}
        layers.append({"type": name, "attributes": saved})
    return layers


def load_env_state(env: gym.Env, snapshot: list[dict]) -> None:
    """Put ``env`` back into the state :func:`env_state` saved (same wrapper chain required)."""
    chain = list(wrapper_chain(env))
    have, want = [type(layer).__name__ for layer in chain], [s["type"] for s in snapshot]
    if have != want:
        raise ValueError(f"snapshot of wrappers {want} does not fit an environment wrapped "
                         f"as {have}")
    for layer, saved in zip(chain, snapshot):
        for attr, value in saved["attributes"].items():
            setattr(layer, attr, _decode(value))


def vector_env_state(envs: gym.vector.SyncVectorEnv) -> list[list[dict]]:
    """Snapshots of each sub-environment of a same-step-autoreset vector env.

    With ``AutoresetMode.SAME_STEP`` an environment that ends is reset inside the same
    ``step`` call, and the vector env's own buffers are rewritten on every step, so the
    sub-environments hold all the state there is.  Other autoreset modes carry a
    "reset on the next step" flag between calls, which this function does not save.
    """
    if envs.autoreset_mode != gym.vector.AutoresetMode.SAME_STEP:
        raise NotSnapshotable(f"vector env with autoreset mode {envs.autoreset_mode}; only "
                              "SAME_STEP keeps no state of its own between steps")
    return [env_state(env) for env in envs.envs]


def load_vector_env_state(envs: gym.vector.SyncVectorEnv, snapshot: list[list[dict]]) -> None:
    if len(snapshot) != envs.num_envs:
        raise ValueError(f"snapshot of {len(snapshot)} environments does not fit a vector "
                         f"env of {envs.num_envs}")
    for env, state in zip(envs.envs, snapshot):
        load_env_state(env, state)
