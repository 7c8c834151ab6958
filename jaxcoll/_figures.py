r"""The paper's figures and companions, each drawn from the library and returning its numbers.

Each figure comes in three parts: `<name>_data(...)` computes its numbers (a dict of arrays,
in `_figure_data`, without matplotlib), `draw_<name>(data)` draws them (a matplotlib `Figure`,
from fresh numbers or from a `results.json` entry) and `<name>(path, ...)` does both and writes
the PNG. `reproduce` draws them all and writes `results.json` next to the PNGs. matplotlib is
imported only when something is drawn.

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
- `heat_statistics`: the distributions of the heat $Q_A$, $Q_M$ from collision-resolved
  trajectories against the exact cumulants of the tilted generator, for the charging of Fig. 2
  and for the steady heat current of a qubit gas.

Units: $\hbar = k_B = 1$; times are $\tilde\Gamma t$ (eq. 19) and ergotropies are in units of
$\omega_S$ unless stated otherwise.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from pathlib import Path

import jax
import numpy as np

from ._figure_data import (
    FIG2_PAIRS,
    _jsonable,
    energy_flows_data,
    fig2_ergotropy_data,
    fig3_scattering_integral_data,
    heat_statistics_data,
    optimisation_data,
    phase_diagram_data,
    summary_rows,
    thermalisation_data,
)
from ._table import print_table

# The public names are listed once, in `jaxcoll.figures`, which re-exports them.

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
}
# how `save_figure` writes PNGs (savefig reads rcParams when it runs, after the style's block)
_SAVE = {"dpi": 200, "bbox_inches": "tight", "pad_inches": 0.03}
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


# --- drawing helpers ------------------------------------------------------------------------------


def _matplotlib():
    """matplotlib, imported on first use (computing a figure's numbers does not need it)."""
    import matplotlib as mpl
    import matplotlib.ticker  # noqa: F401  (mpl.ticker below)

    return mpl


@contextmanager
def _styled_figure(width, height):
    """A new `Figure` of `width` x `height` inches in the publication style `_RC`, which stays in
    force while the figure is drawn inside the `with` block."""
    from matplotlib.figure import Figure

    with _matplotlib().rc_context(_RC):
        yield Figure(figsize=(width, height), layout="constrained")


def _colorbar(fig, im, ax, label):
    """A colour bar for the image `im` beside `ax` (one axes or several), labelled `label`."""
    cb = fig.colorbar(im, ax=ax, pad=0.02)
    cb.set_label(label)
    return cb


def _arr(x):
    """A float array from arrays or the plain lists of `results.json` ("inf"/"nan" strings too)."""
    return np.asarray(x, dtype=float)


def save_figure(fig, path):
    """Write `fig` to `path` (PNG at the style's resolution and margins; folders created);
    `None`: nothing. Returns the path or `None`."""
    if path is None:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **_SAVE)
    return str(path)


# --- drawing -------------------------------------------------------------------------------------


def draw_fig3_scattering_integral(data, *, floor=-12.0):
    r"""Draw `fig3_scattering_integral` from its numbers (`fig3_scattering_integral_data`, or the
    entry of a `results.json`): restyle without recomputing.

    **Arguments:**
    - `data`: the dict of `fig3_scattering_integral_data` (arrays or plain lists).
    - `floor`: lower end of the colour scale in $\log_{10} I$ (smaller values are shown in
      the lowest colour).

    **Returns:** a `matplotlib.figure.Figure`.
    """
    alpha, s, log10_I = (_arr(data[k]) for k in ("alpha", "s", "log10_I"))
    cut_alphas = data["cut_alphas"]
    cuts = {k: _arr(v) for k, v in data["cuts"].items()}
    with _styled_figure(6.8, 2.7) as fig:
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
        cb = _colorbar(fig, im, ax, r"$\log_{10} I(\alpha, s)$")
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
    return fig


def draw_fig2_ergotropy(data):
    r"""Draw `fig2_ergotropy` from its numbers (`fig2_ergotropy_data`, or the entry of a
    `results.json`): restyle without recomputing.

    **Arguments:**
    - `data`: the dict of `fig2_ergotropy_data` (arrays or plain lists).

    **Returns:** a `matplotlib.figure.Figure`.
    """
    J, ts, curves = data["J"], _arr(data["t"]), data["curves"]
    with _styled_figure(3.4, 2.6) as fig:
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
        ax.xaxis.set_major_locator(_matplotlib().ticker.MaxNLocator(5, integer=True))
        ax.set_xlabel(r"time $\tilde\Gamma t$")
        ax.set_ylabel(r"ergotropy $\mathcal{W}/\hbar\omega_S$")
        ax.legend(loc="center right", fontsize=7.0, handlelength=1.5)
        ax.set_title(rf"$J = {J:g}$, $k_BT_M = E_R$", fontsize=8.5)
    return fig


def draw_thermalisation(data):
    r"""Draw `thermalisation` from its numbers (`thermalisation_data`, or the entry of a
    `results.json`): restyle without recomputing.

    **Arguments:**
    - `data`: the dict of `thermalisation_data` (arrays or plain lists).

    **Returns:** a `matplotlib.figure.Figure`.
    """
    J, T, omega_s, ts = data["J"], data["T"], data["omega_s"], _arr(data["t"])
    rows = [dict(r, T_E=_arr(r["T_E"])) for r in data["curves"]]
    delta_axis, T_repeated_axis = _arr(data["delta_axis"]), _arr(data["T_repeated_axis"])
    with _styled_figure(6.8, 2.6) as fig:
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
            T_repeated_axis / T,
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
    return fig


def draw_phase_diagram(data):
    r"""Draw `phase_diagram` from its numbers (`phase_diagram_data`, or the entry of a
    `results.json`): restyle without recomputing.

    **Arguments:**
    - `data`: the dict of `phase_diagram_data` (arrays or plain lists).

    **Returns:** a `matplotlib.figure.Figure`.
    """
    J, t_final, D, A = data["J"], data["t_final"], _arr(data["D"]), _arr(data["A"])
    W_ss, W_t = _arr(data["ergotropy_steady"]), _arr(data["ergotropy_final"])
    with _styled_figure(6.8, 2.8) as fig:
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
        _colorbar(fig, im, axes, r"ergotropy $\mathcal{W}/\hbar\omega_S$")
    return fig


def draw_optimisation(data):
    r"""Draw `optimisation` from its numbers (`optimisation_data`, or the entry of a
    `results.json`): restyle without recomputing.

    **Arguments:**
    - `data`: the dict of `optimisation_data` (arrays or plain lists).

    **Returns:** a `matplotlib.figure.Figure`.
    """
    J, omega_s, t_final = data["J"], data["omega_s"], data["t_final"]
    hist = {k: _arr(v) for k, v in data["history"].items()}
    land = data["landscape"]
    d_axis, tm_axis, T_a_best = _arr(land["delta"]), _arr(land["T_m"]), land["T_a"]
    land = _arr(land["ergotropy"])
    best_value, best_delta, best_T_m = data["scan_best"]["value"], data["delta"], data["T_m"]
    with _styled_figure(6.8, 2.7) as fig:
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
        ax.axhline(best_value, color="0.3", ls="--", lw=0.8, label="best grid point")
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
            best_delta,
            best_T_m,
            "*",
            color=_COLORS[2],
            ms=10,
            clip_on=False,
            zorder=5,
            mec="k",
            mew=0.5,
            label=rf"optimum: $\Delta={best_delta:.3g}$, $T_M={best_T_m:.3g}$",
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
        _colorbar(fig, im, bx, r"$\mathcal{W}(t_f)/E_R$")
    return fig


def draw_energy_flows(data):
    r"""Draw `energy_flows` from its numbers (`energy_flows_data`, or the entry of a
    `results.json`): restyle without recomputing.

    **Arguments:**
    - `data`: the dict of `energy_flows_data` (arrays or plain lists).

    **Returns:** a `matplotlib.figure.Figure`.
    """
    J, omega_s, T_m, ts = data["J"], data["omega_s"], data["T_m"], _arr(data["t"])
    curves = [
        {k: _arr(v) if isinstance(v, list) else v for k, v in c.items()} for c in data["curves"]
    ]
    q = {k: _arr(v) if isinstance(v, list) else v for k, v in data["qubit"].items()}
    T_axis, tq = q["T_a"], q["t"]
    qubit_omega_a, T_a_trajectory = q["omega_a"], q["T_a_trajectory"]
    with _styled_figure(6.8, 5.0) as fig:
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

        cx.axhline(0.0, color="0.6", lw=0.6)
        cx.axvline(1.0, color="0.6", lw=0.6, ls=":")
        cx.semilogx(T_axis / T_m, q["steady_ancilla"], color=_COLORS[0], label=r"$\dot E_A$")
        cx.semilogx(T_axis / T_m, q["steady_motion"], color=_COLORS[3], label=r"$\dot E_M$")
        cx.semilogx(T_axis / T_m, q["steady_system"], color="k", ls="--", label=r"$\dot E_S$")
        cx.set_xlim(T_axis[0] / T_m, T_axis[-1] / T_m)
        ticks = [x for x in (0.2, 0.5, 1.0, 2.0, 5.0, 10.0) if T_axis[0] <= x * T_m <= T_axis[-1]]
        cx.set_xticks(ticks, [f"{x:g}" for x in ticks])
        cx.xaxis.set_minor_formatter(_matplotlib().ticker.NullFormatter())
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
    return fig


def _gaussian(x, mean, var):
    return np.exp(-0.5 * (x - mean) ** 2 / var) / np.sqrt(2 * np.pi * var)


def draw_heat_statistics(data):
    r"""Draw `heat_statistics` (the figure) from its numbers (`heat_statistics_data`, or the
    entry of a `results.json`): restyle without recomputing.

    **Arguments:**
    - `data`: the dict of `heat_statistics_data` (arrays or plain lists).

    **Returns:** a `matplotlib.figure.Figure`.
    """
    s, q = data["spin"], data["qubit"]
    with _styled_figure(6.8, 5.0) as fig:
        (ax, bx), (cx, dx) = fig.subplots(2, 2)

        # (a) spin: Q_A < 0 (ancillas pay), Q_M > 0 (the motion takes), on one axis
        t, mean, cov = _arr(s["t"]), _arr(s["mean"]), _arr(s["covariance"])
        lo = 1.0
        for i, h in enumerate(s["histograms"]):
            k = int(np.argmin(np.abs(t - h["t"])))
            for j, name in enumerate(("ancilla", "motion")):
                edges, dens = _arr(h[name]["edges"]), _arr(h[name]["density"])
                ax.stairs(
                    dens,
                    edges,
                    color=_COLORS[i],
                    lw=0.8,
                    label=rf"$\tilde\Gamma t = {h['t']:g}$" if j == 0 else None,
                )
                x = np.linspace(edges[0] - 3.0, edges[-1] + 3.0, 400)
                ax.plot(
                    x, _gaussian(x, mean[k, j], cov[k, j, j]), color=_COLORS[i], lw=0.7, ls="--"
                )
                lo = min(lo, dens[dens > 0].min())
        ax.set_yscale("log")
        ax.set_ylim(0.5 * lo, 30.0)
        ax.axvline(0.0, color="0.6", lw=0.6)
        ax.set_xlabel(r"heat $Q_A$ (left), $Q_M$ (right) $/\hbar\omega_S$")
        ax.set_ylabel("probability density")
        ax.legend(loc="upper center", fontsize=6.5, handlelength=1.0, ncol=4, columnspacing=0.8)
        ax.set_title(
            rf"(a)  $J={s['J']:g}$, $D={s['D']:g}$, $A={s['A']:g}$: "
            r"trajectories vs Gaussian",
            loc="left",
        )

        # (b) spin: mean and standard deviation in time, exact vs trajectories
        tf, mf, cf = _arr(s["t_fine"]), _arr(s["mean_fine"]), _arr(s["covariance_fine"])
        sm, sv = _arr(s["sample_mean"]), _arr(s["sample_var"])
        for j, (name, c) in enumerate(((r"Q_A", _COLORS[0]), (r"Q_M", _COLORS[3]))):
            sd = np.sqrt(np.maximum(cf[:, j, j], 0.0))
            bx.plot(tf, mf[:, j], color=c, label=rf"$\langle {name}\rangle \pm \sigma$")
            bx.fill_between(tf, mf[:, j] - sd, mf[:, j] + sd, color=c, alpha=0.2, lw=0)
            bx.plot(t, sm[:, j], "o", color=c, ms=2.2, mfc="none", mew=0.6)
            for sign in (-1.0, 1.0):
                bx.plot(t, sm[:, j] + sign * np.sqrt(sv[:, j]), ".", color=c, ms=1.8)
        bx.axhline(0.0, color="0.6", lw=0.6)
        bx.set_xscale("symlog", linthresh=1.0, linscale=0.6)
        bx.set_xlim(0.0, tf[-1])
        bx.set_xlabel(r"time $\tilde\Gamma t$")
        bx.set_ylabel(r"heat $/\hbar\omega_S$")
        bx.legend(loc="center right", fontsize=7.0)
        bx.set_title(r"(b)  lines: heat_statistics; dots: trajectories", loc="left")

        # (c) qubit gas from its steady state: Q_A at a few times
        t, mean, cov = _arr(q["t"]), _arr(q["mean"]), _arr(q["covariance"])
        J_A, D_AA = float(_arr(q["currents"])[0]), float(_arr(q["diffusion"])[0, 0])
        for i, h in enumerate(q["histograms"]):
            k = int(np.argmin(np.abs(t - h["t"])))
            edges, dens = _arr(h["ancilla"]["edges"]), _arr(h["ancilla"]["density"])
            cx.stairs(
                dens, edges, color=_COLORS[i], lw=0.8, label=rf"$\tilde\Gamma t = {h['t']:g}$"
            )
            x = np.linspace(edges[0] - 2.0, edges[-1] + 2.0, 400)
            cx.plot(x, _gaussian(x, mean[k, 0], cov[k, 0, 0]), color=_COLORS[i], lw=0.8)
            cx.plot(x, _gaussian(x, J_A * h["t"], D_AA * h["t"]), color=_COLORS[i], lw=0.8, ls=":")
        k = int(np.argmin(np.abs(t - q["histograms"][-1]["t"])))
        sd = math.sqrt(cov[k, 0, 0])
        cx.set_xlim(min(0.0, mean[k, 0]) - 4.5 * sd, max(0.0, mean[k, 0]) + 4.5 * sd)
        cx.set_ylim(bottom=0.0)
        cx.set_xlabel(r"heat into the ancillas $Q_A/\hbar\omega_S$")
        cx.set_ylabel("probability density")
        cx.legend(loc="upper right", fontsize=7.0)
        cx.set_title(
            rf"(c)  qubit gas, $T_A = {q['T_a']:g}\,T_M$, stationary start",
            loc="left",
        )

        # (d) qubit gas: cumulants in time, and the long-time line J_A t, D_AA t
        tf, mf, cf = _arr(q["t_fine"]), _arr(q["mean_fine"]), _arr(q["covariance_fine"])
        sm, sv = _arr(q["sample_mean"]), _arr(q["sample_var"])
        se_m, se_v = _arr(q["se_mean"]), _arr(q["se_var"])
        # per cumulant: exact in time, its long-time line, the trajectories' estimate +- 2 SE
        for exact, rate, sample, se, c, label, line_label in (
            (cf[:, 0, 0], D_AA, sv, se_v, _COLORS[3], r"$\mathrm{Var}\,Q_A$",
             rf"$D_{{AA}}t$, $D_{{AA}}={D_AA:.4g}$"),
            (mf[:, 0], J_A, sm, se_m, _COLORS[0], r"$\langle Q_A\rangle$",
             rf"$J_A t$, $J_A={J_A:.4g}$"),
        ):  # fmt: skip
            dx.plot(tf, exact, color=c, label=label)
            dx.plot(tf, rate * tf, color=c, ls=":", label=line_label)
            dx.errorbar(
                t,
                sample[:, 0],
                yerr=2 * se[:, 0],
                fmt="o",
                color=c,
                ms=2.2,
                mfc="none",
                mew=0.6,
                elinewidth=0.6,
            )
        dx.axhline(0.0, color="0.6", lw=0.6)
        dx.set_xlim(tf[0], tf[-1])
        dx.set_xlabel(r"time $\tilde\Gamma t$")
        dx.set_ylabel(r"cumulant $/(\hbar\omega_S)^n$")
        dx.legend(loc="upper left", fontsize=7.0)
        dx.set_title(r"(d)  same; dots: trajectories $\pm 2$ SE", loc="left")
    return fig


# --- numbers and drawing together ----------------------------------------------------------------


def _draw_and_save(data, draw, path, return_figure, **draw_kw):
    """Draw the numbers `data` with `draw`, write the PNG to `path` (nothing for `None`) and
    return `data` with its `path` added (and the `Figure` with it when `return_figure`)."""
    fig = draw(data, **draw_kw)
    data["path"] = save_figure(fig, path)
    return (data, fig) if return_figure else data


def fig3_scattering_integral(path=None, *, floor=-12.0, return_figure=False, **kwargs):
    r"""The scattering integral $I(\alpha, s)$ of eq. (20), the paper's Fig. 3.

    $$I(\alpha, s) = e^s\int_{\max(0,s)}^\infty dz\, e^{-(2+\alpha)z}
      \sinh\!\big(2\sqrt{z}\sqrt{z-s}\big),$$

    with $\alpha = E_R/k_BT_M$ and $s = \mathcal E/E_R$ the internal energy the collision takes
    up ($s = \mp\hbar\Delta/E_R$ for spin excitation / de-excitation, eq. 19). Left: $\log_{10}I$
    over $(s, \alpha)$; right: cuts at fixed $\alpha$.

    **Arguments:**
    - `path`: PNG to write (or `None`).
    - `floor`: lower end of the colour scale in $\log_{10} I$ (smaller values are shown in the
      lowest colour; the returned numbers are not clipped).
    - `return_figure`: also return the matplotlib `Figure`.
    - `**kwargs`: the keywords of `fig3_scattering_integral_data` (the figure's settings).

    **Returns:** the dict of `fig3_scattering_integral_data` with the PNG's `path`;
    `(data, figure)` when `return_figure`.
    """
    return _draw_and_save(
        fig3_scattering_integral_data(**kwargs),
        draw_fig3_scattering_integral,
        path,
        return_figure,
        floor=floor,
    )


def fig2_ergotropy(path=None, *, return_figure=False, **kwargs):
    r"""Ergotropy build-up from the ground state, the paper's Fig. 2.

    A spin $J$ in a gas of detuned two-level particles, eq. (18)-(19), with $k_BT_M = E_R$
    ($\alpha = 1$). With $D = \hbar\Delta/k_BT_M$ and $A = \hbar\omega_A/k_BT_A$ the effective
    temperature of eq. (21) is $\omega_S/T = A - D$: negative, and the steady state population
    inverted (ergotropy, eq. 23), exactly when $D > A$ (eq. 22). Pairs with equal $A - D$ reach
    the same steady state at different speeds. Dotted lines: the Gibbs-state ergotropy at
    $\omega_S/T = A - D$, the $t\to\infty$ limit.

    **Arguments:**
    - `path`: PNG to write (or `None`).
    - `return_figure`: also return the matplotlib `Figure`.
    - `**kwargs`: the keywords of `fig2_ergotropy_data` (the figure's settings).

    **Returns:** the dict of `fig2_ergotropy_data` with the PNG's `path`; `(data, figure)` when
    `return_figure`.
    """
    return _draw_and_save(fig2_ergotropy_data(**kwargs), draw_fig2_ergotropy, path, return_figure)


def thermalisation(path=None, *, return_figure=False, **kwargs):
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
    - `return_figure`: also return the matplotlib `Figure`.
    - `**kwargs`: the keywords of `thermalisation_data` (the figure's settings).

    **Returns:** the dict of `thermalisation_data` with the PNG's `path`; `(data, figure)` when
    `return_figure`.
    """
    return _draw_and_save(thermalisation_data(**kwargs), draw_thermalisation, path, return_figure)


def phase_diagram(path=None, *, return_figure=False, **kwargs):
    r"""Steady-state and finite-time ergotropy over the $(D, A)$ plane.

    Steady state: the Gibbs state at $\omega_S/T = A - D$ (eq. 21), inverted, hence with
    ergotropy, exactly below the line $D = A$ (eq. 22). Finite time: $\mathcal W$ at
    $\tilde\Gamma t$ = `t_final` from the ground state, computed with a `vmap` scan of
    `ergotropy_curve`; large detunings $D$ suppress the rates (Fig. 3) and slow the build-up.

    **Arguments:**
    - `path`: PNG to write (or `None`).
    - `return_figure`: also return the matplotlib `Figure`.
    - `**kwargs`: the keywords of `phase_diagram_data` (the figure's settings).

    **Returns:** the dict of `phase_diagram_data` with the PNG's `path`; `(data, figure)` when
    `return_figure`.
    """
    return _draw_and_save(phase_diagram_data(**kwargs), draw_phase_diagram, path, return_figure)


def optimisation(path=None, *, return_figure=False, **kwargs):
    r"""A gradient search for the gas conditions that charge the spin best in a time $t_f$.

    `optimize_ergotropy` maximises $\mathcal W(t_f)$ from the ground state over $(T_A, T_M,
    \Delta)$ in a box, for a gas of fixed density $nR^3$ and coupling $V_0/E_R$ (so
    $\tilde\Gamma \propto T_M^{-3/2}$, eq. D4): a coarse `vmap` scan, multi-start Adam (optax)
    and an L-BFGS-B polish, all with exact JAX gradients through the ODE solve.
    Left: the objective along the search. Right: the path in the $(\Delta, T_M)$ plane over
    the landscape $\mathcal W(t_f)$ at the optimal $T_A$.

    **Arguments:**
    - `path`: PNG to write (or `None`).
    - `return_figure`: also return the matplotlib `Figure`.
    - `**kwargs`: the keywords of `optimisation_data` (the figure's settings).

    **Returns:** the dict of `optimisation_data` with the PNG's `path`; `(data, figure)` when
    `return_figure`.
    """
    return _draw_and_save(optimisation_data(**kwargs), draw_optimisation, path, return_figure)


def energy_flows(path=None, *, return_figure=False, **kwargs):
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
    - `return_figure`: also return the matplotlib `Figure`.
    - `**kwargs`: the keywords of `energy_flows_data` (the figure's settings).

    **Returns:** the dict of `energy_flows_data` with the PNG's `path`; `(data, figure)` when
    `return_figure`.
    """
    return _draw_and_save(energy_flows_data(**kwargs), draw_energy_flows, path, return_figure)


def heat_statistics(path=None, *, return_figure=False, **kwargs):
    r"""Heat one collision at a time: distributions of $Q_A$, $Q_M$ against their cumulants.

    (The figure; `jaxcoll.heat_statistics` computes the cumulants it draws.) Every collision of
    channel $c$ gives the ancilla sector $\Delta E_A$ and the motional sector
    $\Delta E_M = -(E_c + \Delta E_A)$ (eq. 14), so the heats are sums over collisions and their
    distributions live on lattices. `collision_trajectories` samples them exactly;
    `jaxcoll.heat_statistics` gives their exact mean and covariance from the tilted generator.

    (a) Spin $J$ charged from its ground state at the Fig. 2 setting $(D, A) = (2, 0.5)$,
    $k_BT_M = E_R = \hbar\omega_S$ ($\Delta = 2\omega_S$, $\omega_A = 3\omega_S$,
    $T_A = 6\omega_S$): histograms of $Q_A$ (negative: the ancillas pay) and $Q_M$ (positive)
    at several times, against the Gaussian with the exact mean and variance (dashed, log
    scale). Tight coupling makes $Q_A = -(\omega_A/\omega_S)\Delta E_S$ on every trajectory, so
    the two distributions are images of that of the spin energy, which is far from Gaussian
    while the spin climbs the ladder. (b) Mean $\pm$ standard deviation in time: exact (lines,
    band) and from the trajectories (dots). (c) A qubit in a two-level gas,
    $v = \sigma_x\otimes\sigma_x$, $\omega_A = 1.6\,\omega_S$, $T_A = 3T_M$, from its
    stationary state: $Q_A$ at several times against the Gaussian with the exact finite-time
    cumulants (solid) and with the long-time ones $J_At$, $D_{AA}t$ of
    `steady_heat_statistics` (dotted). (d) Its mean and variance in time: the mean is exactly
    $J_A t$ from the stationary state, the variance approaches $D_{AA}t$ plus a constant.

    **Arguments:**
    - `path`: PNG to write (or `None`).
    - `return_figure`: also return the matplotlib `Figure`.
    - `**kwargs`: the keywords of `heat_statistics_data` (the figure's settings).

    **Returns:** the dict of `heat_statistics_data` with the PNG's `path`; `(data, figure)` when
    `return_figure`.
    """
    return _draw_and_save(heat_statistics_data(**kwargs), draw_heat_statistics, path, return_figure)


# --- everything -----------------------------------------------------------------------------------


def reproduce(out_dir, fast=False, progress=True):
    """Draw every figure into `out_dir`, write `results.json` and print a summary table.

    **Arguments:**
    - `out_dir`: folder for `fig2_ergotropy.png`, `fig3_scattering_integral.png`,
      `thermalisation.png`, `phase_diagram.png`, `optimisation.png`, `energy_flows.png`,
      `heat_statistics.png` and `results.json`.
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
        ("heat_statistics", heat_statistics),
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
