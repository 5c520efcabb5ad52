"""Shared test setup: no network, 2 CPU threads, and a tiny char-LM config."""

import socket

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Tests never touch the network: any connection beyond localhost fails loudly."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") \
                and not host.startswith("/"):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def tiny_lm_overrides():
    """Overrides that make any CharLMConfig preset run in well under a second on CPU."""
    return dict(device="cpu", steps=6, batch_size=4, block_size=16, n_layer=1, n_head=2,
                n_embd=16, warmup_steps=2, log_every=1, eval_batches=1, progress=False)
