"""Segment pairs and two models of how a person prefers one segment to another (chapter 4).

Chapter 4 ("Regret-based models of human preference") compares two answers
to the question "why did the person prefer segment sigma_1 to sigma_2?":

* the **partial-return** model (eq. ``partial-return-model``): by the sum of
  rewards along each segment, Bradley-Terry style,
  P(sigma_1 > sigma_2) = logistic(sum r(sigma_1) - sum r(sigma_2));
* the **regret** model (eq. ``regret-model``): by how far each segment
  deviates from optimal decision making, measured by the summed optimal
  advantage, P(sigma_1 > sigma_2) = logistic(sum A*(sigma_1) - sum A*(sigma_2)).

The MDPs are small gridworlds (:class:`minimal.worlds.gridworld.GridWorld`, chapter 1)
whose reward is linear in four features of the cell being entered,

    phi(s') = (1 [every step], 1[s' is a goal G], 1[s' is a pit X], 1[s' is mud o]),

so a reward function is a weight vector w (eq. ``linear-reward``) and
``GridWorld(step_reward=w[0], cell_rewards={"G": w[1], "X": w[2], "o": w[3]})``
is the same MDP as an environment.  Reading order: :class:`RewardMDP`,
:func:`random_mdp`, :class:`Segments`, :func:`sample_segments`, the two
segment scores, :func:`preference_probability`, :func:`make_preferences`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minimal.core.tabular import optimal_advantage, policy_evaluation, value_iteration
from minimal.worlds.gridworld import GridWorld

FEATURES = ("step", "goal", "pit", "mud")
CELL_FEATURE = {"G": 1, "X": 2, "o": 3}  # which feature a cell type switches on
MODELS = ("partial_return", "regret")


@dataclass
class RewardMDP:
    """A gridworld with a linear reward r_w(s, a) = E[w . phi(s')] (eq. ``linear-reward``).

    ``P`` (S, A, S) transitions, ``Phi`` (S, d) features of entering each state,
    ``terminal`` (S,) absorbing states (no reward once there), ``w`` (d,) the
    true reward weights, ``gamma`` the discount used for planning and scoring.
    """

    env: GridWorld
    P: np.ndarray
    Phi: np.ndarray
    terminal: np.ndarray
    w: np.ndarray
    gamma: float

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    def reward(self, w: np.ndarray | None = None) -> np.ndarray:
        """R_w[s, a] = sum_s' P(s'|s, a) w . phi(s'), zero in terminal states; (S, A)."""
        w = self.w if w is None else np.asarray(w, dtype=float)
        if w.shape != (self.Phi.shape[1],):
            raise ValueError(f"w must have shape ({self.Phi.shape[1]},), got {w.shape}")
        R = self.P @ (self.Phi @ w)  # (S, A)
        R[self.terminal] = 0.0
        return R

    def advantage(self, w: np.ndarray | None = None) -> np.ndarray:
        """Optimal advantage A*_w(s, a) = Q*_w(s, a) - V*_w(s) <= 0; (S, A)."""
        return optimal_advantage(self.P, self.reward(w), self.gamma)

    def greedy_policy(self, w: np.ndarray) -> np.ndarray:
        """The optimal policy of reward w, by value iteration; (S,) action indices."""
        return value_iteration(self.P, self.reward(w), self.gamma).policy

    def scaled_return(self, policy: np.ndarray) -> float:
        """True return of ``policy`` scaled so optimal = 1 and uniform random = 0 (eq. ``scaled-return``).

        ``policy`` is (S,) actions or an (S, A) stochastic policy; returns are
        the discounted values under the TRUE reward, averaged over uniformly
        drawn non-terminal start states.
        """
        S, A = self.P.shape[:2]
        pi = np.eye(A)[policy] if policy.ndim == 1 else policy
        if pi.shape != (S, A):
            raise ValueError(f"policy must be (S,) actions or (S, A) = ({S}, {A}), got {policy.shape}")
        R, live = self.reward(), ~self.terminal

        def value(p):
            return policy_evaluation(self.P, R, self.gamma, p)[live].mean()

        v_opt = value_iteration(self.P, R, self.gamma).V[live].mean()
        v_rand = value(np.full((S, A), 1.0 / A))
        return float((value(pi) - v_rand) / (v_opt - v_rand))


def cells_view(mdp: RewardMDP) -> RewardMDP:
    """The same MDP and true reward with one feature per cell: Phi = I, w[s'] = w . phi(s').

    A learner on this view has a free reward for every cell (a tabular
    reward), instead of four weights shared across cells.
    """
    Phi = np.eye(mdp.n_states)
    return RewardMDP(mdp.env, mdp.P, Phi, mdp.terminal, mdp.Phi @ mdp.w, mdp.gamma)


def features_of(env: GridWorld) -> np.ndarray:
    """Phi (S, 4): phi(s') for every state s' of a gridworld (see the module docstring)."""
    Phi = np.zeros((env.n_states, len(FEATURES)))
    Phi[:, 0] = 1.0
    for s, (r, c) in enumerate(env.cells):
        cell = env.grid[r][c]
        if cell in CELL_FEATURE:
            Phi[s, CELL_FEATURE[cell]] = 1.0
    return Phi


def make_mdp(layout: list[str] | str, w, gamma: float = 0.9, slip: float = 0.0) -> RewardMDP:
    """A :class:`RewardMDP` from a layout and reward weights w = (step, goal, pit, mud)."""
    w = np.asarray(w, dtype=float)
    if w.shape != (len(FEATURES),):
        raise ValueError(f"w must give one weight per feature {FEATURES}, got shape {w.shape}")
    env = GridWorld(layout, slip=slip, step_reward=float(w[0]),
                    cell_rewards={"G": float(w[1]), "X": float(w[2]), "o": float(w[3])})
    m = env.model()
    mdp = RewardMDP(env, m.P, features_of(env), m.terminal, w, gamma)
    assert np.allclose(mdp.reward(), m.R)  # our linear reward is exactly the gridworld's
    return mdp


def random_mdp(rng: np.random.Generator, size: int = 5, n_pits: int = 2, n_mud: int = 4,
               gamma: float = 0.9) -> RewardMDP:
    """A random ``size`` x ``size`` delivery-style gridworld with random reward weights.

    One goal, ``n_pits`` pits and ``n_mud`` mud cells at random places; the
    weights are a step cost in [-1, -0.2], a goal reward in [0, 10], a pit
    penalty in [-10, 0] and a mud cost in [-5, 0], so that in some MDPs the
    best plan is a long detour, in some a walk through mud, and in some a
    jump into the nearest pit (a cheap pit beats a far goal).
    """
    if size < 3:
        raise ValueError(f"size must be at least 3, got {size}")
    if 2 + n_pits + n_mud > size * size:
        raise ValueError(f"{n_pits} pits and {n_mud} mud cells do not fit in a {size}x{size} grid")
    cells = rng.permutation(size * size)
    grid = [["."] * size for _ in range(size)]
    kinds = ["S", "G"] + ["X"] * n_pits + ["o"] * n_mud
    for kind, k in zip(kinds, cells):
        grid[k // size][k % size] = kind
    w = np.array([rng.uniform(-1, -0.2), rng.uniform(0, 10), rng.uniform(-10, 0), rng.uniform(-5, 0)])
    return make_mdp(["".join(row) for row in grid], w, gamma)


# ----------------------------------------------------------------- segments
@dataclass
class Segments:
    """N segments of k transitions: states (N, k+1), actions (N, k).

    ``live`` (N, k) marks transitions taken from a non-terminal state; after a
    segment enters a terminal state it stays there with zero reward and zero
    advantage.  ``phi_sum`` (N, d) is sum_t phi(s_{t+1}) over live steps, the
    segment's feature count, so its partial return under w is phi_sum @ w.
    """

    states: np.ndarray
    actions: np.ndarray
    live: np.ndarray
    phi_sum: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, idx) -> "Segments":
        return Segments(self.states[idx], self.actions[idx], self.live[idx], self.phi_sum[idx])

    def recount(self, Phi: np.ndarray) -> "Segments":
        """The same segments with feature counts under another feature map Phi (S, d')."""
        phi_sum = (Phi[self.states[:, 1:]] * self.live[..., None]).sum(1)  # (N, d')
        return Segments(self.states, self.actions, self.live, phi_sum)

    @property
    def terminates(self) -> np.ndarray:
        """(N,) whether the segment stops early: a terminal state is entered before its
        last step (a segment whose final move enters a terminal state counts as False)."""
        return ~self.live.all(axis=1)


def sample_segments(mdp: RewardMDP, n: int, length: int, rng: np.random.Generator) -> Segments:
    """n segments: a uniform non-terminal start state, then ``length`` uniformly random actions."""
    if n <= 0 or length <= 0:
        raise ValueError(f"need n > 0 and length > 0, got n={n}, length={length}")
    S, A = mdp.P.shape[:2]
    starts = np.flatnonzero(~mdp.terminal)
    states = np.zeros((n, length + 1), dtype=int)
    actions = rng.integers(0, A, size=(n, length))
    states[:, 0] = rng.choice(starts, size=n)
    cdf = mdp.P.cumsum(-1)  # (S, A, S) to sample next states
    for t in range(length):
        u = rng.random(n)[:, None]  # (n, 1)
        states[:, t + 1] = (u > cdf[states[:, t], actions[:, t]]).sum(-1).clip(max=S - 1)
    live = ~mdp.terminal[states[:, :-1]]  # (n, k)
    phi_sum = (mdp.Phi[states[:, 1:]] * live[..., None]).sum(1)  # (n, d)
    return Segments(states, actions, live, phi_sum)


def partial_return(seg: Segments, w: np.ndarray) -> np.ndarray:
    """sum_t r_w(s_t, a_t, s_{t+1}) for each segment (eq. ``partial-return-model``); (N,)."""
    return seg.phi_sum @ np.asarray(w, dtype=float)


def summed_advantage(seg: Segments, A: np.ndarray) -> np.ndarray:
    """sum_t A*(s_t, a_t) over live steps, i.e. minus the segment's regret (eq. ``regret-model``); (N,)."""
    return (A[seg.states[:, :-1], seg.actions] * seg.live).sum(1)


def logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def preference_probability(mdp: RewardMDP, seg1: Segments, seg2: Segments, model: str,
                           w: np.ndarray | None = None) -> np.ndarray:
    """P(sigma_1 > sigma_2) under ``model`` ('partial_return' or 'regret') and reward w; (N,)."""
    if model not in MODELS:
        raise ValueError(f"unknown preference model {model!r}; choose one of {MODELS}")
    if len(seg1) != len(seg2):
        raise ValueError(f"segment lists differ in length: {len(seg1)} vs {len(seg2)}")
    w = mdp.w if w is None else np.asarray(w, dtype=float)
    if model == "partial_return":
        return logistic(partial_return(seg1, w) - partial_return(seg2, w))
    A = mdp.advantage(w)
    return logistic(summed_advantage(seg1, A) - summed_advantage(seg2, A))


@dataclass
class Preferences:
    """Labelled pairs: ``y[i] = 1`` when the person preferred ``seg1[i]`` to ``seg2[i]``."""

    seg1: Segments
    seg2: Segments
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def recount(self, Phi: np.ndarray) -> "Preferences":
        """The same labelled pairs with feature counts under another feature map Phi (S, d')."""
        return Preferences(self.seg1.recount(Phi), self.seg2.recount(Phi), self.y)


def make_preferences(mdp: RewardMDP, n: int, model: str, rng: np.random.Generator,
                     length: int = 3, noiseless: bool = False) -> Preferences:
    """n random segment pairs labelled by ``model`` under the true reward.

    Labels are Bernoulli draws of :func:`preference_probability`; with
    ``noiseless`` the person always picks the segment the model scores higher
    (ties broken by a coin flip).
    """
    seg1, seg2 = sample_segments(mdp, n, length, rng), sample_segments(mdp, n, length, rng)
    p = preference_probability(mdp, seg1, seg2, model)
    if noiseless:
        p = np.where(np.isclose(p, 0.5), 0.5, (p > 0.5).astype(float))
    y = (rng.random(n) < p).astype(float)
    return Preferences(seg1, seg2, y)


# ------------------------------------------------- hand-made segments, figures
def segment_from_moves(mdp: RewardMDP, start: tuple[int, int], moves: str) -> Segments:
    """One segment from a start cell (row, col) and moves such as "RRD" (U/R/D/L); needs slip 0."""
    if mdp.env.slip != 0:
        raise ValueError("segment_from_moves needs a deterministic gridworld (slip = 0)")
    if start not in mdp.env.index:
        raise ValueError(f"start {start} is not a free cell of the grid")
    bad = sorted(set(moves) - set("URDL"))
    if not moves or bad:
        raise ValueError(f"moves must be a non-empty string of U, R, D, L; got {moves!r}")
    states, actions = [mdp.env.index[start]], ["URDL".index(m) for m in moves]
    for a in actions:
        states.append(int(mdp.P[states[-1], a].argmax()))
    states, actions = np.array([states]), np.array([actions])
    live = ~mdp.terminal[states[:, :-1]]
    phi_sum = (mdp.Phi[states[:, 1:]] * live[..., None]).sum(1)
    return Segments(states, actions, live, phi_sum)


def draw_segment(ax, mdp: RewardMDP, seg: Segments, color: str = "tab:red", offset: float = 0.0):
    """Draw segment 0 of ``seg`` as arrows over a grid drawn by ``mdp.env.plot(ax)``."""
    cells = [mdp.env.cells[s] for s in seg.states[0]]
    for (r0, c0), (r1, c1) in zip(cells, cells[1:]):
        if (r0, c0) != (r1, c1):
            ax.annotate("", xy=(c1 + offset, r1 + offset), xytext=(c0 + offset, r0 + offset),
                        arrowprops=dict(arrowstyle="->", color=color, lw=2.5))
    r, c = cells[0]
    ax.plot(c + offset, r + offset, "o", color=color, ms=7)


@dataclass
class ShiftDemo:
    """Two rewards that differ by a constant c per step (w_b = w_a + c e_step)."""

    max_gap_partial_return: float  # max |P_a - P_b| over pairs under the partial-return model
    max_gap_regret: float  # the same under the regret model
    mean_gap_regret: float
    score_of_b_policy_under_a: float  # scaled return, under w_a, of w_b's optimal policy
    n_pairs: int


def constant_shift_demo(layout, w_a, shift: float, n: int = 2000, length: int = 3,
                        gamma: float = 0.9, seed: int = 0) -> ShiftDemo:
    """Identifiability counterexample (eq. ``shift-invariance``), measured on random segment pairs.

    Adds ``shift`` to every step's reward.  On segment pairs that do not
    enter a terminal state, both partial returns move by length * shift, so
    the partial-return preference probabilities of w_a and w_b are equal
    (to rounding), while the optimal policies, the optimal advantages and so
    the regret preference probabilities differ.
    """
    w_a = np.asarray(w_a, dtype=float)
    w_b = w_a + shift * np.eye(len(FEATURES))[0]
    a, b = make_mdp(layout, w_a, gamma), make_mdp(layout, w_b, gamma)
    rng = np.random.default_rng(seed)
    seg1, seg2 = sample_segments(a, n, length, rng), sample_segments(a, n, length, rng)
    keep = ~(seg1.terminates | seg2.terminates)  # mid-episode segments only
    seg1, seg2 = seg1[keep], seg2[keep]
    gap = {m: np.abs(preference_probability(a, seg1, seg2, m)
                     - preference_probability(b, seg1, seg2, m)) for m in MODELS}
    return ShiftDemo(float(gap["partial_return"].max()), float(gap["regret"].max()),
                     float(gap["regret"].mean()), a.scaled_return(b.greedy_policy(w_b)), int(keep.sum()))


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
