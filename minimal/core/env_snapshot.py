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
* the state of every numpy random generator: the one ``reset`` draws from, and
  the one each observation or action space keeps for ``space.sample()`` (an
  epsilon-greedy agent draws its random actions there).

It skips the registry spec, which describes the environment and never changes,
and the ``env`` link to the next layer, which it visits in turn.  Anything else,
such as a physics engine's handle, a composite space (whose subspaces keep
generators of their own) or an instance of a subclass of a plain type (an enum,
say), cannot be saved this way: :func:`env_state` raises :class:`NotSnapshotable`
naming the attribute, so that a trainer can refuse to resume instead of silently
resuming a different run.

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
NUMPY_SCALARS = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                 np.uint32, np.uint64, np.float16, np.float32, np.float64)
# Spaces whose only changing state is their sampling generator (composite spaces such as
# Tuple and Dict keep one per subspace and are refused).
FLAT_SPACES = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiBinary,
               gym.spaces.MultiDiscrete)


def _encode(value: Any, where: str) -> Any:
    kind = type(value)  # exact types only: a subclass (an enum, a namedtuple) would not load back
    if value is None or kind in (bool, int, float, str):
        return value
    if kind in (np.ndarray, *NUMPY_SCALARS) and value.dtype.kind in "biuf" and value.dtype.isnative:
        tensor = torch.from_numpy(np.array(value))  # a copy; 0-d for a numpy scalar
        return {"ndarray" if kind is np.ndarray else "scalar": tensor}
    if kind is np.random.Generator:
        return {"rng": value.bit_generator.state}  # a dict of ints and a name
    if kind in (list, tuple):
        return {kind.__name__: [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if kind is dict and all(type(k) is str for k in value):
        return {"dict": {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
    if kind in FLAT_SPACES:  # fixed bounds and shape; only its sampling generator changes
        return {"space_rng": None if value._np_random is None else _encode(value._np_random, where)}
    raise NotSnapshotable(f"{where} is a {kind.__name__}, which an environment snapshot "
                          "cannot save (only plain data, numpy generators and flat spaces)")


def _decode(value: Any, current: Any = None) -> Any:
    """The saved value; a space is the ``current`` one with its generator put back."""
    if not isinstance(value, dict):
        return value
    (kind, data), = value.items()
    if kind == "space_rng":
        if type(current) not in FLAT_SPACES:
            raise ValueError(f"snapshot holds a space where the environment has {current!r}")
        current._np_random = None if data is None else _decode(data)
        return current
    if kind == "ndarray":
        return data.numpy().copy()
    if kind == "scalar":
        return data.numpy()[()]  # a numpy scalar of the saved dtype
    if kind == "rng":
        bit_generator = getattr(np.random, data["bit_generator"], None)  # e.g. np.random.PCG64
        if not (isinstance(bit_generator, type)
                and issubclass(bit_generator, np.random.BitGenerator)):
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
def _saved_attributes(layer: gym.Env) -> dict[str, Any]:
    return {attr: value for attr, value in vars(layer).items()
            if attr != "env" and not isinstance(value, EnvSpec)}


def env_state(env: gym.Env) -> list[dict]:
    """Snapshot of ``env``: for each layer of its wrapper chain, its type and saved attributes."""
    layers = []
    for layer in wrapper_chain(env):
        name = type(layer).__name__
        saved = {attr: _encode(value, f"{name}.{attr}")
                 for attr, value in _saved_attributes(layer).items()}
        layers.append({"type": name, "attributes": saved})
    return layers


def load_env_state(env: gym.Env, snapshot: list[dict]) -> None:
    """Put ``env`` back into the state :func:`env_state` saved (same wrapper chain required)."""
    chain = list(wrapper_chain(env))
    wrappers = [type(layer).__name__ for layer in chain]
    saved_wrappers = [layer["type"] for layer in snapshot]
    if wrappers != saved_wrappers:
        raise ValueError(f"snapshot of wrappers {saved_wrappers} does not fit an environment "
                         f"wrapped as {wrappers}")
    for layer, saved in zip(chain, snapshot):
        have = _saved_attributes(layer)
        if set(have) != set(saved["attributes"]):
            raise ValueError(f"snapshot of {type(layer).__name__} has attributes "
                             f"{sorted(saved['attributes'])}, the environment "
                             f"{sorted(have)}: was it taken before the first reset?")
        for attr, value in saved["attributes"].items():
            setattr(layer, attr, _decode(value, have[attr]))


VECTOR_SPACES = ("action_space", "observation_space", "single_action_space",
                 "single_observation_space")


def _check_same_step(envs: gym.vector.SyncVectorEnv) -> None:
    if envs.autoreset_mode != gym.vector.AutoresetMode.SAME_STEP:
        raise NotSnapshotable(f"vector env with autoreset mode {envs.autoreset_mode}; only "
                              "SAME_STEP keeps no state of its own between steps")


def vector_env_state(envs: gym.vector.SyncVectorEnv) -> dict:
    """Snapshots of each sub-environment of a same-step-autoreset vector env, and of the
    generators of the vector env's own spaces.

    With ``AutoresetMode.SAME_STEP`` an environment that ends is reset inside the same
    ``step`` call, and the vector env's own buffers are rewritten on every step, so the
    sub-environments hold all the state there is.  Other autoreset modes carry a
    "reset on the next step" flag between calls, which this function does not save.
    """
    _check_same_step(envs)
    return {"envs": [env_state(env) for env in envs.envs],
            "spaces": {name: _encode(getattr(envs, name), f"vector env.{name}")
                       for name in VECTOR_SPACES}}


def load_vector_env_state(envs: gym.vector.SyncVectorEnv, snapshot: dict) -> None:
    _check_same_step(envs)
    if len(snapshot["envs"]) != envs.num_envs:
        raise ValueError(f"snapshot of {len(snapshot['envs'])} environments does not fit a "
                         f"vector env of {envs.num_envs}")
    for env, state in zip(envs.envs, snapshot["envs"]):
        load_env_state(env, state)
    for name, value in snapshot["spaces"].items():
        _decode(value, getattr(envs, name))  # puts the space's generator back in place


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
