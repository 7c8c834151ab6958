"""Independent SciPy reference for the spin ladder's population sector (benchmarks only).

The birth-death generator of eq. (11) for eq. (18) is written out here in NumPy from the two
rates, propagated by `scipy.linalg.expm`, and the ergotropy of eq. (23) is taken by sorting:
nothing of jaxcoll's solver is used, so it scores jaxcoll's answers from the outside.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg


def population_generator(gp: float, gm: float, J: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense generator L (dP/dt = L P, ascending basis, index 0 is m = -J) and the m values."""
    d = int(2 * J) + 1
    m = np.arange(d) - J
    c2 = (J - m[:-1]) * (J + m[:-1] + 1.0)
    i = np.arange(d - 1)
    L = np.zeros((d, d))
    L[i + 1, i] += gp * c2
    L[i, i] -= gp * c2
    L[i, i + 1] += gm * c2
    L[i + 1, i + 1] -= gm * c2
    return L, m


def ergotropy(p: np.ndarray, e: np.ndarray) -> float:
    """Eq. (23) for populations `p` on ascending levels `e`."""
    return float(e @ p - e @ np.sort(p)[::-1])


def ergotropy_from_ground(gp: float, gm: float, J: int, t: float, omega_s: float) -> float:
    """W(t) of the spin started in m = -J, by `expm` of the population generator."""
    L, m = population_generator(gp, gm, J)
    p = scipy.linalg.expm(L * t)[:, 0]
    return ergotropy(p, omega_s * m)
