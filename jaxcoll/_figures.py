r"""The paper's figures and companions, each drawn from the library and returning its numbers.

Every figure maker writes a PNG when given a `path` and returns a dictionary of plain Python
lists and floats: exactly the numbers that are plotted, ready for `json.dump`. `reproduce`
draws them all and writes `results.json` next to the PNGs.

- `fig2_ergotropy`: the paper's Fig. 2, ergotropy build-up of a $J = 20$ spin, eq. (18)-(23).
- `fig3_scattering_integral`: the paper's Fig. 3, the scattering integral $I(\alpha, s)$ of
  eq. (20) on a logarithmic colour scale.
- `thermalisation`: a gas in equilibrium ($T_A = T_M = T$) thermalises the spin to $T$ for
  any detuning, while a repeated-interaction model would give $\omega_S T/\omega_A$.
- `phase_diagram`: steady-state and finite-time ergotropy over the $(D, A)$ plane, with the
  border $D = A$ of eq. (22).
- `optimisation`: a gradient search for the gas conditions that maximise the ergotropy.
- `energy_flows`: energy into the system, the ancilla sector and the motional sector along the
  charging of Fig. 2 (first law, eq. 14-15), the charging efficiency, and a steady heat current
  between the two sectors of the gas through a qubit.

Units: $\hbar = k_B = 1$; times are $\tilde\Gamma t$ (eq. 19) and ergotropies are in units of
$\omega_S$ unless stated otherwise.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from . import _config  # noqa: F401
from ._evolve import ergotropy_curve, evolve
from ._integral import log_scattering_integral
from ._observables import ergotropy_populations
from ._spin import SpinGas
from ._states import thermal_populations

__all__ = [
    "fig2_ergotropy",
    "fig3_scattering_integral",
    "thermalisation",
    "phase_diagram",
    "optimisation",
    "energy_flows",
    "reproduce",
    "print_table",
    "summary_rows",
]

# Publication style: serif text with matching mathtext, thin frames, inward ticks.
_RC = {
    "font.family": "serif",
    "font.serif": ["STIXGeneral", "DejaVu Serif"],
    "mathtext.fontset": "stix",
    "font.size": 9.0,
    "axes.labelsize": 9.5,
    "axes.titlesize": 9.5,
    "legend.fontsize": 8.0,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "axes.linewidth": 0.7,
    "lines.linewidth": 1.5,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "xtick.major.width": 0.7,
    "ytick.major.width": 0.7,
    "legend.frameon": False,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
}
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")

# (D, A) of Fig. 2: two detunings D = Delta/T_M and two ancilla factors A = omega_A/T_A. The
# steady state is Gibbs at omega_S/T = A - D (eq. 21 with T_M = E_R), so the orange and green
# pairs share the effective temperature and the red one, with D < A, builds no ergotropy.
FIG2_PAIRS = ((2.0, 0.5), (1.0, 0.5), (2.0, 1.5), (1.0, 1.5))


# --- helpers ------------------------------------------------------------------------------------


def _figure(width, height):
    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path):
    if path is None:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return str(path)


def _jsonable(x):
    """Nested lists / floats from arrays, tuples and dicts (NaN and inf become strings)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, jax.Array | np.ndarray | np.generic):
        x = np.asarray(x)
        if x.ndim:
            return [_jsonable(v) for v in x]
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def _spin_levels(J):
    d = int(round(2 * J)) + 1
    return np.arange(d, dtype=float) - J


def gibbs_ergotropy(J, beta_omega):
    r"""Ergotropy (units of $\omega_S$) of the spin-$J$ Gibbs state at $\omega_S/T$ = `beta_omega`.

    Zero for $\omega_S/T \ge 0$; for a negative temperature the populations are inverted and the
    ergotropy is $\langle h_S\rangle$ minus the energy of the reflected state.
    """
    m = jnp.asarray(_spin_levels(J))
    p = thermal_populations(m, jnp.asarray(beta_omega, dtype=float))
    return ergotropy_populations(p, m)


def _energy_temperature(energy, J):
    r"""Temperature (units of $\omega_S$) of the Gibbs state with mean $J_z$ equal to `energy`.

    Inverts the Brillouin-type function $\langle J_z\rangle_\beta$ by bisection in $\beta$;
    returns 0 for the ground state and $\pm\infty$ at $\langle J_z\rangle = 0$.
    """
    m = _spin_levels(J)
    e = np.asarray(energy, dtype=float)

    def mean(beta):
        w = -beta[..., None] * m
        w = np.exp(w - w.max(axis=-1, keepdims=True))
        return (w * m).sum(-1) / w.sum(-1)

    lo = np.full(e.shape, -1e3)
    hi = np.full(e.shape, 1e3)
    for _ in range(200):  # <J_z>_beta decreases monotonically in beta
        mid = 0.5 * (lo + hi)
        too_hot = mean(mid) > e
        lo = np.where(too_hot, mid, lo)
        hi = np.where(too_hot, hi, mid)
    beta = 0.5 * (lo + hi)
    # a pure ground (top) state has T = 0 (T -> 0-); rounding would otherwise leave a small T
    extreme = np.abs(np.abs(e) - J) <= 1e-13 * max(J, 1.0)
    with np.errstate(divide="ignore"):
        return np.where(extreme | (np.abs(beta) >= 999.0), 0.0, 1.0 / beta)


# --- Fig. 3 ------------------------------------------------------------------------------------


def fig3_scattering_integral(
    path=None,
    *,
    alpha_range=(1e-2, 10.0),
    s_range=(-10.0, 10.0),
    n_alpha=121,
    n_s=201,
    cut_alphas=(0.1, 1.0, 10.0),
    floor=-12.0,
    fast=False,
    return_figure=False,
):
    r"""The scattering integral $I(\alpha, s)$ of eq. (20), the paper's Fig. 3.

    $$I(\alpha, s) = e^s\int_{\max(0,s)}^\infty dz\, e^{-(2+\alpha)z}
      \sinh\!\big(2\sqrt{z}\sqrt{z-s}\big),$$

    with $\alpha = E_R/k_BT_M$ and $s = \mathcal E/E_R$ the internal energy the collision takes
    up ($s = \mp\hbar\Delta/E_R$ for spin excitation / de-excitation, eq. 19). Left: $\log_{10}I$
    over $(s, \alpha)$; right: cuts at fixed $\alpha$.

    **Arguments:**
    - `path`: PNG to write (or `None`).
    - `alpha_range`, `n_alpha`: log-spaced $\alpha$ grid; `s_range`, `n_s`: linear $s$ grid.
    - `cut_alphas`: the $\alpha$ of the cuts in the right panel.
    - `floor`: lower end of the colour scale in $\log_{10} I$ (smaller values are shown in the
      lowest colour; the returned numbers are not clipped).
    - `fast`: a coarse grid.

    **Returns:** a dict with `alpha`, `s`, `log10_I` (shape `(n_alpha, n_s)`) and `cuts`.
    """
    if fast:
        n_alpha, n_s = 21, 41
    alpha = np.geomspace(*alpha_range, n_alpha)
    s = np.linspace(*s_range, n_s)
    ln10 = math.log(10.0)
    log10_I = np.asarray(log_scattering_integral(alpha[:, None], s[None, :])) / ln10
    cuts = {
        f"{a:g}": np.asarray(log_scattering_integral(jnp.asarray(a), jnp.asarray(s))) / ln10
        for a in cut_alphas
    }
    data = dict(
        alpha=alpha,
        s=s,
        log10_I=log10_I,
        cut_alphas=list(cut_alphas),
        cuts=cuts,
        max_log10_I=float(log10_I.max()),
        min_log10_I=float(log10_I.min()),
    )

    with mpl.rc_context(_RC):
        fig = _figure(6.8, 2.7)
        ax, bx = fig.subplots(1, 2, width_ratios=(1.25, 1.0))
        top = math.ceil(log10_I.max())
        levels = np.arange(floor, top + 1e-9, 1.0)
        im = ax.contourf(
            s, alpha, np.maximum(log10_I, floor), levels=levels, cmap="viridis", extend="min"
        )
        cs = ax.contour(
            s,
            alpha,
            log10_I,
            levels=[lv for lv in (-9.0, -6.0, -3.0, 0.0, 1.0) if floor < lv < top],
            colors="white",
            linewidths=0.5,
            linestyles="solid",
        )
        ax.clabel(cs, fmt=lambda v: f"{v:.0f}", fontsize=6.5, inline=True)
        ax.set_yscale("log")
        ax.set_xlabel(r"$s = \mathcal{E}/E_R$")
        ax.set_ylabel(r"$\alpha = E_R/k_B T_M$")
        cb = fig.colorbar(im, ax=ax, pad=0.02)
        cb.set_label(r"$\log_{10} I(\alpha, s)$")
        cb.set_ticks(np.arange(floor, top + 1e-9, 2.0))
        ax.set_title("(a)", loc="left")

        for i, a in enumerate(cut_alphas):
            bx.semilogy(s, 10.0 ** cuts[f"{a:g}"], color=_COLORS[i], label=rf"$\alpha = {a:g}$")
        bx.set_ylim(10.0**floor, 10.0 ** (top + 0.5))
        bx.set_xlim(s[0], s[-1])
        bx.set_xlabel(r"$s = \mathcal{E}/E_R$")
        bx.set_ylabel(r"$I(\alpha, s)$")
        bx.axvline(0.0, color="0.6", lw=0.6, ls=":")
        bx.legend(loc="lower left")
        bx.set_title("(b)", loc="left")
        data["path"] = _save(fig, path)
    return (data, fig) if return_figure else data


# --- Fig. 2 ------------------------------------------------------------------------------------


def fig2_ergotropy(
    path=None,
    *,
    J=20,
    alpha=1.0,
    pairs=FIG2_PAIRS,
    t_final=20.0,
    n_t=401,
    fast=False,
    return_figure=False,
):
    r"""Ergotropy build-up from the ground state, the paper's Fig. 2.

    A spin $J$ in a gas of detuned two-level particles, eq. (18)-(19), with $k_BT_M = E_R$
    ($\alpha = 1$). With $D = \hbar\Delta/k_BT_M$ and $A = \hbar\omega_A/k_BT_A$ the effective
    temperature of eq. (21) is $\omega_S/T = A - D$: negative, and the steady state population
    inverted (ergotropy, eq. 23), exactly when $D > A$ (eq. 22). Pairs with equal $A - D$ reach
    the same steady state at different speeds. Dotted lines: the Gibbs-state ergotropy at
    $\omega_S/T = A - D$, the $t\to\infty$ limit.

    **Arguments:**
    - `path`: PNG to write (or `None`).
    - `J`: spin quantum number; `alpha`: $E_R/k_BT_M$.
    - `pairs`: sequence of `(D, A)`.
    - `t_final`, `n_t`: time grid $\tilde\Gamma t \in [0, t_{\rm final}]$.
    - `fast`: fewer time points.

    **Returns:** a dict with `t` (units $1/\tilde\Gamma$), and per pair `D`, `A`, `beta_omega`
    ($\omega_S/T$), `ergotropy` (units $\omega_S$), `ergotropy_steady`.
    """
    if fast:
        n_t = 41
    ts = np.linspace(0.0, t_final, n_t)
    curves = []
    for D, A in pairs:
        W = np.asarray(ergotropy_curve(J, D, A, alpha, jnp.asarray(ts)))
        curves.append(
            dict(
                D=float(D),
                A=float(A),
                beta_omega=float(A - D),
                ergotropy=W,
                ergotropy_steady=float(gibbs_ergotropy(J, A - D)),
            )
        )
    data = dict(J=J, alpha=alpha, t=ts, curves=curves)

    with mpl.rc_context(_RC):
        fig = _figure(3.4, 2.6)
        ax = fig.subplots()
        ax.axhline(2 * J, color="0.55", lw=0.7, ls="--")
        ax.text(
            ts[-1] - 0.01 * (ts[-1] - ts[0]),
            2 * J + 0.4,
            r"$2J$: fully inverted",
            ha="right",
            va="bottom",
            fontsize=7.0,
            color="0.35",
        )
        for i, c in enumerate(curves):
            lab = rf"$D={c['D']:g},\ A={c['A']:g}$  ($\hbar\omega_S/k_BT={c['beta_omega']:+g}$)"
            ax.plot(ts, c["ergotropy"], color=_COLORS[i], label=lab)
            ax.axhline(c["ergotropy_steady"], color=_COLORS[i], lw=0.8, ls=":")
        ax.set_xlim(ts[0], ts[-1])
        ax.set_ylim(-0.025 * 2 * J, 1.12 * 2 * J)
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(5, integer=True))
        ax.set_xlabel(r"time $\tilde\Gamma t$")
        ax.set_ylabel(r"ergotropy $\mathcal{W}/\hbar\omega_S$")
        ax.legend(loc="center right", fontsize=7.0, handlelength=1.5)
        ax.set_title(rf"$J = {J:g}$, $k_BT_M = E_R$", fontsize=8.5)
        data["path"] = _save(fig, path)
    return (data, fig) if return_figure else data


# --- thermalisation ------------------------------------------------------------------------------


def thermalisation(
    path=None,
    *,
    J=20,
    T=1.0,
    omega_s=1.0,
    E_R=1.0,
    detunings=(-0.5, 0.0, 1.0, 2.0),
    t_range=(1e-3, 1e2),
    n_t=161,
    n_delta=61,
    fast=False,
    return_figure=False,
):
    r"""Thermalisation by a gas in equilibrium, $T_A = T_M = T$, for several detunings.

    The spin starts in its ground state. By eq. (21) with $T_A = T_M$ its stationary state is
    the Gibbs state at the gas temperature $T$ for every detuning $\Delta$; the detuning only
    sets the speed through $I(E_R/T, \mp\Delta/E_R)$. A repeated-interaction model with detuned
    ancillas would instead relax to $\omega_S T/\omega_A$ (the paragraph after eq. (21)). The
    temperature of the (non-Gibbs) transient state is read off from its energy:
    $T_E(t)$ is the temperature of the Gibbs state with the same $\langle J_z\rangle$.

    Left: $T_E(t)/T$ against $\tilde\Gamma t$, with the repeated-interaction values
    $\omega_S/\omega_A$ dotted. Right: the final temperature against $\Delta/\omega_S$ (markers),
    eq. (21) (solid) and $\omega_S T/\omega_A$ (dashed).

    **Arguments:**
    - `path`: PNG to write (or `None`).
    - `J`, `omega_s`, `E_R`: spin and energy scales; `T`: the gas temperature $T_A = T_M$.
    - `detunings`: $\Delta$ values (same unit as `omega_s`); $\omega_A = \omega_S + \Delta > 0$.
    - `t_range`, `n_t`: log-spaced $\tilde\Gamma t$ grid.
    - `n_delta`: points of the dense $\Delta$ axis in the right panel.
    - `fast`: fewer time points.

    **Returns:** a dict with `t`, and per detuning `delta`, `Jz` (mean $J_z$), `T_E`,
    `T_final`, `T_eq21` and `T_repeated` ($\omega_S T/\omega_A$).
    """
    if fast:
        n_t, n_delta = 25, 11
    ts = np.concatenate([[0.0], np.geomspace(*t_range, n_t - 1)])
    m = _spin_levels(J)
    p0 = jnp.zeros(len(m)).at[0].set(1.0)
    rows = []
    for delta in detunings:
        gas = SpinGas(J, omega_s=omega_s, delta=delta, T_a=T, T_m=T, E_R=E_R, gamma_tilde=1.0)
        p = np.asarray(evolve(gas, p0, jnp.asarray(ts)).populations)
        Jz = p @ m
        T_E = omega_s * _energy_temperature(Jz, J)
        rows.append(
            dict(
                delta=float(delta),
                Jz=Jz,
                T_E=T_E,
                T_final=float(T_E[-1]),
                T_eq21=float(gas.effective_temperature()),
                T_repeated=float(omega_s * T / (omega_s + delta)),
                rates=[float(g) for g in gas.rates()],
            )
        )
    delta_axis = np.linspace(
        min(detunings) - 0.25 * omega_s, max(detunings) + 0.5 * omega_s, n_delta
    )
    data = dict(
        J=J,
        T=T,
        omega_s=omega_s,
        E_R=E_R,
        t=ts,
        curves=rows,
        delta_axis=delta_axis,
        T_repeated_axis=omega_s * T / (omega_s + delta_axis),
    )

    with mpl.rc_context(_RC):
        fig = _figure(6.8, 2.6)
        ax, bx = fig.subplots(1, 2)
        for i, r in enumerate(rows):
            lab = rf"$\Delta = {r['delta']:+g}\,\omega_S$" if r["delta"] else r"$\Delta = 0$"
            ax.semilogx(ts[1:], r["T_E"][1:] / T, color=_COLORS[i], label=lab)
            ax.axhline(r["T_repeated"] / T, color=_COLORS[i], lw=0.9, ls=":")
        ax.axhline(1.0, color="k", lw=0.7, ls="-", zorder=0)
        ax.text(ts[-1] * 0.7, 1.03, "gas temperature", ha="right", va="bottom", fontsize=7.0)
        ax.set_xlim(ts[1], ts[-1])
        ax.set_ylim(0.0, 1.1 * max(1.0, max(r["T_repeated"] for r in rows)) / T)
        ax.set_xlabel(r"time $\tilde\Gamma t$")
        ax.set_ylabel(r"spin temperature $T_E(t)/T$")
        ax.legend(loc="upper left", fontsize=7.5)
        ax.set_title("(a)", loc="left")
        ax.text(
            0.98,
            0.04,
            r"dotted: repeated interactions, $\omega_S/\omega_A$",
            transform=ax.transAxes,
            ha="right",
            fontsize=7.0,
            color="0.3",
        )

        bx.plot(
            delta_axis / omega_s,
            np.full_like(delta_axis, 1.0),
            "k-",
            lw=1.0,
            label="scattering model, eq. (21)",
        )
        bx.plot(
            delta_axis / omega_s,
            data["T_repeated_axis"] / T,
            "k--",
            lw=1.0,
            label=r"repeated interactions, $\omega_S T/\omega_A$",
        )
        for i, r in enumerate(rows):
            bx.plot(
                r["delta"] / omega_s,
                r["T_final"] / T,
                "o",
                color=_COLORS[i],
                ms=5,
                mec="k",
                mew=0.5,
            )
        bx.plot(
            [],
            [],
            "o",
            color="0.7",
            mec="k",
            mew=0.5,
            label=rf"$T_E$ at $\tilde\Gamma t = {ts[-1]:g}$",
        )
        bx.set_xlabel(r"detuning $\Delta/\omega_S$")
        bx.set_ylabel(r"final spin temperature $/\,T$")
        bx.set_xlim(delta_axis[0] / omega_s, delta_axis[-1] / omega_s)
        bx.set_ylim(0.0, None)
        bx.legend(loc="upper right", fontsize=7.5)
        bx.set_title(rf"(b)  $T_A = T_M = T = {T:g}\,E_R$, $J = {J:g}$", loc="left")
        data["path"] = _save(fig, path)
    return (data, fig) if return_figure else data


# --- phase diagram -------------------------------------------------------------------------------


def phase_diagram(
    path=None,
    *,
    J=20,
    alpha=1.0,
    D_range=(-1.0, 4.0),
    A_range=(0.0, 4.0),
    n=81,
    t_final=5.0,
    fast=False,
    progress=False,
    return_figure=False,
):
    r"""Steady-state and finite-time ergotropy over the $(D, A)$ plane.

    Steady state: the Gibbs state at $\omega_S/T = A - D$ (eq. 21), inverted, hence with
    ergotropy, exactly below the line $D = A$ (eq. 22). Finite time: $\mathcal W$ at
    $\tilde\Gamma t$ = `t_final` from the ground state, computed with a `vmap` scan of
    `ergotropy_curve`; large detunings $D$ suppress the rates (Fig. 3) and slow the build-up.

    **Arguments:**
    - `path`: PNG to write (or `None`).
    - `J`, `alpha`: spin and $E_R/k_BT_M$.
    - `D_range`, `A_range`, `n`: the `n` x `n` grid.
    - `t_final`: time $\tilde\Gamma t$ of the right panel.
    - `fast`: a coarse grid; `progress`: the scan's progress bar.

    **Returns:** a dict with `D`, `A` (axes), `ergotropy_steady` and `ergotropy_final`, each of
    shape `(n_D, n_A)`, in units of $\omega_S$.
    """
    from ._scan import grid, scan

    if fast:
        n = 9
    D = np.linspace(*D_range, n)
    A = np.linspace(*A_range, n)
    pts = grid(D=D, A=A)
    ts = jnp.asarray([0.0, t_final])

    def point(p):
        W_t = ergotropy_curve(J, p["D"], p["A"], alpha, ts)[-1]
        return dict(final=W_t, steady=gibbs_ergotropy(J, p["A"] - p["D"]))

    res = scan(point, pts, progress=progress, chunk_size=1024)
    W_ss = res["steady"].reshape(n, n)
    W_t = res["final"].reshape(n, n)
    data = dict(
        J=J, alpha=alpha, t_final=t_final, D=D, A=A, ergotropy_steady=W_ss, ergotropy_final=W_t
    )

    with mpl.rc_context(_RC):
        fig = _figure(6.8, 2.8)
        axes = fig.subplots(1, 2, sharey=True)
        titles = (
            r"(a)  steady state, $\tilde\Gamma t \to \infty$",
            rf"(b)  $\tilde\Gamma t = {t_final:g}$ from the ground state",
        )
        vmax = 2 * J
        for ax, W, title in zip(axes, (W_ss, W_t), titles, strict=True):
            im = ax.pcolormesh(
                D, A, W.T, cmap="magma", vmin=0.0, vmax=vmax, shading="nearest", rasterized=True
            )
            lo, hi = max(D[0], A[0]), min(D[-1], A[-1])
            ax.plot([lo, hi], [lo, hi], color="w", lw=1.0, ls="--")
            for i, (Dp, Ap) in enumerate(FIG2_PAIRS):
                ax.plot(Dp, Ap, "o", ms=4.5, color=_COLORS[i], mec="w", mew=0.7)
            ax.set_xlabel(r"$D = \hbar\Delta/k_BT_M$")
            ax.set_title(title, loc="left")
            ax.set_xlim(D[0], D[-1])
            ax.set_ylim(A[0], A[-1])
        axes[0].set_ylabel(r"$A = \hbar\omega_A/k_BT_A$")
        axes[0].text(
            0.5 * (D[0] + D[-1]) + 0.8,
            0.5 * (A[0] + A[-1]) + 1.4,
            r"$D = A$",
            color="w",
            fontsize=8,
            rotation=38,
        )
        cb = fig.colorbar(im, ax=axes, pad=0.02)
        cb.set_label(r"ergotropy $\mathcal{W}/\hbar\omega_S$")
        data["path"] = _save(fig, path)
    return (data, fig) if return_figure else data


# --- optimisation -------------------------------------------------------------------------------

OPT_BOUNDS = dict(T_a=(0.2, 5.0), T_m=(0.05, 5.0), delta=(0.0, 10.0))


def optimisation(
    path=None,
    *,
    J=20,
    t_final=3.0,
    omega_s=1.0,
    density=0.01,
    coupling=1.0,
    bounds=None,
    steps=40,
    n_background=32,
    result=None,
    fast=False,
    progress=False,
    return_figure=False,
):
    r"""A gradient search for the gas conditions that charge the spin best in a time $t_f$.

    `optimize_ergotropy` maximises $\mathcal W(t_f)$ from the ground state over $(T_A, T_M,
    \Delta)$ in a box, for a gas of fixed density $nR^3$ and coupling $V_0/E_R$ (so
    $\tilde\Gamma \propto T_M^{-3/2}$, eq. D4): a coarse `vmap` scan, multi-start Adam (optax)
    and an L-BFGS-B polish, all with exact JAX gradients through the ODE solve.
    Left: the objective along the search. Right: the path in the $(\Delta, T_M)$ plane over
    the landscape $\mathcal W(t_f)$ at the optimal $T_A$.

    **Arguments:**
    - `path`: PNG to write (or `None`).
    - `J`, `t_final` ($\hbar/E_R$), `omega_s`, `density`, `coupling`: the problem; `bounds`:
      `{"T_a": (lo, hi), "T_m": ..., "delta": ...}` (default `OPT_BOUNDS`).
    - `steps`: Adam steps; `n_background`: landscape grid per axis.
    - `result`: an `OptimizeResult` of `optimize_ergotropy` for these settings, to draw
      instead of running the search again (its bounds are used).
    - `fast`: a small box around the optimum, few steps, coarse grids; `progress`: progress
      bars.

    **Returns:** a dict with the optimum (`T_a`, `T_m`, `delta`, `ergotropy`, `active`), the
    search `history` and the `landscape` (`delta`, `T_m` axes and `ergotropy` at the optimal
    $T_A$, shape `(n_delta, n_T_m)`).
    """
    from ._functionals import ergotropy_at
    from ._optimize import optimize_ergotropy
    from ._scan import grid, scan

    bounds = dict(OPT_BOUNDS if bounds is None else bounds)
    opt_kw = {}
    if fast:  # a small box around the optimum of the default problem, so the grid is inverted
        steps, n_background = 4, 6
        bounds = dict(T_a=(1.0, 5.0), T_m=(0.05, 0.3), delta=(0.2, 1.0))
        opt_kw = dict(scan_points=3, n_starts=2, polish_iterations=3)
    if result is None:
        res = optimize_ergotropy(
            J,
            t_final,
            omega_s=omega_s,
            density=density,
            coupling=coupling,
            steps=steps,
            progress=progress,
            **bounds,
            **opt_kw,
        )
    else:
        res = result
        bounds = {k: tuple(v) for k, v in res.bounds.items()}
    # Landscape at the optimal T_a, for the picture only, in a window around the search path.
    hist = {k: np.asarray(v) for k, v in res.history.items()}
    d_lo, d_hi = bounds["delta"]
    tm_lo, tm_hi = bounds["T_m"]
    d_hi = min(d_hi, max(3.0 * omega_s, 1.5 * float(np.max(hist["delta"], initial=res.delta))))
    tm_hi = min(tm_hi, max(1.0 * omega_s, 3.0 * float(np.max(hist["T_m"], initial=res.T_m))))
    d_axis = np.linspace(d_lo, d_hi, n_background)
    tm_axis = np.geomspace(tm_lo, tm_hi, n_background)
    kw = dict(J=J, omega_s=omega_s, density=density, coupling=coupling)
    T_a_best = res.T_a

    def point(p):
        return ergotropy_at({"T_a": T_a_best, **p}, t_final, **kw)

    land = scan(point, grid(delta=d_axis, T_m=tm_axis), progress=progress).reshape(
        n_background, n_background
    )
    data = dict(
        J=J,
        t_final=t_final,
        omega_s=omega_s,
        density=density,
        coupling=coupling,
        bounds={k: list(v) for k, v in bounds.items()},
        T_a=res.T_a,
        T_m=res.T_m,
        delta=res.delta,
        ergotropy=res.ergotropy,
        active=res.active,
        gradient=res.gradient,
        scan_best=res.scan["best"],
        n_evaluations=res.n_evaluations,
        history=hist,
        landscape=dict(delta=d_axis, T_m=tm_axis, T_a=T_a_best, ergotropy=land),
    )

    with mpl.rc_context(_RC):
        fig = _figure(6.8, 2.7)
        ax, bx = fig.subplots(1, 2, width_ratios=(1.0, 1.15))
        steps_axis = np.arange(len(hist["value"]))
        starts = hist["starts"]
        for k in range(starts.shape[1]):
            ax.plot(
                np.arange(len(starts)),
                starts[:, k],
                color="0.65",
                lw=0.8,
                label="Adam starts" if k == 0 else None,
            )
        ax.plot(steps_axis, hist["value"], color=_COLORS[0], lw=1.6, label="best start")
        n_adam = int(np.sum(hist["phase"] < 2))
        if n_adam < len(steps_axis):
            ax.axvspan(n_adam - 0.5, steps_axis[-1] + 0.5, color=_COLORS[2], alpha=0.12, lw=0)
            ax.text(
                n_adam + 0.3,
                0.06,
                "L-BFGS-B\npolish",
                transform=ax.get_xaxis_transform(),
                fontsize=7,
                color="0.25",
            )
        ax.axhline(res.scan["best"]["value"], color="0.3", ls="--", lw=0.8, label="best grid point")
        ax.axhline(2 * J * omega_s, color="0.55", ls=":", lw=0.8, label=r"$2J\hbar\omega_S$")
        ax.set_xlabel("optimisation step")
        ax.set_ylabel(rf"$\mathcal{{W}}(t_f)/E_R$,  $t_f = {t_final:g}\,\hbar/E_R$")
        ax.set_xlim(0, max(1, steps_axis[-1]))
        ax.set_ylim(0.0, 2.2 * J * omega_s)
        ax.legend(loc="lower right", fontsize=7, bbox_to_anchor=(1.0, 0.12))
        ax.set_title("(a)", loc="left")

        im = bx.pcolormesh(
            d_axis,
            tm_axis,
            land.T,
            cmap="magma",
            vmin=0.0,
            vmax=2 * J * omega_s,
            shading="gouraud",
            rasterized=True,
        )
        bx.set_yscale("log")
        bx.plot(hist["delta"], hist["T_m"], "-", color="w", lw=1.0)
        bx.plot(
            hist["delta"][0],
            hist["T_m"][0],
            "o",
            color="w",
            ms=4,
            mec="k",
            mew=0.5,
            label="search start",
        )
        bx.plot(
            res.delta,
            res.T_m,
            "*",
            color=_COLORS[2],
            ms=10,
            clip_on=False,
            zorder=5,
            mec="k",
            mew=0.5,
            label=rf"optimum: $\Delta={res.delta:.3g}$, $T_M={res.T_m:.3g}$",
        )
        # eq. (22) at T_A = T_a_best: inversion needs T_M < Delta T_A / (omega_S + Delta)
        border = d_axis * T_a_best / (omega_s + d_axis)
        ok = border > tm_axis[0]
        bx.plot(d_axis[ok], border[ok], "--", color="c", lw=1.0, label="eq. (22): inverted below")
        bx.set_xlim(d_axis[0], d_axis[-1])
        bx.set_ylim(tm_axis[0], tm_axis[-1])
        bx.set_xlabel(r"detuning $\Delta/E_R$")
        bx.set_ylabel(r"motional temperature $k_BT_M/E_R$")
        bx.legend(loc="upper right", fontsize=7, framealpha=0.85, frameon=True)
        bx.set_title(rf"(b)  $k_BT_A = {T_a_best:.3g}\,E_R$, $J = {J:g}$", loc="left")
        cb = fig.colorbar(im, ax=bx, pad=0.02)
        cb.set_label(r"$\mathcal{W}(t_f)/E_R$")
        data["path"] = _save(fig, path)
    return (data, fig) if return_figure else data


# --- energy flows -------------------------------------------------------------------------------

# Fig. 2 pairs that invert the spin (D > A); with T_M = E_R = omega_S they fix Delta and T_A.
FLOW_PAIRS = ((2.0, 0.5), (1.0, 0.5), (2.0, 1.5))


def _qubit_gas(omega, omega_a, T_a, T_m, gamma_tilde):
    """A qubit in a gas of two-level particles with v = sigma_x (x) sigma_x: excitation exchange
    plus counter-rotating terms, so the channels exchange energy in two different ratios."""
    from ._model import CollisionalModel

    sx = np.array([[0.0, 1.0], [1.0, 0.0]])
    return CollisionalModel(
        np.diag([-0.5 * omega, 0.5 * omega]),
        np.diag([0.0, omega_a]),
        np.kron(sx, sx),
        T_a=T_a,
        T_m=T_m,
        gamma_tilde=gamma_tilde,
    )


def energy_flows(
    path=None,
    *,
    J=20,
    pairs=FLOW_PAIRS,
    t_final=20.0,
    n_t=201,
    qubit_omega_a=1.6,
    T_a_range=(0.2, 5.0),
    n_T=41,
    T_a_trajectory=3.0,
    fast=False,
    return_figure=False,
):
    r"""Energy flows of the gas as one structured reservoir: system, ancillas and motion.

    (a) Spin $J$ charged from its ground state at the Fig. 2 setting $(D, A) = (2, 0.5)$ with
    $k_BT_M = E_R = \hbar\omega_S$ (so $\Delta = 2\omega_S$, $\omega_A = 3\omega_S$,
    $T_A = 6\omega_S$): cumulative energy into the system $\Delta E_S$ (the heat $Q$ of eq. 15),
    into the ancilla sector $Q_A$ and into the motional sector $Q_M$, with $\Delta E_S + Q_A +
    Q_M = 0$ (eq. 14), and the ergotropy $\mathcal W$ (eq. 23). Every collision of the spin
    model exchanges energy in the fixed ratio $\omega_S : -\omega_A : \Delta$, so
    $Q_A = -(\omega_A/\omega_S)\Delta E_S$: the ancillas pay for the spin *and* for the
    motion. (b) Charging efficiency $\eta = \mathcal W/(-Q_A)$ for the inverting Fig. 2 pairs,
    bounded by $\omega_S/\omega_A$ (dashed); eq. (22) is $\omega_S/\omega_A < 1 - T_M/T_A$,
    the Carnot efficiency of the two sectors (dotted). (c) Steady state of a qubit in a
    two-level gas with counter-rotating coupling $v = \sigma_x\otimes\sigma_x$, $T_M = E_R$:
    the system energy is stationary, yet energy flows from the hotter sector of the gas to the
    colder one *through* the system (for the spin model of eq. 17 these currents vanish).
    (d) The same model from its ground state at $T_A$ = `T_a_trajectory`: $\dot E_S \to 0$
    while $\dot E_A$ and $\dot E_M$ settle at opposite non-zero values.

    All flows come from `energy_budget` (exact cumulative values, no quadrature).

    **Arguments:**
    - `path`: PNG to write (or `None`).
    - `J`: spin quantum number; `pairs`: the $(D, A)$ of panel (b) (the first is panel a).
    - `t_final`, `n_t`: time grid $\tilde\Gamma t \in [0, t_{\rm final}]$.
    - `qubit_omega_a`: ancilla gap of the qubit model (units of $\omega_S$); `T_a_range`,
      `n_T`: its $T_A$ axis; `T_a_trajectory`: $T_A$ of panel (d).
    - `fast`: fewer points.

    **Returns:** a dict with `t`, per pair (`curves`) `D`, `A`, `delta`, `omega_a`, `T_a`,
    `system`, `ancilla`, `motion`, `ergotropy`, `efficiency`, `bound` ($\omega_S/\omega_A$),
    `carnot`, `first_law_max`; and `qubit` with `T_a`, `steady_system`, `steady_ancilla`,
    `steady_motion`, and the trajectory `t`, `system_rate`, `ancilla_rate`, `motion_rate`.
    Energies in units of $\omega_S = E_R$, times $\tilde\Gamma t$.
    """
    from ._flows import energy_budget
    from ._states import ground_populations

    if fast:
        n_t, n_T = 41, 9
    ts = np.linspace(0.0, t_final, n_t)
    omega_s = T_m = 1.0
    curves = []
    for D, A in pairs:
        delta = D * T_m
        omega_a = omega_s + delta
        T_a = omega_a / A
        gas = SpinGas(J, omega_s=omega_s, delta=delta, T_a=T_a, T_m=T_m, gamma_tilde=1.0)
        res = evolve(gas, ground_populations(gas.dim), jnp.asarray(ts))
        b = energy_budget(gas, res)
        parts = [np.asarray(x) for x in (b.system, b.ancilla, b.motion)]
        curves.append(
            dict(
                D=float(D),
                A=float(A),
                delta=delta,
                omega_a=omega_a,
                T_a=T_a,
                system=parts[0],
                ancilla=parts[1],
                motion=parts[2],
                ergotropy=np.asarray(b.ergotropy),
                efficiency=np.asarray(b.charging_efficiency),
                bound=omega_s / omega_a,
                carnot=1.0 - T_m / T_a,
                first_law_max=float(np.max(np.abs(sum(parts)))),
            )
        )

    # the contrast: two energy ratios, a steady current through the system
    T_axis = np.geomspace(*T_a_range, n_T)
    p_probe = np.array([[1.0, 0.0], [0.0, 1.0]])
    steady = np.array(
        [
            np.asarray(
                energy_budget(
                    _qubit_gas(omega_s, qubit_omega_a, T_a, T_m, 1.0), p_probe, np.array([0, 1.0])
                ).steady_rates
            )
            for T_a in T_axis
        ]
    )
    qubit = _qubit_gas(omega_s, qubit_omega_a, T_a_trajectory, T_m, 1.0)
    tq = np.linspace(0.0, 0.5 * t_final, n_t)
    bq = energy_budget(qubit, evolve(qubit, jnp.asarray([1.0, 0.0]), jnp.asarray(tq)))
    data = dict(
        J=J,
        omega_s=omega_s,
        T_m=T_m,
        E_R=1.0,
        t=ts,
        curves=curves,
        qubit=dict(
            omega_a=qubit_omega_a,
            T_a=T_axis,
            steady_system=steady[:, 0],
            steady_ancilla=steady[:, 1],
            steady_motion=steady[:, 2],
            T_a_trajectory=T_a_trajectory,
            t=tq,
            system_rate=np.asarray(bq.system_rate),
            ancilla_rate=np.asarray(bq.ancilla_rate),
            motion_rate=np.asarray(bq.motion_rate),
            first_law_max=float(np.max(np.abs(np.asarray(bq.first_law_residual())))),
        ),
    )

    with mpl.rc_context(_RC):
        fig = _figure(6.8, 5.0)
        (ax, bx), (cx, dx) = fig.subplots(2, 2)
        c = curves[0]
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.plot(ts, c["system"], color="k", label=r"system $\Delta E_S = Q$")
        ax.plot(ts, c["ancilla"], color=_COLORS[0], label=r"ancillas $Q_A$")
        ax.plot(ts, c["motion"], color=_COLORS[3], label=r"motion $Q_M$")
        ax.plot(ts, c["ergotropy"], color=_COLORS[2], ls="--", label=r"ergotropy $\mathcal{W}$")
        ax.set_xlim(ts[0], ts[-1])
        ax.set_xlabel(r"time $\tilde\Gamma t$")
        ax.set_ylabel(r"energy $/\hbar\omega_S$")
        ax.legend(loc="center right", fontsize=7.0, handlelength=1.6)
        ax.set_title(
            rf"(a)  $J={J:g}$, $D={c['D']:g}$, $A={c['A']:g}$: "
            rf"$Q_A = -{c['omega_a'] / omega_s:g}\,\Delta E_S$",
            loc="left",
        )

        for i, c in enumerate(curves):
            lab = rf"$D={c['D']:g},\ A={c['A']:g}$"
            bx.plot(ts, c["efficiency"], color=_COLORS[i], label=lab)
            bx.axhline(c["bound"], color=_COLORS[i], lw=0.8, ls="--")
            bx.axhline(c["carnot"], color=_COLORS[i], lw=0.8, ls=":")
        bx.set_xlim(ts[0], ts[-1])
        bx.set_ylim(0.0, 1.0)
        bx.set_xlabel(r"time $\tilde\Gamma t$")
        bx.set_ylabel(r"charging efficiency $\mathcal{W}/(-Q_A)$")
        bx.legend(loc="lower right", bbox_to_anchor=(1.0, 0.53), fontsize=7.0, handlelength=1.5)
        bx.text(
            0.02,
            0.97,
            r"dashed: $\omega_S/\omega_A$;  dotted: $1 - T_M/T_A$",
            transform=bx.transAxes,
            va="top",
            fontsize=7.0,
            color="0.3",
        )
        bx.set_title("(b)", loc="left")

        q = data["qubit"]
        cx.axhline(0.0, color="0.6", lw=0.6)
        cx.axvline(1.0, color="0.6", lw=0.6, ls=":")
        cx.semilogx(T_axis / T_m, q["steady_ancilla"], color=_COLORS[0], label=r"$\dot E_A$")
        cx.semilogx(T_axis / T_m, q["steady_motion"], color=_COLORS[3], label=r"$\dot E_M$")
        cx.semilogx(T_axis / T_m, q["steady_system"], color="k", ls="--", label=r"$\dot E_S$")
        cx.set_xlim(T_axis[0] / T_m, T_axis[-1] / T_m)
        ticks = [x for x in (0.2, 0.5, 1.0, 2.0, 5.0, 10.0) if T_axis[0] <= x * T_m <= T_axis[-1]]
        cx.set_xticks(ticks, [f"{x:g}" for x in ticks])
        cx.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        cx.set_xlabel(r"$T_A/T_M$")
        cx.set_ylabel(r"steady flow $/\,\tilde\Gamma\hbar\omega_S$")
        cx.legend(loc="upper left", fontsize=7.0)
        cx.set_title(
            rf"(c)  qubit, $v=\sigma_x\otimes\sigma_x$, $\omega_A={qubit_omega_a:g}\,\omega_S$",
            loc="left",
        )

        dx.axhline(0.0, color="0.6", lw=0.6)
        dx.plot(tq, q["system_rate"], color="k", ls="--", label=r"$\dot E_S$")
        dx.plot(tq, q["ancilla_rate"], color=_COLORS[0], label=r"$\dot E_A$")
        dx.plot(tq, q["motion_rate"], color=_COLORS[3], label=r"$\dot E_M$")
        dx.set_xlim(tq[0], tq[-1])
        dx.set_xlabel(r"time $\tilde\Gamma t$")
        dx.set_ylabel(r"flow $/\,\tilde\Gamma\hbar\omega_S$")
        dx.legend(loc="upper right", fontsize=7.0)
        dx.set_title(
            rf"(d)  same, ground state at $t=0$, $T_A = {T_a_trajectory:g}\,T_M$", loc="left"
        )
        data["path"] = _save(fig, path)
    return (data, fig) if return_figure else data


# --- summary table and reproduce -----------------------------------------------------------------


def print_table(rows, headers, file=None):
    """Print `rows` (sequences of numbers / strings) as an aligned plain-text table."""
    file = sys.stdout if file is None else file
    cells = [[f"{v:.6g}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)), file=file)


def reproduce(out_dir, fast=False, progress=True):
    """Draw every figure into `out_dir`, write `results.json` and print a summary table.

    **Arguments:**
    - `out_dir`: folder for `fig2_ergotropy.png`, `fig3_scattering_integral.png`,
      `thermalisation.png`, `phase_diagram.png`, `optimisation.png`, `energy_flows.png` and
      `results.json`.
    - `fast`: small grids (a smoke test, seconds).
    - `progress`: show a progress bar (tqdm) on stderr.

    **Returns:** the dictionary written to `results.json`.
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stages = [
        ("fig3_scattering_integral", fig3_scattering_integral),
        ("fig2_ergotropy", fig2_ergotropy),
        ("thermalisation", thermalisation),
        ("phase_diagram", phase_diagram),
        ("optimisation", optimisation),
        ("energy_flows", energy_flows),
    ]
    results = {}
    timings = {}
    t_start = time.perf_counter()
    with tqdm(total=len(stages), disable=not progress, unit="figure") as bar:
        for name, maker in stages:
            bar.set_description(name)
            t0 = time.perf_counter()
            results[name] = maker(out / f"{name}.png", fast=fast)
            timings[name] = time.perf_counter() - t0
            bar.update()
    results["meta"] = dict(
        fast=bool(fast),
        seconds=timings,
        total_seconds=time.perf_counter() - t_start,
        backend=jax.default_backend(),
        x64=bool(jax.config.jax_enable_x64),
    )
    results = _jsonable(results)
    (out / "results.json").write_text(json.dumps(results))
    print_table(summary_rows(results), ["figure", "result", "value", "seconds"])
    return results


def summary_rows(results):
    """Rows `(figure, result, value, seconds)` summarising a `reproduce` results dictionary."""
    sec = results["meta"]["seconds"]
    rows = []
    r = results["fig3_scattering_integral"]
    rows.append(
        [
            "fig3",
            "log10 I(alpha, s): min, max",
            f"{r['min_log10_I']:.3g}, {r['max_log10_I']:.3g}",
            sec["fig3_scattering_integral"],
        ]
    )
    r = results["fig2_ergotropy"]
    t_end = r["t"][-1]
    for c in r["curves"]:
        rows.append(
            [
                "fig2",
                f"W({t_end:g}/Gamma~)/omega_s at D={c['D']:g}, A={c['A']:g}",
                f"{c['ergotropy'][-1]:.4g} (steady {c['ergotropy_steady']:.4g})",
                sec["fig2_ergotropy"],
            ]
        )
    r = results["thermalisation"]
    dev = max(abs(c["T_final"] / r["T"] - 1.0) for c in r["curves"])
    rep = [c["T_repeated"] / r["T"] for c in r["curves"]]
    rows.append(
        [
            "thermalisation",
            "max |T_final/T - 1| over detunings",
            f"{dev:.2g}",
            sec["thermalisation"],
        ]
    )
    rows.append(
        [
            "thermalisation",
            "repeated-interaction T/T (same detunings)",
            ", ".join(f"{x:.3g}" for x in rep),
            sec["thermalisation"],
        ]
    )
    r = results["phase_diagram"]
    W = np.asarray(r["ergotropy_final"])
    i, j = np.unravel_index(np.argmax(W), W.shape)
    rows.append(
        [
            "phase_diagram",
            f"max W(t={r['t_final']:g}/Gamma~)/omega_s at (D, A)",
            f"{W[i, j]:.4g} at ({r['D'][i]:.3g}, {r['A'][j]:.3g})",
            sec["phase_diagram"],
        ]
    )
    r = results["optimisation"]
    rows.append(
        [
            "optimisation",
            f"best W(t_f={r['t_final']:g})/E_R, J={r['J']:g}",
            f"{r['ergotropy']:.5g}",
            sec["optimisation"],
        ]
    )
    rows.append(
        [
            "optimisation",
            "at T_a, T_m, delta",
            f"{r['T_a']:.4g}, {r['T_m']:.4g}, {r['delta']:.4g}",
            sec["optimisation"],
        ]
    )
    r = results.get("energy_flows")
    if r is not None:
        for c in r["curves"][:1]:
            rows.append(
                [
                    "energy_flows",
                    f"-Q_A, Q_M, dE_S at t={r['t'][-1]:g}/Gamma~ (D={c['D']:g}, A={c['A']:g})",
                    f"{-c['ancilla'][-1]:.4g}, {c['motion'][-1]:.4g}, {c['system'][-1]:.4g}",
                    sec["energy_flows"],
                ]
            )
        rows.append(
            [
                "energy_flows",
                "max |dE_S + Q_A + Q_M| (first law)",
                f"{max(c['first_law_max'] for c in r['curves']):.2g}",
                sec["energy_flows"],
            ]
        )
        rows.append(
            [
                "energy_flows",
                "final W/(-Q_A) vs omega_S/omega_A",
                ", ".join(f"{c['efficiency'][-1]:.3g}/{c['bound']:.3g}" for c in r["curves"]),
                sec["energy_flows"],
            ]
        )
    return rows
