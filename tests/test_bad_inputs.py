"""Bad input to public entry points raises an error that names the problem (review findings)."""

import pytest
import torch

from minimal.core.config import ConfigError
from minimal.core.preference_losses import dpo_loss, ipo_loss, log_ratio_margin
from minimal.delta_learning import DeltaConfig
from minimal.icl_training import ICLConfig
from minimal.worlds.gridworld import GridWorld

pytestmark = pytest.mark.unit

def test_preference_losses_check_shapes_and_temperatures():
    b = torch.zeros(4)
    with pytest.raises(ValueError, match=r"same shape \(B,\)"):
        log_ratio_margin(b, b.unsqueeze(1), b, b)  # (B,) with (B, 1) would broadcast to (B, B)
    with pytest.raises(ValueError, match="beta must be positive"):
        dpo_loss(b, beta=-0.1)
    with pytest.raises(ValueError, match="tau must be positive"):
        ipo_loss(b, tau=0.0)


def test_config_and_environment_errors_name_the_field():
    with pytest.raises(ConfigError, match="DeltaConfig.dim = 4: must be at least 5"):
        DeltaConfig(dim=4)
    with pytest.raises(ValueError, match=r"cell_rewards has unknown cell characters \['goal'\]"):
        GridWorld("open", cell_rewards={"goal": 5.0})
    with pytest.raises(ConfigError, match="ICLConfig.D = 0: must be greater than 0"):
        ICLConfig.from_preset("gpu", D=0)
