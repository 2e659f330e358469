"""dCFE: the differentiable Conceptual Functional Equivalent of the National Water Model.

:mod:`bmi_dcfe.physics` is the exact hourly CFE in PyTorch, :mod:`bmi_dcfe.cfe_config` reads and
writes C CFE config files, :mod:`bmi_dcfe.model` is the δ model, :class:`BmiDCFE` its NextGen BMI.
"""
from bmi_dcfe.bmi import BmiDCFE

__all__ = ["BmiDCFE"]
