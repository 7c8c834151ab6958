"""Spin-gas rates of eq. (19), the rate prefactor of eq. (D4) and the effective temperature (21)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _config  # noqa: F401
from ._integral import log_scattering_integral, scattering_integral
from ._profiles import Gaussian, _log_profile_integral, check_profile
from ._validation import check_real


def gamma_tilde_from(density, coupling, T_m, E_R=1.0):
    r"""Rate prefactor $\tilde\Gamma$ of eq. (19)/(D4) in units of $E_R/\hbar$ times $E_R$.

    $$\tilde\Gamma = \frac{n\lambda_{\rm th}^3 V_0^2}{2\hbar E_R}
      = \frac12\Big(\frac{4\pi E_R}{k_B T_M}\Big)^{3/2} (nR^3)
        \Big(\frac{V_0}{E_R}\Big)^2 \frac{E_R}{\hbar},$$

    with $\lambda_{\rm th} = \sqrt{2\pi\hbar^2/(m k_B T_M)}$ and $E_R = \hbar^2/(2mR^2)$.

    **Arguments:**
    - `density`: $nR^3$ (dimensionless; the model assumes $nR^3 \ll 1$).
    - `coupling`: $V_0/E_R$.
    - `T_m`: motional temperature of the gas (energy units).
    - `E_R`: interaction energy $\hbar^2/(2mR^2)$.

    **Returns:** $\tilde\Gamma$ (1/time).
    """
    return 0.5 * (4.0 * jnp.pi * E_R / T_m) ** 1.5 * density * coupling**2 * E_R


def _spin_rates(D, A, alpha):
    s = D / alpha
    gp = scattering_integral(alpha, -s) * jax.nn.sigmoid(-A)
    gm = scattering_integral(alpha, s) * jax.nn.sigmoid(A)
    return gp, gm


def _log_spin_rates(D, A, alpha):
    s = D / alpha
    lgp = log_scattering_integral(alpha, -s) - jax.nn.softplus(A)
    lgm = log_scattering_integral(alpha, s) - jax.nn.softplus(-A)
    return lgp, lgm


def uses_closed_form(profile, drift) -> bool:
    """True for the Gaussian of eq. (D1) without drift, whose rates have the closed form (20)."""
    return type(profile) is Gaussian and drift is None


def _log_profile_spin_rates(profile, drift, D, A, alpha):
    r"""`_log_spin_rates` for any profile: $\ln I_g(\alpha, \mp s, w)$ plus the Fermi factors.

    Without drift one quadrature serves both rates, $\ln I_g(\alpha, -s) = \ln I_g(\alpha, s)
    + \alpha s$ (micro-reversibility, exact to rounding).
    """
    s = D / alpha
    if drift is None:
        l_dn = _log_profile_integral(profile, alpha, s)
        l_up = l_dn + alpha * s
    else:
        l_up = _log_profile_integral(profile, alpha, -s, drift)
        l_dn = _log_profile_integral(profile, alpha, s, drift)
    return l_up - jax.nn.softplus(A), l_dn - jax.nn.softplus(-A)


def _rates_for(profile, drift, D, A, alpha, log):
    if uses_closed_form(profile, drift):
        return (_log_spin_rates if log else _spin_rates)(D, A, alpha)
    lgp, lgm = _log_profile_spin_rates(profile, drift, D, A, alpha)
    return (lgp, lgm) if log else (jnp.exp(lgp), jnp.exp(lgm))


def _checked(D, A, alpha, profile, drift):
    D = check_real("D", D)
    A = check_real("A", A)
    alpha = check_real("alpha", alpha, positive=True)
    profile = check_profile(profile)
    drift = None if drift is None else check_real("drift", drift, nonnegative=True)
    if drift is not None:
        D, A, alpha, drift = jnp.broadcast_arrays(
            *(jnp.asarray(x, dtype=float) for x in (D, A, alpha, drift))
        )
    return D, A, alpha, profile, drift


def spin_rates(D, A, alpha, *, profile=None, drift=None):
    r"""Excitation and de-excitation rates of eq. (19), divided by $\tilde\Gamma$.

    $$\frac{\Gamma_\pm}{\tilde\Gamma} = \frac{I(\alpha, \mp D/\alpha)}{1 + e^{\pm A}},$$

    in the dimensionless parameters of the paper's Fig. 2: $D = \hbar\Delta/k_BT_M$,
    $A = \hbar\omega_A/k_BT_A$, $\alpha = E_R/k_BT_M$ (so that $\hbar\Delta/E_R = D/\alpha$).
    For another interaction profile, or a drifting gas, $I$ is replaced by $I_g$ of
    `profile_integral`. Broadcasts; works under `jit`, `vmap` and `grad`.

    **Arguments:**
    - `D`: detuning over motional temperature (any real).
    - `A`: ancilla gap over ancilla temperature (any real; negative means an inverted gas).
    - `alpha`: $E_R/k_BT_M > 0$.
    - `profile`: interaction profile (default: the Gaussian of eq. (D1), closed form).
    - `drift`: drift speed $m|\mathbf u|R/\hbar \ge 0$ of the gas (default: at rest).

    **Returns:** `(gamma_plus, gamma_minus)`.
    """
    D, A, alpha, profile, drift = _checked(D, A, alpha, profile, drift)
    return _rates_for(profile, drift, D, A, alpha, log=False)


def log_spin_rates(D, A, alpha, *, profile=None, drift=None):
    r"""Natural logarithms of `spin_rates`, finite even where the rates underflow."""
    D, A, alpha, profile, drift = _checked(D, A, alpha, profile, drift)
    return _rates_for(profile, drift, D, A, alpha, log=True)


def effective_temperature(omega_s, delta, T_a, T_m):
    r"""Effective temperature of eq. (21), $T = \omega_S T_A T_M / (\omega_A T_M - \Delta T_A)$.

    Negative when the gas inverts the spin (eq. 22); $\pm\infty$ when the denominator vanishes
    (returned as `+inf`, equal rates up and down).
    """
    omega_a = omega_s + delta
    return _ratio_or_inf(omega_s * T_a * T_m, omega_a * T_m - delta * T_a)


def _ratio_or_inf(num, den):
    """`num / den`, and `+inf` where `den == 0` (with finite gradients elsewhere)."""
    safe = jnp.where(den == 0, 1.0, den)
    return jnp.where(den == 0, jnp.inf, num / safe)
