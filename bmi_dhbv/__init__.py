"""dHBV: differentiable HBV with a NextGen BMI.

ngen loads the BMI class as ``python_type: "bmi_dhbv.BmiDHBV"`` (and the CSDMS bmi-tester as
``bmi_dhbv:BmiDHBV``, which reads the module dict: hence the eager import).
"""
from bmi_dhbv.bmi import BmiDHBV

__all__ = ["BmiDHBV"]
