"""Rewrite the generated variable table of each model's ``BMI.md`` from the model's declared
variables (``--check``: only list the stale ones, exit 1 if any); see
:mod:`delta_core.bmi.variables`."""
from delta_core.bmi.variables import main

if __name__ == "__main__":
    raise SystemExit(main())
