"""Parameter networks of the δ models, picked by name from :data:`NETWORKS`.

Each network maps normalised inputs to unconstrained outputs; the model squashes them into
(0, 1) and then into physical parameter ranges.
"""
from __future__ import annotations

import weakref

import numpy as np
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

    def lag_one_step(self, raw: torch.Tensor) -> torch.Tensor:
        """Head outputs ``[T, B, n_out]`` shifted by one step: step t gets the output after
        step t - 1, step 0 the output before any input (zero state). What a host that knows a
        day's forcing only at its end can compute at the day's start."""
        first = self.head(raw.new_zeros(1, raw.shape[1], self.hidden))
        return torch.cat([first, raw[:-1]])


class LSTMStepper:
    """An :class:`LSTMNet` stepped one time step at a time in numpy, for BMI time steps where
    torch's per-call overhead would dominate.

    ``step(x_dynamic[F])`` returns the raw head outputs ``[n_out]`` and carries ``h``, ``c``.
    The static part of the input (``x_static``, e.g. catchment attributes appended to every
    step) is constant, so it is folded into the input bias once. Equal to the torch module
    within rounding (float64: ~1e-15).
    """

    def __init__(self, net: LSTMNet, x_attr: np.ndarray):
        w = _prepared(net)  # shared by every stepper of this network (one per catchment)
        n_f = w["w_in"].shape[1] - x_attr.shape[0]
        self.w_in_f = np.ascontiguousarray(w["w_in"][:, :n_f])  # [H, n_forcing]: small
        self.b_in = w["b_in"] + w["w_in"][:, n_f:] @ x_attr
        self.hidden = w["w_gates"].shape[0] // 4
        self.w_gates, self.b_gates = w["w_gates"], w["b_gates"]
        self.w_head, self.b_head = w["w_head"], w["b_head"]
        self._zh = np.zeros(2 * self.hidden)
        self.reset()

    def reset(self) -> None:
        """Zero the recurrent state."""
        self.h = np.zeros(self.hidden)
        self.c = np.zeros(self.hidden)

    def step(self, xf: np.ndarray) -> np.ndarray:
        H = self.hidden
        zh = self._zh
        z = self.w_in_f @ xf
        z += self.b_in
        np.maximum(z, 0.0, out=zh[:H])
        zh[H:] = self.h
        g = self.w_gates @ zh
        g += self.b_gates
        s = g[:3 * H]
        np.negative(s, out=s)
        np.exp(s, out=s)
        s += 1.0
        np.reciprocal(s, out=s)  # sigmoid of i, f, o
        gg = np.tanh(g[3 * H:])
        self.c = s[H:2 * H] * self.c + s[:H] * gg
        self.h = s[2 * H:] * np.tanh(self.c)
        out = self.w_head @ self.h
        out += self.b_head
        return out

    def run(self, net: LSTMNet, xf: np.ndarray) -> np.ndarray:
        """Many steps at once, continuing (and advancing) ``h``, ``c``: raw head outputs
        ``[n, n_out]`` for forcing rows ``xf [n, F]`` (equal to :meth:`step` in turn to
        rounding). One call of the compiled loop (:data:`delta_core.kernels.SPINUP_LOOPS`),
        else torch's LSTM; ``net`` is the network this stepper was made from."""
        from delta_core.kernels import SPINUP_LOOPS

        xf = np.ascontiguousarray(xf, dtype=np.float64)
        if SPINUP_LOOPS is not None:
            self.h, self.c = np.array(self.h, dtype=np.float64), np.array(self.c, dtype=np.float64)
            return SPINUP_LOOPS.lstm_sequence(self.w_in_f, self.b_in, self.w_gates, self.b_gates,
                                              self.w_head, self.b_head, xf, self.h, self.c)
        return self.run_torch(net, xf)

    def run_torch(self, net: LSTMNet, xf: np.ndarray) -> np.ndarray:
        """:meth:`run` with torch's LSTM (the reference of the compiled loop)."""
        import torch

        with torch.no_grad():
            x = torch.from_numpy(xf @ self.w_in_f.T + self.b_in)  # input layer, attributes folded
            h0 = torch.from_numpy(self.h)[None, None]
            c0 = torch.from_numpy(self.c)[None, None]
            hs, (h1, c1) = net.lstm(torch.relu(x)[:, None], (h0, c0))
            raw = net.head(hs)[:, 0].numpy()
        self.h, self.c = h1[0, 0].numpy().copy(), c1[0, 0].numpy().copy()
        return raw

    def initial_output(self) -> np.ndarray:
        """The head's output before any step (zero state): what a one-day-lagged model uses
        on its first day."""
        return self.w_head @ np.zeros(self.hidden) + self.b_head


_PREPARED: "weakref.WeakKeyDictionary[LSTMNet, dict]" = weakref.WeakKeyDictionary()


def _prepared(net: LSTMNet) -> dict:
    """float64 numpy weights of ``net`` in the stepper's layout, computed once per network."""
    if net not in _PREPARED:
        sd = {k: v.detach().to(torch.float64).numpy().copy() for k, v in net.state_dict().items()}
        w_in = sd["inp.weight"]
        H = sd["lstm.weight_hh_l0"].shape[1]
        # torch gate order (i, f, g, o) -> (i, f, o, g): one sigmoid over 3H rows, one tanh
        order = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]
        w = np.concatenate([sd["lstm.weight_ih_l0"], sd["lstm.weight_hh_l0"]], axis=1)
        _PREPARED[net] = {
            "w_in": w_in, "b_in": sd["inp.bias"],
            "w_gates": np.ascontiguousarray(w[order]),
            "b_gates": (sd["lstm.bias_ih_l0"] + sd["lstm.bias_hh_l0"])[order],
            "w_head": sd["head.weight"], "b_head": sd["head.bias"]}
    return _PREPARED[net]


#: Registry of parameter networks by name.
NETWORKS: dict[str, type[nn.Module]] = {"mlp": MLP, "lstm": LSTMNet}


def get_network(name: str) -> type[nn.Module]:
    """Network class by name; an unknown name lists the valid ones."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; valid: {sorted(NETWORKS)}") from None
