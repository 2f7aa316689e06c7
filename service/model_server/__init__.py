"""A generic server for scikit-learn models saved with skops."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("model-server")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
