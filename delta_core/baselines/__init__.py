"""Baselines the δ models are compared with, in the same pipeline (data, periods, training loop,
evaluation): a pure LSTM streamflow model (:mod:`delta_core.baselines.lstm`, registered as
``"lstm"``) and per-basin DDS calibration of the process models
(:mod:`delta_core.baselines.dds_hbv`)."""
