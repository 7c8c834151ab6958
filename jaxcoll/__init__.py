"""jaxcoll: thermodynamically consistent collisional master equations in JAX."""

import importlib.metadata

from . import _config  # noqa: F401
from ._counting import (
    CountingStatistics as CountingStatistics,
    SteadyStatistics as SteadyStatistics,
    counting_scgf as counting_scgf,
    counting_statistics as counting_statistics,
    gallavotti_cohen_residual as gallavotti_cohen_residual,
    heat_statistics as heat_statistics,
    heat_weights as heat_weights,
    scgf as scgf,
    steady_counting_statistics as steady_counting_statistics,
    steady_heat_statistics as steady_heat_statistics,
)
from ._evolve import (
    EvolveError as EvolveError,
    EvolveResult as EvolveResult,
    ergotropy_curve as ergotropy_curve,
    evolve as evolve,
)
from ._flows import EnergyBudget as EnergyBudget, energy_budget as energy_budget
from ._functionals import (
    charging_power as charging_power,
    energy_trajectory as energy_trajectory,
    ergotropy_at as ergotropy_at,
    ergotropy_trajectory as ergotropy_trajectory,
    final_energy as final_energy,
    max_charging_power as max_charging_power,
    max_ergotropy as max_ergotropy,
    spin_model as spin_model,
    value_and_grad as value_and_grad,
)
from ._integral import (
    log_scattering_integral as log_scattering_integral,
    scattering_integral as scattering_integral,
    scattering_integral_quad as scattering_integral_quad,
)
from ._interop import (
    from_qutip as from_qutip,
    qutip_lindblad as qutip_lindblad,
    to_qutip as to_qutip,
)
from ._model import CollisionalModel as CollisionalModel, EnergyFlows as EnergyFlows
from ._observables import (
    energy as energy,
    ergotropy as ergotropy,
    ergotropy_populations as ergotropy_populations,
    relative_entropy as relative_entropy,
    shannon_entropy as shannon_entropy,
    von_neumann_entropy as von_neumann_entropy,
)
from ._optimize import OptimizeResult as OptimizeResult, optimize_ergotropy as optimize_ergotropy
from ._options import SolverOptions as SolverOptions
from ._profiles import (
    Exponential as Exponential,
    FourierProfile as FourierProfile,
    Gaussian as Gaussian,
    InteractionProfile as InteractionProfile,
    RadialProfile as RadialProfile,
    SquareWell as SquareWell,
    Yukawa as Yukawa,
    profile_integral as profile_integral,
)
from ._protocol import (
    AbstractModel as AbstractModel,
    Channels as Channels,
    Sectors as Sectors,
    SparseMatrix as SparseMatrix,
)
from ._rates import (
    effective_temperature as effective_temperature,
    gamma_tilde_from as gamma_tilde_from,
    log_spin_rates as log_spin_rates,
    spin_rates as spin_rates,
)
from ._relaxation import relaxation_rates as relaxation_rates, steady_state as steady_state
from ._scan import grid as grid, scan as scan
from ._solver import Rosenbrock as Rosenbrock
from ._spin import SpinGas as SpinGas
from ._states import (
    ground_populations as ground_populations,
    ground_state as ground_state,
    spin_coherent_populations as spin_coherent_populations,
    spin_coherent_state as spin_coherent_state,
    thermal_populations as thermal_populations,
    thermal_state as thermal_state,
)
from ._trajectories import (
    TrajectoryResult as TrajectoryResult,
    collision_trajectories as collision_trajectories,
    entropy_production as entropy_production,
)
from ._validity import (
    Criterion as Criterion,
    ValidityReport as ValidityReport,
    ValidityWarning as ValidityWarning,
    check_validity as check_validity,
)

try:
    __version__ = importlib.metadata.version("jaxcoll")
except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
    __version__ = "0+unknown"
