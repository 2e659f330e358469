"""BMI scaffolding shared by the δ models: the generic lumped BMI over live numpy arrays
(:mod:`.base`), the model-core contract (:mod:`.core`) and the NextGen adapter that turns a core
into a BMI component (:mod:`.adapter`), with the BMI variables derived from a model's
declarations (:mod:`.variables`)."""
from delta_core.bmi.adapter import NgenBmi
from delta_core.bmi.base import BmiError, LumpedBmi, VarSpec
from delta_core.bmi.core import LumpedCore

__all__ = ["BmiError", "LumpedBmi", "LumpedCore", "NgenBmi", "VarSpec"]
