"""jaxcoll: thermodynamically consistent collisional master equations in JAX."""

import importlib.metadata

from . import _config  # noqa: F401
from ._integral import (
    log_scattering_integral as log_scattering_integral,
)
from ._integral import (
    scattering_integral as scattering_integral,
)
from ._rates import (
    effective_temperature as effective_temperature,
)
from ._rates import (
    gamma_tilde_from as gamma_tilde_from,
)
from ._rates import (
    log_spin_rates as log_spin_rates,
)
from ._rates import (
    spin_rates as spin_rates,
)
from ._spin import SpinGas as SpinGas

__version__ = importlib.metadata.version("jaxcoll")
