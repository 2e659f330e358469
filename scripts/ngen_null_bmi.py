"""A Python BMI that does no work, for ``benchmark_ngen_scale.py --ngen``: the same inputs and
outputs as a model's realization, every value 0, ``update`` a no-op. Run in ngen it measures the
engine's own cost per catchment-hour (its ~50 Python calls per step, forcing reads, output
writing), the floor under any Python BMI.

The configuration file lists the variables: ``{inputs: {name: units}, outputs: {name: units}}``.
"""
from __future__ import annotations

import numpy as np
import yaml
from bmipy import Bmi


class NullBmi(Bmi):
    """Answers ngen's calls; computes nothing."""

    def initialize(self, config_file: str) -> None:
        cfg = yaml.safe_load(open(config_file))
        self._units = {**cfg["inputs"], **cfg["outputs"]}
        self._inputs = tuple(cfg["inputs"])
        self._outputs = tuple(cfg["outputs"])
        self._values = {n: np.zeros(1) for n in self._units}
        self._time = 0.0

    def update(self) -> None:
        self._time += 3600.0

    def update_until(self, time: float) -> None:
        self._time = float(time)

    def finalize(self) -> None:
        pass

    def get_component_name(self) -> str:
        return "null"

    def get_input_item_count(self) -> int:
        return len(self._inputs)

    def get_output_item_count(self) -> int:
        return len(self._outputs)

    def get_input_var_names(self):
        return self._inputs

    def get_output_var_names(self):
        return self._outputs

    def get_var_grid(self, name):
        return 0

    def get_var_type(self, name):
        return "float64"

    def get_var_units(self, name):
        return self._units[name]

    def get_var_itemsize(self, name):
        return 8

    def get_var_nbytes(self, name):
        return 8

    def get_var_location(self, name):
        return "node"

    def get_current_time(self):
        return self._time

    def get_start_time(self):
        return 0.0

    def get_end_time(self):
        return 1e12

    def get_time_units(self):
        return "s"

    def get_time_step(self):
        return 3600.0

    def get_value(self, name, dest):
        dest[:] = self._values[name]
        return dest

    def get_value_ptr(self, name):
        return self._values[name]

    def get_value_at_indices(self, name, dest, inds):
        dest[0] = self._values[name][0]
        return dest

    def set_value(self, name, src):
        self._values[name][0] = src[0]

    def set_value_at_indices(self, name, inds, src):
        self._values[name][0] = src[0]

    def get_grid_rank(self, grid):
        return 1

    def get_grid_size(self, grid):
        return 1

    def get_grid_type(self, grid):
        return "scalar"

    def _none(self, *args):
        raise NotImplementedError

    get_grid_shape = get_grid_spacing = get_grid_origin = get_grid_x = get_grid_y = _none
    get_grid_z = get_grid_node_count = get_grid_edge_count = get_grid_face_count = _none
    get_grid_edge_nodes = get_grid_face_edges = get_grid_face_nodes = _none
    get_grid_nodes_per_face = _none
