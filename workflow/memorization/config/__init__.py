"""The config layer: reading config files safely, layering them, validating them against the schema and
resolving them, once, into typed run specs (`load_config` -> `Config`, whose runs are `RunSpec`s)."""

from .loading import Config, load_config, missing_data
from .reading import ConfigError
from .spec import DataSpec, RunSpec, resolve

__all__ = ["Config", "ConfigError", "DataSpec", "RunSpec", "load_config", "missing_data", "resolve"]
