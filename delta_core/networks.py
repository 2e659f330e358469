"""Parameter networks of the δ models, picked by name from :data:`NETWORKS`.

Each network maps normalised inputs to unconstrained outputs; the model squashes them into
(0, 1) and then into physical parameter ranges.
"""
from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """Feed-forward network for static parameters: ``[B, n_in] -> [B, n_out]``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output sizes.
    hidden : int
        Width of the hidden layers.
    n_layers : int
        Number of hidden layers.
    dropout : float
        Dropout probability between hidden layers (training only).
    """

    def __init__(self, n_in: int, n_out: int, hidden: int = 256, n_layers: int = 2,
                 dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LSTMNet(nn.Module):
    """Sequence network for daily-dynamic parameters: ``[T, B, n_in] -> [T, B, n_out]``.

    A linear input layer with ReLU, one LSTM layer and a linear head. ``forward`` accepts and
    returns the recurrent state ``(h, c)`` (each ``[1, B, hidden]``), so a BMI can step it one day
    at a time and get exactly the sequence result.
    """

    def __init__(self, n_in: int, n_out: int, hidden: int = 64, dropout: float = 0.0):
        super().__init__()
        self.inp = nn.Linear(n_in, hidden)
        self.lstm = nn.LSTM(hidden, hidden)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_out)
        self.hidden = hidden

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h, state = self.lstm(torch.relu(self.inp(x)), state)
        return self.head(self.drop(h)), state


#: Registry of parameter networks by name.
NETWORKS: dict[str, type[nn.Module]] = {"mlp": MLP, "lstm": LSTMNet}


def get_network(name: str) -> type[nn.Module]:
    """Network class by name; an unknown name lists the valid ones."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; valid: {sorted(NETWORKS)}") from None
