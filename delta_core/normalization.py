"""Input encoding and normalisation; statistics come from the training basins and period only.

Both classes round-trip through ``to_dict``/``from_dict`` (plain lists and floats), which is how
they travel inside a weight bundle.
"""
from __future__ import annotations

import math
import warnings

import numpy as np


class AttributeEncoder:
    """Static catchment attributes -> normalised feature matrix.

    Numeric attributes are z-scored with training-basin mean and std; categorical ones (any
    attribute whose values are not all numbers) are one-hot encoded over the categories seen in
    training (an empty categorical value, e.g. CAMELS' geol_2nd_class of single-geology basins,
    is the category "none"). A missing numeric value becomes the training mean (feature 0) and a
    category unseen in training an all-zero one-hot; each call emits one warning listing them.
    """

    def __init__(self, names: list[str], numeric: dict[str, tuple[float, float]],
                 categories: dict[str, list[str]]):
        self.names = list(names)
        self.numeric = dict(numeric)
        self.categories = {k: list(v) for k, v in categories.items()}

    @classmethod
    def fit(cls, raw: dict[str, list[str]]) -> "AttributeEncoder":
        """Learn statistics from ``{name: [raw string per training basin]}``."""
        numeric, categories = {}, {}
        for name, values in raw.items():
            present = [v for v in values if v != ""]
            try:
                x = np.array([float(v) for v in present])
            except ValueError:
                categories[name] = sorted(set(v or "none" for v in values))
                continue
            std = float(x.std()) if len(x) > 1 else 1.0
            numeric[name] = (float(x.mean()), std if std > 0 else 1.0)
        return cls(list(raw), numeric, categories)

    @property
    def feature_names(self) -> list[str]:
        out = []
        for n in self.names:
            out += [f"{n}={c}" for c in self.categories[n]] if n in self.categories else [n]
        return out

    def transform(self, raw: dict[str, list[str]], gauge_ids: list[str] | None = None) -> np.ndarray:
        """Encode ``{name: [raw per basin]}`` -> ``[B, n_features]`` float64."""
        missing = [n for n in self.names if n not in raw]
        if missing:
            raise KeyError(f"missing attribute(s) {missing}; the model needs {self.names}")
        n_basins = len(raw[self.names[0]])
        ids = gauge_ids or [str(i) for i in range(n_basins)]
        cols, problems = [], []
        for n in self.names:
            vals = [str(v).strip() for v in raw[n]]
            if n in self.categories:
                cats = self.categories[n]
                onehot = np.zeros((n_basins, len(cats)))
                for b, v in enumerate(vals):
                    v = v or "none"
                    if v in cats:
                        onehot[b, cats.index(v)] = 1.0
                    else:
                        problems.append(f"{ids[b]}:{n}={v!r} unseen in training")
                cols.append(onehot)
            else:
                mean, std = self.numeric[n]
                x = np.empty(n_basins)
                for b, v in enumerate(vals):
                    if v.lower() in ("", "nan"):
                        problems.append(f"{ids[b]}:{n} missing, training mean used")
                        x[b] = mean
                        continue
                    try:
                        x[b] = float(v)
                    except ValueError as exc:
                        raise ValueError(f"basin {ids[b]}: attribute {n}={v!r} is not a number") from exc
                cols.append(((x - mean) / std)[:, None])
        if problems:
            warnings.warn(f"{len(problems)} attribute value(s) imputed: " + "; ".join(problems[:5])
                          + (" ..." if len(problems) > 5 else ""), stacklevel=2)
        return np.concatenate(cols, axis=1)

    def to_dict(self) -> dict:
        return {"names": self.names, "numeric": {k: list(v) for k, v in self.numeric.items()},
                "categories": self.categories}

    @classmethod
    def from_dict(cls, d: dict) -> "AttributeEncoder":
        return cls(d["names"], {k: tuple(v) for k, v in d["numeric"].items()}, d["categories"])


class ForcingNormalizer:
    """Z-scores dynamic inputs ``[T, B, F]``; precipitation-like variables are first
    transformed with ``log10(sqrt(x) + 0.1)`` to tame their skew."""

    def __init__(self, names: list[str], mean: list[float], std: list[float], log_vars: list[str]):
        self.names, self.mean, self.std = list(names), list(mean), list(std)
        self.log_vars = list(log_vars)

    @staticmethod
    def _pre(x: np.ndarray, names: list[str], log_vars: list[str]) -> np.ndarray:
        x = np.array(x, dtype=np.float64, copy=True)
        for i, n in enumerate(names):
            if n in log_vars:
                x[..., i] = np.log10(np.sqrt(np.clip(x[..., i], 0, None)) + 0.1)
        return x

    @classmethod
    def fit(cls, x: np.ndarray, names: list[str], log_vars: tuple[str, ...] = ("prcp", "pet")
            ) -> "ForcingNormalizer":
        z = cls._pre(x, names, list(log_vars)).reshape(-1, len(names))
        mean, std = np.nanmean(z, 0), np.nanstd(z, 0)
        std[std == 0] = 1.0
        return cls(names, mean.tolist(), std.tolist(), list(log_vars))

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = self._pre(x, self.names, self.log_vars)
        return (z - np.array(self.mean)) / np.array(self.std)

    def transform_day(self, values) -> np.ndarray:
        """Normalise one day's values ``[F]`` (scalar fast path for BMI time steps); equal to
        :meth:`transform` on a one-element series."""
        out = np.empty(len(self.names))
        for i, x in enumerate(values):
            if self.names[i] in self.log_vars:
                x = math.log10(math.sqrt(max(x, 0.0)) + 0.1)
            out[i] = (x - self.mean[i]) / self.std[i]
        return out

    def to_dict(self) -> dict:
        return {"names": self.names, "mean": self.mean, "std": self.std, "log_vars": self.log_vars}

    @classmethod
    def from_dict(cls, d: dict) -> "ForcingNormalizer":
        return cls(d["names"], d["mean"], d["std"], d["log_vars"])
