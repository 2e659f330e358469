"""Shared fixtures: factories parametrised over the model registry, so a registered model gets the
generic contract, bundle, training, BMI, bmi-tester and replay tests without writing any.

The toy model of ``tests/toy_model.py`` is registered here, next to the package's models. Tests are
split by package (``core/``, ``dhbv/``, ``dcfe/``, ``lgar/``); the reference data they read is in
``tests/data``. Tests that need the CAMELS data pack carry ``@pytest.mark.camels``: they are
skipped, all with the one message :data:`CAMELS_SKIP`, where the pack is absent (a bare clone).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

import toy_model  # noqa: F401  (registers the "toy" model)
from delta_core.benchmarking import usable_cpus
from delta_core.bundle import save_bundle
from delta_core.config import CAMELS_ATTRIBUTES
from delta_core.data.camels import CamelsDataset
from delta_core.inputs import Normalization, build_inputs, raw_attribute_array
from delta_core.registry import MODELS, model_spec
from delta_core.spec import Engine

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
#: Reference data of the tests (runs of the C models, ngen outputs): tests/data/README.md.
DATA = TESTS / "data"
#: The CAMELS data pack (not part of the repository): $DELTA_CAMELS, by default beside the
#: repository as README's commands and configs/ expect it.
CAMELS_PACK = Path(os.environ.get("DELTA_CAMELS")
                   or REPO.parent / "shared" / "data" / "camels_us_daily").resolve()
CAMELS_SKIP = (f"needs the CAMELS data pack at {CAMELS_PACK} (set DELTA_CAMELS to its folder; "
               f"default ../shared/data/camels_us_daily)")
#: Sample basin used by the BMI factories.
GAUGE = "01022500"
#: Every registered model, the toy included.
MODEL_NAMES = sorted(MODELS)
#: The registered models that have a BMI component (baselines such as the LSTM have none).
BMI_MODEL_NAMES = [n for n in MODEL_NAMES if model_spec(n).bmi_class is not None]


def pytest_configure(config):
    """Refuse to test the source tree instead of the installed package (unless asked to); under
    pytest-xdist (``-n``), give each worker its share of the CPUs this process may use, so that
    the workers do not thrash (torch would give each of them every core)."""
    import delta_core

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, usable_cpus() // workers))

    src = REPO / "delta_core"
    if Path(delta_core.__file__).resolve().parent == src and not os.environ.get(
            "DELTA_TEST_SOURCE"):
        raise pytest.UsageError(
            f"delta_core was imported from the source tree ({src}), not from the installed "
            f"package: run `pip install .` and then `pytest` (not `python -m pytest`, which puts "
            f"the current folder first on sys.path); set DELTA_TEST_SOURCE=1 to test the source "
            f"tree on purpose")


def pytest_collection_modifyitems(config, items):
    """Without the CAMELS pack, skip the tests marked ``camels``, all with :data:`CAMELS_SKIP`."""
    if (CAMELS_PACK / "attributes.csv").is_file():
        return
    skip = pytest.mark.skip(reason=CAMELS_SKIP)
    for item in items:
        if item.get_closest_marker("camels") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def camels_pack() -> Path:
    """The CAMELS data pack's folder (tests using it carry ``@pytest.mark.camels``)."""
    return CAMELS_PACK


@pytest.fixture(scope="session")
def lgar_reference(tmp_path_factory) -> Path:
    """LGAR-C's reference runs (tests/data/lgar_c_reference) unpacked into a temporary folder laid
    out as ``../shared/reference/lgar`` (the ``.gz`` files gunzipped): LGAR-C configs name their
    forcing and soil files, which :func:`bmi_lgar.reference.reference_workdir` copies from there."""
    import gzip
    import shutil

    src = DATA / "lgar_c_reference"
    dst = tmp_path_factory.mktemp("lgar_c_reference")
    for f in sorted(src.rglob("*")):
        if not f.is_file():
            continue
        out = dst / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        if f.suffix == ".gz":
            with gzip.open(f, "rb") as fin, open(out.with_suffix(""), "wb") as fout:
                shutil.copyfileobj(fin, fout)
        else:
            shutil.copy(f, out)
    return dst


@pytest.fixture(params=MODEL_NAMES)
def model_name(request) -> str:
    """Each registered model in turn."""
    return request.param


@pytest.fixture(params=BMI_MODEL_NAMES)
def bmi_model_name(request) -> str:
    """Each registered model with a BMI component in turn."""
    return request.param


@pytest.fixture(scope="session")
def sample() -> CamelsDataset:
    return CamelsDataset()


def fit_normalization(ds: CamelsDataset, forcings) -> Normalization:
    ids = ds.basin_ids()
    ts = ds.load(ids, end="1985-09-30", forcings=forcings)
    return Normalization.fit(ds, ids, CAMELS_ATTRIBUTES, ts.slice_dates("1980-10-01", "1985-09-30"),
                             forcings)


def small_network(name: str):
    """The model's network config with hidden sizes shrunk (fast tests)."""
    import dataclasses

    cfg = model_spec(name).network_config()
    small = {f.name: 8 for f in dataclasses.fields(cfg) if "hidden" in f.name}
    return dataclasses.replace(cfg, **small)


def random_model(name: str, n_attributes: int, seed: int = 0, backend: str = "torch",
                 dtype=torch.float32):
    spec = model_spec(name)
    torch.manual_seed(seed)
    return spec.build_model({}, small_network(name), n_attributes, Engine(backend, dtype))


@pytest.fixture(scope="session")
def random_bundle(tmp_path_factory, sample):
    """``random_bundle(name) -> Path``: a randomly initialised bundle of model ``name`` with
    normalisation fitted on the shipped sample (cached per model)."""
    cache: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in cache:
            spec = model_spec(name)
            norm = fit_normalization(sample, spec.forcings)
            model = random_model(name, len(norm.attributes.feature_names))
            cfg = {"model": name, "physics": {}, "network": small_network(name).__dict__}
            cache[name] = save_bundle(
                tmp_path_factory.mktemp(f"bundle_{name}") / "bundle.pt", model=name,
                state_dict=model.state_dict(), config=cfg, normalization=norm.to_dict(),
                provenance={"note": "random test bundle", "train_period": ["1980-10-01",
                                                                           "1985-09-30"]})
        return cache[name]

    return make


@pytest.fixture(scope="session")
def sample_batch(sample):
    """``sample_batch(name, dtype) -> (model, batch)``: a random model and a batch of 3 sample
    basins over 120 days (30 of them warm-up)."""
    def make(name: str, dtype=torch.float64):
        spec = model_spec(name)
        ids = sample.basin_ids()[:3]
        ts = sample.load(ids, "1990-01-01", "1990-04-30", forcings=spec.forcings)
        norm = Normalization.fit(sample, ids, ["p_mean", "aridity", "frac_snow",
                                               "geol_1st_class"], ts, spec.forcings)
        inputs = build_inputs(ts, sample.attributes(ids, norm.attributes.names), norm,
                              raw_attribute_array(sample, ids, spec.raw_attributes))
        model = random_model(name, inputs.x_attr.shape[1], dtype=dtype).eval()
        import numpy as np

        return model, inputs.batch(np.arange(len(ts.dates)), np.arange(3), 30, dtype)

    return make


@pytest.fixture(scope="session")
def catchment(sample) -> dict:
    """Attributes, latitude and area of the sample basin :data:`GAUGE`."""
    attrs = {k: v[0] for k, v in sample.attributes([GAUGE], CAMELS_ATTRIBUTES).items()}
    b = sample.basins[GAUGE]
    return {"attributes": attrs, "latitude": float(b["gauge_lat"]),
            "area_km2": float(b["area_forcing_header_km2"])}


@pytest.fixture
def make_bmi(tmp_path, random_bundle, catchment):
    """``make_bmi(name, step=3600, **config) -> initialised BMI`` of model ``name`` on the sample
    basin, from a written YAML config (``config_path`` attribute set on the instance)."""
    def make(name: str, step: int = 3600, initialize: bool = True, **extra):
        cfg = {**catchment, "bundle": str(random_bundle(name)), "time_step_seconds": step,
               "start_time": "1981-01-01 00:00:00", **extra}
        path = tmp_path / f"{name}_{step}_{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        m = model_spec(name).load_bmi_class()()
        if initialize:
            m.initialize(str(path))
        m.config_path = path
        return m

    return make
