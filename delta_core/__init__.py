"""Model-agnostic machinery shared by the δ models (dHBV, dCFE, dLGAR): data reading, PET,
normalisation, parameter networks, training loop, losses, metrics, weight bundles, netCDF output
and BMI scaffolding."""
__version__ = "0.1.0"
