"""archsim: a discrete-event simulator of heterogeneous accelerators for quantized hybrid ViTs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("archsim")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"
