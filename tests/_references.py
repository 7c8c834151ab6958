"""Closed-form references shared by the tests (SciPy only, nothing of jaxcoll)."""

import numpy as np
from scipy import special


def I_ref(alpha, s):
    """Closed form of eq. (20) with SciPy's exponentially scaled K_1:
    |s| e^{-alpha s/2} K_1(|s| kappa/2)/kappa, kappa = sqrt(alpha (alpha + 4))."""
    alpha = float(alpha)
    s = float(s)
    kap = np.sqrt(alpha * (alpha + 4.0))
    if s == 0.0:
        return 2.0 / (alpha * (alpha + 4.0))
    x = abs(s) * kap / 2.0
    return abs(s) * np.exp(-alpha * s / 2.0 - x) * special.k1e(x) / kap


def spin_rates_ref(omega_s, delta, T_a, T_m, E_R=1.0, gamma_tilde=1.0):
    """Eq. (19): Gamma_pm = Gamma~ I(E_R/T_m, -+delta/E_R) / (1 + exp(+-omega_a/T_a))."""
    omega_a = omega_s + delta
    gp = gamma_tilde * I_ref(E_R / T_m, -delta / E_R) / (1.0 + np.exp(omega_a / T_a))
    gm = gamma_tilde * I_ref(E_R / T_m, delta / E_R) / (1.0 + np.exp(-omega_a / T_a))
    return gp, gm
