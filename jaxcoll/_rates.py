"""Spin-gas rates of eq. (19), the rate prefactor of eq. (D4) and the effective temperature (21)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _config  # noqa: F401
from ._integral import log_scattering_integral, scattering_integral
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


def spin_rates(D, A, alpha):
    r"""Excitation and de-excitation rates of eq. (19), divided by $\tilde\Gamma$.

    $$\frac{\Gamma_\pm}{\tilde\Gamma} = \frac{I(\alpha, \mp D/\alpha)}{1 + e^{\pm A}},$$

    in the dimensionless parameters of the paper's Fig. 2: $D = \hbar\Delta/k_BT_M$,
    $A = \hbar\omega_A/k_BT_A$, $\alpha = E_R/k_BT_M$ (so that $\hbar\Delta/E_R = D/\alpha$).
    Broadcasts; works under `jit`, `vmap` and `grad`.

    **Arguments:**
    - `D`: detuning over motional temperature (any real).
    - `A`: ancilla gap over ancilla temperature (any real; negative means an inverted gas).
    - `alpha`: $E_R/k_BT_M > 0$.

    **Returns:** `(gamma_plus, gamma_minus)`.
    """
    D = check_real("D", D)
    A = check_real("A", A)
    alpha = check_real("alpha", alpha, positive=True)
    return _spin_rates(D, A, alpha)


def log_spin_rates(D, A, alpha):
    r"""Natural logarithms of `spin_rates`, finite even where the rates underflow."""
    D = check_real("D", D)
    A = check_real("A", A)
    alpha = check_real("alpha", alpha, positive=True)
    return _log_spin_rates(D, A, alpha)


def effective_temperature(omega_s, delta, T_a, T_m):
    r"""Effective temperature of eq. (21), $T = \omega_S T_A T_M / (\omega_A T_M - \Delta T_A)$.

    Negative when the gas inverts the spin (eq. 22); $\pm\infty$ when the denominator vanishes
    (returned as `+inf`, equal rates up and down).
    """
    omega_a = omega_s + delta
    den = omega_a * T_m - delta * T_a
    safe = jnp.where(den == 0, 1.0, den)
    return jnp.where(den == 0, jnp.inf, omega_s * T_a * T_m / safe)
