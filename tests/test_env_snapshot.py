"""Environment snapshots (minimal.core.env_snapshot): exact round trips, clear refusals."""

import enum
import io
from collections import namedtuple

import gymnasium as gym
import numpy as np
import pytest
import torch

from minimal.core.env_snapshot import (
    NotSnapshotable,
    env_state,
    load_env_state,
    load_vector_env_state,
    vector_env_state,
)


def play(env, steps=1100):
    """(observation, reward, reset flag) rows of a fixed action sequence, resetting whenever an
    episode ends, and 5 actions drawn from the action space's own generator at the end."""
    out = []
    for t in range(steps):
        obs, reward, term, trunc, _ = env.step(int(t % 3 == 0))
        out.append(np.append(obs, [reward, 0.0]))
        if term or trunc:
            out.append(np.append(env.reset()[0], [0.0, 1.0]))  # a fresh start state
    sampled = [float(env.action_space.sample()) for _ in range(5)]
    return np.array(out), sampled


def through_torch(snapshot):
    buffer = io.BytesIO()
    torch.save(snapshot, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "MountainCar-v0"])
def test_a_restored_environment_continues_exactly(env_id):
    env = gym.make(env_id)
    env.reset(seed=3)
    env.action_space.seed(3)
    for _ in range(7):
        env.step(0)
    snapshot = through_torch(env_state(env))  # also proves it loads with weights_only=True
    expected, expected_sampled = play(env)
    other = gym.make(env_id)
    other.reset(seed=99)  # a different episode and a different reset generator
    other.action_space.seed(99)
    assert not np.array_equal(play(other, 5)[0], expected[:5])
    load_env_state(other, snapshot)
    rows, sampled = play(other)
    assert np.array_equal(rows, expected) and sampled == expected_sampled
    assert expected[:, -1].sum() >= 2  # the comparison crosses at least two resets


def test_the_snapshot_holds_what_cartpole_needs():
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    env.step(1)
    layers = {layer["type"]: layer["attributes"] for layer in env_state(env)}
    assert layers["TimeLimit"]["_elapsed_steps"] == 1
    assert torch.equal(layers["CartPoleEnv"]["state"]["ndarray"],
                       torch.from_numpy(np.asarray(env.unwrapped.state)))
    assert layers["CartPoleEnv"]["_np_random"]["rng"]["bit_generator"] == "PCG64"


def test_a_vector_env_round_trip():
    def make():
        return gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(3)],
                                        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)

    envs = make()
    envs.reset(seed=[1, 2, 3])
    for _ in range(40):
        envs.step(np.array([0, 1, 0]))
    envs.action_space.seed(1)
    snapshot = through_torch(vector_env_state(envs))
    expected = [envs.step(np.array([t % 2, 1, 0]))[0] for t in range(200)]
    expected_sampled = envs.action_space.sample()
    other = make()
    other.reset(seed=[7, 8, 9])
    load_vector_env_state(other, snapshot)
    assert all(np.array_equal(a, other.step(np.array([t % 2, 1, 0]))[0])
               for t, a in enumerate(expected))
    assert np.array_equal(other.action_space.sample(), expected_sampled)
    two = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2,
                                   autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    with pytest.raises(ValueError, match="snapshot of 3 environments does not fit a vector env of 2"):
        load_vector_env_state(two, snapshot)


class Engine(gym.Env):
    """An environment that keeps its state in an object a snapshot cannot read."""

    observation_space = gym.spaces.Box(-1, 1, (1,))
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.world = object()


class Phase(enum.IntEnum):
    START = 0


@pytest.mark.parametrize("value, message", [
    (object(), "Engine.world is a object"),
    (Phase.START, "Engine.world is a Phase"),  # an int subclass would not load weights-only
    (namedtuple("Pair", "a b")(1, 2), "Engine.world is a Pair"),
    (np.zeros(2, dtype=">f8"), "Engine.world is a ndarray"),  # non-native byte order
    (gym.spaces.Tuple([gym.spaces.Discrete(2)]), "Engine.world is a Tuple"),  # subspace rngs
])
def test_state_that_cannot_be_saved_exactly_is_refused_by_name(value, message):
    env = Engine()
    env.world = value
    with pytest.raises(NotSnapshotable, match=message):
        env_state(env)


def test_mismatched_snapshots_are_refused():
    snapshot = env_state(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="does not fit an environment wrapped as"):
        load_env_state(gym.make("CartPole-v1").unwrapped, snapshot)
    reset = gym.make("CartPole-v1")
    reset.reset(seed=0)
    with pytest.raises(ValueError, match="was it taken before the first reset"):
        load_env_state(reset, snapshot)  # the snapshot has no reset generator yet
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")],
                                    autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    with pytest.raises(NotSnapshotable, match="only SAME_STEP"):
        vector_env_state(envs)
