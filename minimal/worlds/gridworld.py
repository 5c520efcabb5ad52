"""A small, configurable gridworld with the gymnasium API.

Introduced in chapter 1 (RL basics) and reused by chapter 4 (regret-based
preferences).  The agent moves up/right/down/left on a grid drawn as strings:

    '.' empty   '#' wall   'S' start   'G' goal (terminal)   'X' pit (terminal)
    'o' a cell that is costly to enter (mud, a roadblock)

Entering a cell pays ``step_reward`` plus that cell's reward (``cell_rewards``);
entering 'G' or 'X' ends the episode.  With probability ``slip`` the move goes
to one of the two perpendicular directions instead (half each), which makes
the transitions stochastic.  Besides ``reset``/``step``, the environment
exposes its model as arrays, :meth:`GridWorld.model`, so the tabular
algorithms of :mod:`minimal.core.tabular` can plan with it: ``P[s, a, s']`` (eq.
``mdp`` in chapter 1) and the expected reward ``R[s, a]``.  Terminal states are
absorbing with zero reward, so the Bellman equations hold there with V = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

ACTIONS = ("up", "right", "down", "left")
MOVES = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)])  # (row, col) change per action
ARROWS = ("\u2191", "\u2192", "\u2193", "\u2190")

LAYOUTS: dict[str, list[str]] = {
    # A 5x5 room: the shortest path to G is 8 steps.
    "open": ["S....",
             ".....",
             ".....",
             ".....",
             "....G"],
    # Sutton & Barto's cliff, shortened: the short path runs along the pits.
    "cliff": [".......",
              ".......",
              "SXXXXXG"],
    # A detour-or-mud choice, with a pit: used for value/policy iteration figures.
    "bridge": ["S.o.G",
               ".#o#.",
               "..X..",
               ".....", ],
    # Delivery-style layout (chapter 4): a destination, a costly road and a pit.
    "delivery": ["S...o...",
                 ".##.o.#.",
                 "....o..G",
                 ".X..o...",
                 "........"],
}

DEFAULT_CELL_REWARDS = {".": 0.0, "S": 0.0, "G": 10.0, "X": -10.0, "o": -3.0}


@dataclass(frozen=True)
class TabularModel:
    """The MDP as arrays: ``P`` (S, A, S), ``R`` (S, A), ``terminal`` (S,), ``start`` index."""

    P: np.ndarray
    R: np.ndarray
    terminal: np.ndarray
    start: int


class GridWorld(gym.Env):
    """Gridworld environment; observations are state indices, actions are 0..3 (see ACTIONS)."""

    metadata = {"render_modes": ["rgb_array", "ansi"]}

    def __init__(self, layout: str | list[str] = "open", slip: float = 0.0,
                 step_reward: float = -1.0, cell_rewards: dict[str, float] | None = None,
                 max_steps: int = 100, render_mode: str | None = None):
        grid = LAYOUTS[layout] if isinstance(layout, str) and layout in LAYOUTS else layout
        if isinstance(grid, str):
            raise ValueError(f"unknown layout {layout!r}; choose one of {sorted(LAYOUTS)} "
                             "or pass a list of row strings")
        if not grid or len({len(row) for row in grid}) != 1:
            raise ValueError("layout rows must be non-empty strings of equal length")
        allowed = set(".#SGXo")
        bad = sorted(set("".join(grid)) - allowed)
        if bad:
            raise ValueError(f"layout has unknown cell characters {bad}; allowed: {sorted(allowed)}")
        if "".join(grid).count("S") != 1:
            raise ValueError("layout needs exactly one start cell 'S'")
        if not 0.0 <= slip < 1.0:
            raise ValueError(f"slip must be in [0, 1), got {slip}")
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}")
        self.grid = [list(row) for row in grid]
        self.n_rows, self.n_cols = len(grid), len(grid[0])
        self.slip, self.step_reward, self.max_steps = slip, step_reward, max_steps
        unknown = sorted(set(cell_rewards or {}) - set(DEFAULT_CELL_REWARDS))
        if unknown:
            raise ValueError(f"cell_rewards has unknown cell characters {unknown}; "
                             f"allowed: {sorted(DEFAULT_CELL_REWARDS)}")
        self.cell_rewards = {**DEFAULT_CELL_REWARDS, **(cell_rewards or {})}
        self.render_mode = render_mode
        # States are the non-wall cells in row-major order.
        self.cells = [(r, c) for r in range(self.n_rows) for c in range(self.n_cols)
                      if self.grid[r][c] != "#"]
        self.index = {cell: i for i, cell in enumerate(self.cells)}
        self.n_states, self.n_actions = len(self.cells), len(ACTIONS)
        self.observation_space = gym.spaces.Discrete(self.n_states)
        self.action_space = gym.spaces.Discrete(self.n_actions)
        self.start = next(i for i, (r, c) in enumerate(self.cells) if self.grid[r][c] == "S")
        self.terminal = np.array([self.grid[r][c] in "GX" for r, c in self.cells])
        self._model: TabularModel | None = None
        self.state, self.t = self.start, 0

    # ------------------------------------------------------------- dynamics
    def _next_cell(self, cell: tuple[int, int], action: int) -> tuple[int, int]:
        r, c = cell[0] + MOVES[action][0], cell[1] + MOVES[action][1]
        if 0 <= r < self.n_rows and 0 <= c < self.n_cols and self.grid[r][c] != "#":
            return (r, c)
        return cell  # bumping into a wall or the edge: stay put

    def outcomes(self, state: int, action: int) -> list[tuple[float, int]]:
        """[(probability, next state)] for taking ``action`` in ``state``."""
        perpendicular = ((action + 1) % 4, (action + 3) % 4)
        moves = [(1.0 - self.slip, action)] + [(self.slip / 2, a) for a in perpendicular]
        return [(p, self.index[self._next_cell(self.cells[state], a)]) for p, a in moves if p > 0]

    def reward(self, next_state: int) -> float:
        """Reward for entering ``next_state``: the step reward plus the cell's own reward."""
        r, c = self.cells[next_state]
        return self.step_reward + self.cell_rewards[self.grid[r][c]]

    def model(self) -> TabularModel:
        """``P[s, a, s']`` and expected ``R[s, a]``; terminal states absorb with reward 0."""
        if self._model is None:
            S, A = self.n_states, self.n_actions
            P, R = np.zeros((S, A, S)), np.zeros((S, A))
            for s in range(S):
                for a in range(A):
                    if self.terminal[s]:
                        P[s, a, s] = 1.0
                        continue
                    for p, s2 in self.outcomes(s, a):
                        P[s, a, s2] += p
                        R[s, a] += p * self.reward(s2)
            self._model = TabularModel(P, R, self.terminal.copy(), self.start)
        return self._model

    # ------------------------------------------------------------ gymnasium
    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        self.state, self.t = self.start, 0
        return self.state, {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an int in [0, {self.n_actions}), got {action!r}")
        probs, nexts = zip(*self.outcomes(self.state, int(action)))
        self.state = int(nexts[self.np_random.choice(len(nexts), p=probs)])
        self.t += 1
        terminated = bool(self.terminal[self.state])
        truncated = not terminated and self.t >= self.max_steps
        return self.state, self.reward(self.state), terminated, truncated, {}

    # ------------------------------------------------------------- drawing
    COLORS = {".": (245, 245, 245), "S": (200, 225, 255), "G": (120, 200, 120),
              "X": (40, 40, 40), "o": (205, 170, 125), "#": (90, 90, 110)}

    def render(self):
        if self.render_mode == "ansi":
            rows = [row[:] for row in self.grid]
            r, c = self.cells[self.state]
            rows[r][c] = "A"
            return "\n".join("".join(row) for row in rows)
        return self.image()

    def image(self, scale: int = 24) -> np.ndarray:
        """The grid as an RGB image (H*scale, W*scale, 3); the agent is a red square."""
        img = np.zeros((self.n_rows * scale, self.n_cols * scale, 3), dtype=np.uint8)
        for r in range(self.n_rows):
            for c in range(self.n_cols):
                img[r * scale:(r + 1) * scale, c * scale:(c + 1) * scale] = self.COLORS[self.grid[r][c]]
                img[r * scale, c * scale:(c + 1) * scale] = 200  # grid lines
                img[r * scale:(r + 1) * scale, c * scale] = 200
        r, c = self.cells[self.state]
        q = scale // 4
        img[r * scale + q:(r + 1) * scale - q, c * scale + q:(c + 1) * scale - q] = (220, 50, 50)
        return img

    def plot(self, ax, values: np.ndarray | None = None, policy: np.ndarray | None = None,
             title: str | None = None, fmt: str = "{:.1f}"):
        """Draw the grid on a matplotlib axis, optionally with state values and greedy arrows."""
        import matplotlib.pyplot as plt  # plotting is optional for the environment itself

        grid = np.full((self.n_rows, self.n_cols), np.nan)
        if values is not None:
            for s, (r, c) in enumerate(self.cells):
                grid[r, c] = values[s]
            ax.imshow(grid, cmap="viridis")
        else:
            ax.imshow(np.array([[self.COLORS[ch] for ch in row] for row in self.grid]))
        for r in range(self.n_rows):
            for c in range(self.n_cols):
                ch = self.grid[r][c]
                if ch == "#":
                    ax.add_patch(plt.Rectangle((c - .5, r - .5), 1, 1, color="0.35"))
                    continue
                s = self.index[(r, c)]
                label = ch if ch in "SGXo" else ""
                if policy is not None and not self.terminal[s]:
                    label = (label + " " if label else "") + ARROWS[int(policy[s])]
                if values is not None:
                    label += "\n" + fmt.format(values[s])
                ax.text(c, r, label, ha="center", va="center", fontsize=8,
                        color="white" if values is not None else "black")
        ax.set_xticks([]), ax.set_yticks([])
        if title:
            ax.set_title(title)
        return ax


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
