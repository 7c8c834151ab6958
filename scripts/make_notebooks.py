"""Write the tutorial notebooks in notebooks/ (stored without outputs).

Run `python scripts/make_notebooks.py` after editing the cells below. Every notebook reads
`JAXCOLL_NB_FAST=1` from the environment to use small sizes (the test suite executes them so).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"

SETUP = """\
import os
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

import jaxcoll

FAST = os.environ.get("JAXCOLL_NB_FAST", "0") == "1"  # small sizes for automated runs
FIGS = Path(tempfile.mkdtemp(prefix="jaxcoll-nb-"))
print("jaxcoll", jaxcoll.__version__, "| backend:", jax.default_backend(), "| fast:", FAST)"""


def md(text):
    return new_markdown_cell(text.strip("\n"))


def code(text):
    return new_code_cell(text.strip("\n"))


# --- 01 -----------------------------------------------------------------------------------------

NB01 = [
    md(r"""
# 1. The scattering integral and the spin rates

The gas particles hit the system inside an interaction region of size $R$. In the Born
approximation with the Gaussian interaction of eq. (D1), every transition that changes the
internal energy (system plus ancilla) by $\mathcal E$ happens at a rate proportional to the
**scattering integral** of eq. (20),

$$I(\alpha, s) = e^s\int_{\max(0,s)}^\infty dz\, e^{-(2+\alpha)z}\sinh\big(2\sqrt z\sqrt{z-s}\big),
\qquad \alpha = \frac{E_R}{k_BT_M},\quad s = \frac{\mathcal E}{E_R},$$

with $E_R = \hbar^2/2mR^2$. For the spin of eq. (17) the rates up and down the ladder are
eq. (19),

$$\Gamma_\pm = \tilde\Gamma\,
  \frac{I(E_R/k_BT_M, \mp\hbar\Delta/E_R)}{1 + e^{\pm\hbar\omega_A/k_BT_A}},$$

and they satisfy detailed balance at the effective temperature of eq. (21). This notebook
checks these objects against independent computations.
"""),
    code(SETUP),
    md(r"""
## $I(\alpha, s)$ against direct quadrature of eq. (20)

`jaxcoll.scattering_integral` uses a closed form in scaled Bessel functions; here we compare
with SciPy's adaptive quadrature of the defining integral (written in log space to avoid
overflow of $\sinh$).
"""),
    code(r"""
from scipy.integrate import quad


def I_quad(alpha, s):
    lo = max(0.0, s)

    def f(z):
        a = 2.0 * np.sqrt(z) * np.sqrt(max(z - s, 0.0))
        # e^s e^{-(2+alpha) z} sinh(a), with sinh(a) = e^a (1 - e^{-2a}) / 2
        return 0.5 * np.exp(s - (2.0 + alpha) * z + a) * -np.expm1(-2.0 * a)

    return quad(f, lo, np.inf, epsabs=0.0, epsrel=1e-11, limit=500)[0]


rows = []
for alpha in (0.1, 1.0, 5.0):
    for s in (-5.0, -0.5, 0.0, 0.5, 3.0):
        ours = float(jaxcoll.scattering_integral(alpha, s))
        ref = I_quad(alpha, s)
        rows.append((alpha, s, ours, ref, abs(ours / ref - 1)))
print(f"{'alpha':>6} {'s':>6} {'jaxcoll':>14} {'quad':>14} {'rel. err':>9}")
for r in rows:
    print(f"{r[0]:6g} {r[1]:6g} {r[2]:14.8e} {r[3]:14.8e} {r[4]:9.1e}")
assert max(r[-1] for r in rows) < 1e-8
"""),
    md(r"""
## The paper's Fig. 3

The integral is strongly suppressed for large $\alpha$ (a cold gas, $k_BT_M \ll E_R$: the
particles are slow compared with the interaction scale) and for large $|s|$; it decays much
faster for $s > 0$, where the
collision must supply the energy from the motion, than for $s < 0$.
"""),
    code(r"""
from jaxcoll.figures import fig3_scattering_integral

data = fig3_scattering_integral(FIGS / "fig3.png", fast=FAST)
display(Image(filename=str(FIGS / "fig3.png"), width=720))
print("log10 I ranges over", data["min_log10_I"], "...", data["max_log10_I"])
"""),
    md(r"""
`log_scattering_integral` stays finite where $I$ itself underflows, which matters for far
detuned ancillas and very cold gases:
"""),
    code(r"""
print(jaxcoll.scattering_integral(50.0, 40.0), jaxcoll.log_scattering_integral(50.0, 40.0))
"""),
    md(r"""
## Rates, detailed balance and the effective temperature

In the dimensionless parameters of Fig. 2, $D = \hbar\Delta/k_BT_M$, $A = \hbar\omega_A/k_BT_A$
and $\alpha$, eq. (21) reads $\hbar\omega_S/k_BT = A - D$ whatever $\alpha$, so
$\Gamma_+/\Gamma_- = e^{-(A-D)}$. Population inversion ($T < 0$) needs $D > A$, eq. (22).
"""),
    code(r"""
D = jnp.linspace(-3.0, 3.0, 13)
for A, alpha in ((0.5, 1.0), (2.0, 0.3)):
    gp, gm = jaxcoll.spin_rates(D, A, alpha)
    ratio = np.asarray(gp / gm)
    np.testing.assert_allclose(ratio, np.exp(-(A - np.asarray(D))), rtol=1e-10)
print("Gamma_+/Gamma_- = exp(-(A - D)) holds on the whole grid")
"""),
    code(r"""
# The same in physical units: a SpinGas and its effective temperature, eq. (21)
gas = jaxcoll.SpinGas(5, omega_s=1.0, delta=0.8, T_a=1.5, T_m=0.4, density=0.01, coupling=1.0)
gp, gm = gas.rates()
T = gas.effective_temperature()
print(f"Gamma~ = {float(gas.rate_scale()):.4g}", end=", ")
print(f"Gamma+ = {float(gp):.4g}, Gamma- = {float(gm):.4g}")
print(f"T_eff = {float(T):.4g}   (negative: the gas inverts the spin)")
print("detailed balance:", float(gp / gm), "=", float(jnp.exp(-gas.omega_s / T)))
"""),
    md(r"""
## Gradients

Everything is differentiable. The derivative of $I$ with respect to $s$ and $\alpha$ against
central finite differences:
"""),
    code(r"""
g = jax.grad(jaxcoll.scattering_integral, argnums=(0, 1))
for alpha, s in ((1.0, -2.0), (0.3, 1.5)):
    da, ds = (float(x) for x in g(alpha, s))
    h = 1e-6
    I = jaxcoll.scattering_integral
    fd_a = float(I(alpha + h, s) - I(alpha - h, s)) / (2 * h)
    fd_s = float(I(alpha, s + h) - I(alpha, s - h)) / (2 * h)
    print(f"alpha={alpha}, s={s}:  dI/dalpha {da:.8f} (FD {fd_a:.8f})", end=",  ")
    print(f"dI/ds {ds:.8f} (FD {fd_s:.8f})")
"""),
    code(r"""
# How the rates fall off with detuning at fixed temperatures (cf. Fig. 3)
D = jnp.linspace(-6, 6, 241)
fig, ax = plt.subplots(figsize=(5, 3))
for alpha in (0.3, 1.0, 3.0):
    gp, gm = jaxcoll.spin_rates(D, 1.0, alpha)
    ax.semilogy(D, gp, label=rf"$\Gamma_+/\tilde\Gamma$, $\alpha={alpha}$")
    ax.semilogy(D, gm, "--", color=ax.lines[-1].get_color(), label=r"$\Gamma_-/\tilde\Gamma$")
ax.set_xlabel(r"$D = \hbar\Delta/k_BT_M$")
ax.set_ylabel("rate")
ax.legend(fontsize=7, ncol=2)
plt.show()
"""),
]

# --- 02 -----------------------------------------------------------------------------------------

NB02 = [
    md(r"""
# 2. Thermalisation by a gas in equilibrium

When the internal and motional states of the gas share one temperature, $T_A = T_M = T$, the
rates (19) obey detailed balance at exactly $T$, eq. (21): the spin thermalises to the gas
temperature **for any detuning** $\Delta$ between system and ancilla. A repeated-interaction
(collision) model with detuned ancillas would instead relax to $\omega_S T/\omega_A$ (paragraph
after eq. 21). Here we check the zeroth and second laws on the time evolution.
"""),
    code(SETUP),
    code(r"""
J = 5 if FAST else 20
T = 1.0
ts = jnp.concatenate([jnp.zeros(1), jnp.geomspace(1e-3, 1e2, 21 if FAST else 81)])
p0 = jnp.zeros(2 * J + 1).at[0].set(1.0)  # ground state m = -J (index 0)
finals = {}
for delta in (-0.5, 0.0, 1.0, 2.0):
    gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=delta, T_a=T, T_m=T, gamma_tilde=1.0)
    res = jaxcoll.evolve(gas, p0, ts)
    finals[delta] = res.populations[-1]
    gibbs = jax.nn.softmax(-gas.energies() / T)
    err = float(jnp.max(jnp.abs(res.populations[-1] - gibbs)))
    print(f"Delta = {delta:+.1f}:  T_eff (eq. 21) = {float(gas.effective_temperature()):.6f},"
          f"  max |P(t_end) - Gibbs(T)| = {err:.1e},  repeated interactions: {T / (1 + delta):.3f}")
"""),
    md(r"""
## Second law

With $T_A = T_M = T$ the Gibbs state $\gamma_S$ is stationary and the relative entropy
$S(\rho_t\|\gamma_S)$ can only decrease (this is the Clausius inequality (16),
$\dot S \ge \dot Q/T$). We check monotonicity along a trajectory that starts from a spin coherent
state, whose coherences decay at the same time.
"""),
    code(r"""
from jaxcoll import relative_entropy, spin_coherent_state

gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=1.0, T_a=T, T_m=T, gamma_tilde=1.0)
rho0 = spin_coherent_state(J, 2.0, 0.3)
ts_lin = jnp.linspace(0.0, 2.0, 21 if FAST else 101)
res = jaxcoll.evolve(gas, rho0, ts_lin)
gibbs = jnp.diag(jax.nn.softmax(-gas.energies() / T)).astype(complex)
# regularise the pure initial state slightly so that the relative entropy is finite everywhere
S = [float(relative_entropy(0.999 * r + 0.001 * gibbs, gibbs)) for r in res.states]
coh = np.abs(np.asarray(res.states)[:, 0, 1])
print("S(rho_t || gamma) decreasing:", bool(np.all(np.diff(S) <= 1e-9)))
fig, ax = plt.subplots(1, 2, figsize=(8, 3))
ax[0].plot(ts_lin, S)
ax[0].set_xlabel(r"$\tilde\Gamma t$")
ax[0].set_ylabel(r"$S(\rho_t\,\|\,\gamma_S)$")
ax[1].semilogy(ts_lin, coh)
ax[1].set_xlabel(r"$\tilde\Gamma t$")
ax[1].set_ylabel(r"$|\rho_{-J,-J+1}|$")
fig.tight_layout()
plt.show()
"""),
    md(r"""
## The figure

`jaxcoll.figures.thermalisation` draws the spin temperature $T_E(t)$ (the temperature of the
Gibbs state with the same mean energy) for several detunings, next to the repeated-interaction
prediction.
"""),
    code(r"""
from jaxcoll.figures import thermalisation

data = thermalisation(FIGS / "thermalisation.png", J=J, fast=FAST)
display(Image(filename=str(FIGS / "thermalisation.png"), width=720))
for c in data["curves"]:
    print(f"Delta = {c['delta']:+.1f}: final T = {c['T_final']:.6f} T,", end=" ")
    print(f"repeated interactions {c['T_repeated']:.3f} T")
"""),
]

# --- 03 -----------------------------------------------------------------------------------------

NB03 = [
    md(r"""
# 3. Ergotropy from uncontrolled collisions: the paper's Fig. 2

With different internal and motional temperatures the gas is a single structured
non-equilibrium reservoir. The effective temperature (21) becomes negative, and the spin's
steady state population inverted, when $T_M < \frac{\Delta}{\omega_S + \Delta}T_A$, eq. (22);
in the parameters $D = \hbar\Delta/k_BT_M$, $A = \hbar\omega_A/k_BT_A$ this is simply $D > A$.
The ergotropy (23) measures the work a cyclic unitary could then extract.
"""),
    code(SETUP),
    code(r"""
J = 20
ts = jnp.linspace(0.0, 20.0, 41 if FAST else 201)  # units of 1 / Gamma~
pairs = [(2.0, 0.5), (1.0, 0.5), (2.0, 1.5), (1.0, 1.5)]
fig, ax = plt.subplots(figsize=(5, 3.2))
for D, A in pairs:
    W = jaxcoll.ergotropy_curve(J, D, A, 1.0, ts)
    ax.plot(ts, W, label=rf"$D={D}$, $A={A}$, $\hbar\omega_S/k_BT={A - D:+}$")
ax.set_xlabel(r"$\tilde\Gamma t$")
ax.set_ylabel(r"$\mathcal{W}/\hbar\omega_S$")
ax.legend(fontsize=7)
plt.show()
"""),
    md(r"""
Orange and green share $A - D$ and therefore the steady state; they differ in speed because
the larger detuning suppresses the rates (Fig. 3). Red has $D < A$ and stays passive.

## The same curve in physical units

`ergotropy_curve` works in the dimensionless units of Fig. 2. The same physics with a
`SpinGas` in physical units: $E_R = 1$, $k_BT_M = E_R$ ($\alpha = 1$), $\omega_S = 1$, so
$\Delta = D\,T_M$ and $T_A = \omega_A/A$; with $\tilde\Gamma = 1$ the time unit is the same.
"""),
    code(r"""
D, A = 2.0, 1.5
gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=D, T_a=(1.0 + D) / A, T_m=1.0, gamma_tilde=1.0)
res = jaxcoll.evolve(gas, jnp.zeros(2 * J + 1).at[0].set(1.0), ts)
W_dimless = jaxcoll.ergotropy_curve(J, D, A, 1.0, ts)
print("max difference:", float(jnp.max(jnp.abs(res.ergotropy - W_dimless))))
print("T_eff:", float(gas.effective_temperature()), "= omega_s / (A - D) =", 1.0 / (A - D))
"""),
    md(r"""
## Independent check: the rate equation by matrix exponential

For the ground-state start the state stays diagonal and the populations follow the birth-death
rate equation (11). A dense matrix exponential (SciPy) of its generator gives a reference that
shares no code with the solver:
"""),
    code(r"""
from scipy.linalg import expm

gp, gm = (float(x) for x in jaxcoll.spin_rates(D, A, 1.0))
m = np.arange(2 * J + 1) - J
c2 = (J - m[:-1]) * (J + m[:-1] + 1.0)
M = np.diag(gp * c2, -1) + np.diag(gm * c2, 1)
M -= np.diag(M.sum(axis=0))
P = np.stack([expm(M * t) @ np.eye(2 * J + 1)[0] for t in np.asarray(ts)])
desc = -np.sort(-P, axis=1)
W_ref = P @ m - desc @ m  # eq. (23): energy minus passive energy, units of omega_S
print("max |W - W_expm| =", np.max(np.abs(np.asarray(W_dimless) - W_ref)))
"""),
    md(r"""
## The figure as in `jaxcoll reproduce`
"""),
    code(r"""
from jaxcoll.figures import fig2_ergotropy

data = fig2_ergotropy(FIGS / "fig2.png", fast=FAST)
display(Image(filename=str(FIGS / "fig2.png"), width=420))
for c in data["curves"]:
    W_end, W_ss = c["ergotropy"][-1], c["ergotropy_steady"]
    print(f"D={c['D']}, A={c['A']}: W(t_end) = {W_end:.3f}, steady state {W_ss:.3f}")
"""),
]

# --- 04 -----------------------------------------------------------------------------------------

NB04 = [
    md(r"""
# 4. Gradients and optimisation

Every quantity in jaxcoll is differentiable with respect to the gas parameters, through the
scattering integral, the rates and the stiff ODE solve. This notebook checks gradients against
finite differences and then searches for the gas conditions that charge a spin battery best.
"""),
    code(SETUP),
    md(r"""
## Gradient of the Fig. 2 curve

$\partial\mathcal W(t)/\partial(D, A, \alpha)$ at one time, by reverse mode through the solver,
against central finite differences (step $\sim\sqrt{\epsilon}$ times the scale):
"""),
    code(r"""
J = 10 if FAST else 20
ts = jnp.linspace(0.0, 6.0, 7)
D0, A0, alpha0 = 2.0, 0.8, 1.0


def W_end(D, A, alpha):
    return jaxcoll.ergotropy_curve(J, D, A, alpha, ts)[-1]


grads = jax.grad(W_end, argnums=(0, 1, 2))(D0, A0, alpha0)
h = 1e-5
fd = [
    (W_end(D0 + h, A0, alpha0) - W_end(D0 - h, A0, alpha0)) / (2 * h),
    (W_end(D0, A0 + h, alpha0) - W_end(D0, A0 - h, alpha0)) / (2 * h),
    (W_end(D0, A0, alpha0 + h) - W_end(D0, A0, alpha0 - h)) / (2 * h),
]
print("W(t=6) =", float(W_end(D0, A0, alpha0)))
for name, g, f in zip(("D", "A", "alpha"), grads, fd, strict=True):
    print(f"dW/d{name:5s} = {float(g):+.8f}   finite difference {float(f):+.8f}")
"""),
    md(r"""
## Gradients in physical units

`ergotropy_at(params, t, J=..., density=..., coupling=...)` evaluates $\mathcal W(t)$ from the
ground state with the physical parameters $T_A$, $T_M$, $\Delta$ as a differentiable dict.
With `density` and `coupling` the prefactor $\tilde\Gamma \propto T_M^{-3/2}$ (eq. D4) follows
the motional temperature, and the gradient includes that. `value_and_grad` picks forward or
reverse mode.
"""),
    code(r"""
from jaxcoll import ergotropy_at, value_and_grad

params = {"T_a": 3.0, "T_m": 0.1, "delta": 0.6}
kw = dict(J=J, density=0.01, coupling=1.0)
vg = value_and_grad(ergotropy_at, mode="forward")
W, dW = vg(params, 3.0, **kw)
print("W(t=3) =", float(W))
for k in params:
    h = 1e-6 * max(1.0, abs(params[k]))
    up = ergotropy_at({**params, k: params[k] + h}, 3.0, **kw)
    dn = ergotropy_at({**params, k: params[k] - h}, 3.0, **kw)
    print(f"dW/d{k:5s} = {float(dW[k]):+.6f}   finite difference {float((up - dn) / (2 * h)):+.6f}")
"""),
    md(r"""
## A hand-written optax loop

The ergotropy is exactly zero wherever the state at $t_f$ is passive, so gradient ascent needs
a start inside the charging region (eq. 22). Here: Adam on the detuning alone, in log
coordinates so that $\Delta > 0$.
"""),
    code(r"""
import optax

fixed = {"T_a": 3.0, "T_m": 0.1}
opt = optax.adam(0.1)
u = jnp.log(0.8)  # delta = exp(u) > 0; start where the spin is already inverted at t = 3
state = opt.init(u)
trace = []
for _ in range(5 if FAST else 40):
    delta = jnp.exp(u)
    # the jitted forward-mode gradient above (a Python float, as there, so no recompilation)
    W, dW = vg({**fixed, "delta": float(delta)}, 3.0, **kw)
    g = -dW["delta"] * delta  # d(-W)/du by the chain rule
    upd, state = opt.update(g, state)
    u = optax.apply_updates(u, upd)
    trace.append((float(delta), float(W)))
every = max(1, len(trace) // 8)
print("delta, W along the search:", [(round(d, 3), round(w, 3)) for d, w in trace[::every]])
"""),
    md(r"""
## The full search: `optimize_ergotropy`

Coarse `vmap` scan of the box, multi-start Adam from the best grid points, then an L-BFGS-B
polish with exact gradients. The same is available on the command line:

```bash
jaxcoll optimize --J 20 --t-final 3 --omega-s 1 --density 0.01 --coupling 1 \
    --T-a 0.2 5 --T-m 0.05 5 --delta 0 10 --out best.json
```
"""),
    code(r"""
from jaxcoll import optimize_ergotropy

box = dict(T_a=(1.0, 5.0), T_m=(0.05, 0.3), delta=(0.2, 1.0)) if FAST else dict(
    T_a=(0.2, 5.0), T_m=(0.05, 5.0), delta=(0.0, 10.0)
)
extra = dict(scan_points=3, n_starts=2, polish_iterations=3) if FAST else {}
res = optimize_ergotropy(20, 3.0, omega_s=1.0, density=0.01, coupling=1.0,
                         steps=4 if FAST else 40, **box, **extra)
print(f"T_a = {res.T_a:.4g}, T_m = {res.T_m:.4g}, delta = {res.delta:.4g}: W = {res.ergotropy:.6g}")
print("active bounds:", res.active)
print("gradient at the optimum:", {k: f"{v:.3g}" for k, v in res.gradient.items()})
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(res.history["value"])
ax.set_xlabel("step (Adam, then L-BFGS-B)")
ax.set_ylabel(r"$\mathcal{W}(t_f)/E_R$")
plt.show()
"""),
    md(r"""
Why the optimum sits where it does (upper bound of $T_A$, lower bound of $T_M$, interior
$\Delta$) is explained in the README (*What the optimiser finds, physically*): hot ancillas and cold motion
drive the inversion (eq. 21), while too large a detuning suppresses the exothermic rate
(Fig. 3). The figure `optimisation.png` of `jaxcoll reproduce` shows the search path over the
landscape:
"""),
    code(r"""
from jaxcoll.figures import optimisation

data = optimisation(FIGS / "optimisation.png", result=res, n_background=6 if FAST else 32)
display(Image(filename=str(FIGS / "optimisation.png"), width=720))
"""),
]

# --- 05 -----------------------------------------------------------------------------------------

NB05 = [
    md(r"""
# 5. Large spins, parameter scans and GPUs

The spin Lindbladian (18) is banded: the populations obey a tridiagonal rate equation and every
coherence band $\rho_{i,i+q}$ evolves on its own. jaxcoll keeps that structure, so cost grows
like $O(d)$ for populations and $O(d^2)$ for density matrices ($d = 2J + 1$) rather than the
$O(d^6)$ of a dense superoperator.
"""),
    code(SETUP),
    code(r"""
import time

Js = (10, 40) if FAST else (10, 100, 1000, 5000)
rows = []
for J in Js:
    gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=2.0, T_a=3.0, T_m=1.0, gamma_tilde=1.0)
    p0 = jaxcoll.ground_populations(gas.dim)
    ts = jnp.linspace(0.0, 5.0, 21)
    t0 = time.perf_counter()
    res = jaxcoll.evolve(gas, p0, ts)
    res.ergotropy.block_until_ready()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = jaxcoll.evolve(gas, p0, ts)
    res.ergotropy.block_until_ready()
    run = time.perf_counter() - t0
    rows.append((J, first, run, int(res.num_steps), float(res.ergotropy[-1]) / J))
print(f"{'J':>6} {'first call s':>13} {'run s':>9} {'steps':>6} {'W(t=5)/(J omega_S)':>19}")
for r in rows:
    print(f"{r[0]:6d} {r[1]:13.2f} {r[2]:9.4f} {r[3]:6d} {r[4]:19.4f}")
"""),
    md(r"""
Here $D = \Delta/k_BT_M = 2 > A = \omega_A/k_BT_A = 1$, so the gas inverts the spin (eq. 22).
The number of steps grows only slowly with $J$ (the stiff Rosenbrock solver is L-stable), and
the collective rates $\propto J^2$ make large spins charge *faster* in units of $1/\tilde\Gamma$.

## Density matrices

A spin coherent state on the equator carries coherences across the whole ladder; they decay
while the populations are inverted.
"""),
    code(r"""
J = 10 if FAST else 50
gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=2.0, T_a=3.0, T_m=1.0, gamma_tilde=1.0)
rho0 = jaxcoll.spin_coherent_state(J, jnp.pi / 2)
ts = jnp.linspace(0.0, 1.0, 11 if FAST else 51)
res = jaxcoll.evolve(gas, rho0, ts)
coh = jnp.sum(jnp.abs(res.states), axis=(1, 2)) - 1.0  # l1 norm of coherence
fig, ax = plt.subplots(1, 2, figsize=(8, 3))
ax[0].plot(ts, res.ergotropy / J)
ax[0].set_xlabel(r"$\tilde\Gamma t$")
ax[0].set_ylabel(r"$\mathcal{W}/(J\omega_S)$")
ax[1].semilogy(ts, coh)
ax[1].set_xlabel(r"$\tilde\Gamma t$")
ax[1].set_ylabel(r"$\ell_1$ coherence")
fig.tight_layout()
plt.show()
"""),
    md(r"""
## Parameter scans

`jaxcoll.scan(fn, points)` maps a jittable function of one point over many points with
`jax.vmap`, chunk by chunk, sharded over all local devices (GPUs), optionally writing each chunk
to disk so an interrupted scan resumes (`out=...`). Here: the ergotropy after a charging time
over the motional temperature and the detuning.
"""),
    code(r"""
from jaxcoll import ergotropy_at

n = 6 if FAST else 48
T_m = np.geomspace(0.03, 1.0, n)
delta = np.linspace(0.0, 2.0, n)
pts = jaxcoll.grid(T_m=T_m, delta=delta)


def point(p):
    return ergotropy_at({"T_a": 5.0, **p}, 3.0, J=20, density=0.01, coupling=1.0)


t0 = time.perf_counter()
W = jaxcoll.scan(point, pts, progress=False).reshape(n, n)
print(f"{n * n} points in {time.perf_counter() - t0:.1f} s (including compilation)")
fig, ax = plt.subplots(figsize=(5, 3.5))
im = ax.pcolormesh(delta, T_m, W, shading="nearest", cmap="magma")
ax.set_yscale("log")
ax.set_xlabel(r"$\Delta/E_R$")
ax.set_ylabel(r"$k_BT_M/E_R$")
fig.colorbar(im, label=r"$\mathcal{W}(t=3\hbar/E_R)/E_R$")
plt.show()
"""),
    md(r"""
## On a GPU

* Install JAX with CUDA (`pip install -U "jax[cuda12]"`); nothing in jaxcoll changes. `scan`
  spreads each chunk over every visible device.
* jaxcoll runs in float64 by default. For speed on GPUs, single precision: set
  `JAXCOLL_X64=0` before importing jaxcoll (JAX stays in float32) or pass
  `dtype=jnp.float32` to `evolve`. Tolerances tighter than about `rtol=1e-6` are then out of
  reach; the ergotropy is typically good to a few parts in $10^{6}$ of $J\omega_S$.
"""),
    code(r"""
J = Js[0]
gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=2.0, T_a=3.0, T_m=1.0, gamma_tilde=1.0)
p0 = jaxcoll.ground_populations(gas.dim)
ts = jnp.linspace(0.0, 5.0, 21)
w64 = jaxcoll.evolve(gas, p0, ts).ergotropy
w32 = jaxcoll.evolve(gas, p0, ts, dtype=jnp.float32, rtol=1e-5, atol=1e-7).ergotropy
print("float32 vs float64, max |dW| / (J omega_S):",
      float(jnp.max(jnp.abs(w32.astype(jnp.float64) - w64))) / J)
"""),
]


# --- 06 -----------------------------------------------------------------------------------------

NB06 = [
    md(r"""
# 6. Your own system: a general collisional model

`CollisionalModel(h_s, h_a, v, T_a=..., T_m=..., ...)` builds the Born-approximation master
equation (6)-(7) for **any** $d$-level system $h_S$ in a gas of particles with any $k$-level
internal Hamiltonian $h_A$ and any Hermitian coupling $v$ on $S\otimes A$ (system factor first,
as `kron(S, A)`), with the Gaussian interaction profile of eq. (D1). Every transition
$|\varepsilon_j\rangle|\epsilon_l\rangle \to |\varepsilon_i\rangle|\epsilon_k\rangle$ gets the
rate $\tilde\Gamma\,p(\epsilon_l)\,I(\alpha, (\varepsilon_i - \varepsilon_j + \epsilon_k -
\epsilon_l)/E_R)\,|v_{ij}^{kl}|^2$.

As an example: a qutrit with unequal gaps in a gas of three-level particles. Below are the
consistency checks you can run on a model of your own.
"""),
    code(SETUP),
    code(r"""
from jaxcoll import CollisionalModel, ergotropy

h_s = np.diag([0.0, 1.0, 2.6])  # qutrit levels (units of E_R)
h_a = np.diag([0.0, 1.3, 2.2])  # gas particle's internal levels
rng = np.random.default_rng(7)
v = rng.normal(size=(9, 9)) + 1j * rng.normal(size=(9, 9))
v = (v + v.conj().T) / 2  # any Hermitian coupling on S (x) A


def model(T_a, T_m):
    return CollisionalModel(h_s, h_a, v, T_a=T_a, T_m=T_m, density=0.01, coupling=1.0)


eq = model(1.0, 1.0)
print("channels:", eq.n_channels, " Gamma~ =", float(eq.rate_scale()))
"""),
    md(r"""
## Checks for a gas in equilibrium ($T_A = T_M = T$)

1. The Lindbladian preserves trace and hermiticity.
2. Local detailed balance (13): $R_{ij}/R_{ji} = e^{-(\varepsilon_i - \varepsilon_j)/T}$.
3. Zeroth law: the Gibbs state at $T$ is stationary, and it is the steady state.
4. First law (14): energy lost by the system goes to ancilla plus motion, channel by channel.
5. Second law (16): the entropy production rate is non-negative.
"""),
    code(r"""
T = 1.0
rho = rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))
rho = rho @ rho.conj().T
rho = rho / np.trace(rho)
L = np.asarray(eq.lindbladian(rho))
print("1. |tr L(rho)| =", abs(np.trace(L)), "  |L - L^dagger| =", np.abs(L - L.conj().T).max())

R = np.asarray(eq.rate_matrix())
e = np.diag(h_s)
i, j = np.triu_indices(3, 1)
print("2. R_ij/R_ji / exp(-(e_i-e_j)/T) =", R[i, j] / R[j, i] / np.exp(-(e[i] - e[j]) / T))

gibbs = np.diag(np.exp(-e / T) / np.exp(-e / T).sum()).astype(complex)
print("3. |L(gibbs)| =", np.abs(np.asarray(eq.lindbladian(gibbs))).max(),
      " |steady - gibbs| =", np.abs(np.asarray(eq.steady_state()) - gibbs).max())

flows = eq.energy_flows(rho)
total = np.asarray(flows.system) + np.asarray(flows.ancilla) + np.asarray(flows.motion)
print("4. max |dE_S + dE_A + dE_M| per channel:", np.abs(total).max())
print("5. entropy production rate:", float(eq.entropy_production_rate(rho)), ">= 0")
"""),
    md(r"""
## Time evolution, against a matrix exponential of the superoperator

`jaxcoll.evolve` integrates the master equation with a stiff solver. For small $d$ the dense
superoperator (row-major vectorisation, see `CollisionalModel.superoperator`) and SciPy's
`expm` give an independent reference.
"""),
    code(r"""
from scipy.linalg import expm

ts = jnp.linspace(0.0, 3.0, 7 if FAST else 31)
res = jaxcoll.evolve(eq, jnp.asarray(rho), ts)
S = np.asarray(eq.superoperator())
ref = np.stack([(expm(S * float(t)) @ rho.reshape(-1)).reshape(3, 3) for t in ts])
print("max |rho_evolve - rho_expm| =", np.abs(np.asarray(res.states) - ref).max())
"""),
    md(r"""
## A non-equilibrium gas: $T_A \neq T_M$

With a hot internal sector and cold motion the steady state is no longer Gibbs and can hold
ergotropy: collisions pump the qutrit, as eq. (22) predicts for the spin. A random coupling
mixes in channels that exchange energy with the motion only (which cool the system), so here
we take an excitation-exchange coupling, $v = \sum_{i,k}|i{+}1\rangle\langle i| \otimes
|k\rangle\langle k{+}1| + \mathrm{h.c.}$, with the ancilla gaps (1.4, 1.5) blue-detuned from
the qutrit's (1.0, 1.2).
"""),
    code(r"""
h_a2 = np.diag([0.0, 1.4, 2.9])


def raise_(n, i):
    M = np.zeros((n, n))
    M[i + 1, i] = 1.0
    return M


v_ex = sum(np.kron(raise_(3, i), raise_(3, k).T) for i in (0, 1) for k in (0, 1))
v_ex = v_ex + v_ex.T
h_s2 = np.diag([0.0, 1.0, 2.2])
n = 5 if FAST else 15
T_as = np.geomspace(0.3, 50.0, n)
fig, ax = plt.subplots(figsize=(4.5, 3))
for T_m in (0.05, 0.2, 1.0):
    W = []
    for T_a in T_as:
        m2 = CollisionalModel(h_s2, h_a2, v_ex, T_a=T_a, T_m=T_m, density=0.01, coupling=1.0)
        W.append(float(ergotropy(m2.steady_state(), jnp.asarray(h_s2, dtype=complex))))
    ax.semilogx(T_as, W, "o-", ms=3, label=rf"$T_M = {T_m}\,E_R$")
ax.set_xlabel(r"ancilla temperature $T_A/E_R$")
ax.set_ylabel(r"steady-state ergotropy $/E_R$")
ax.legend()
plt.show()
print("fully inverted qutrit: ergotropy", 2.2, "E_R")
"""),
    md(r"""
## To QuTiP and back

`jaxcoll.qutip_lindblad(model)` exports $H$ and the collapse operators, so QuTiP's
`mesolve` can cross-check any model (QuTiP is optional).
"""),
    code(r"""
try:
    import qutip

    from jaxcoll import from_qutip, qutip_lindblad, to_qutip

    H, c_ops = qutip_lindblad(eq)
    out = qutip.mesolve(H, to_qutip(rho, spin=False), np.asarray(ts), c_ops,
                        options={"atol": 1e-12, "rtol": 1e-10})
    diff = np.abs(from_qutip(out.states, spin=False) - np.asarray(res.states)).max()
    print("max |rho_jaxcoll - rho_qutip| =", diff)
except ImportError:
    print("qutip is not installed; skipping")
"""),
]


# --- 07 -----------------------------------------------------------------------------------------

NB07 = [
    md(r"""
# 7. Interaction shapes and a drifting gas

The paper works out the rates for the Gaussian interaction of eq. (D1). Its master equation
(6) holds for any interaction $V = V_0\,\hat v\otimes g(|\hat{\mathbf x}|/R)$; in the first Born
approximation the amplitude is the Fourier transform of the profile at the momentum transfer,

$$f(\mathbf q, \mathbf p) = -\frac{R}{4\pi}\frac{V_0}{E_R}\,\hat v\;
G\Big(\frac{|\mathbf q - \mathbf p|R}{\hbar}\Big), \qquad
G(k) = 4\pi\int_0^\infty dr\,r^2 g(r)\frac{\sin kr}{kr},$$

and the rate of eq. (12) becomes $R = \tilde\Gamma\,|v|^2 I_g(\alpha, s)$ with the same
$\tilde\Gamma$ of eq. (D4) and one integral over the momentum transfer $k$ (the angular integral
and the Maxwellian over the incoming momentum are done in closed form):

$$I_g(\alpha, s) = \frac{1}{8\pi^3\alpha}\int_0^\infty dk\;k\,|G(k)|^2\,
  e^{-\alpha(k + s/k)^2/4}.$$

For the Gaussian, $G = (2\pi)^{3/2}e^{-k^2/2}$, this is $I(\alpha, s)$ of eq. (20). Because
$(k + s/k)^2/4 = s/2 + (k^2 + s^2/k^2)/4$, every profile obeys $I_g(\alpha,-s) =
e^{\alpha s}I_g(\alpha,s)$: detailed balance (13) does not depend on the shape.
"""),
    code(SETUP),
    md(r"""
## Three shapes

`jaxcoll.Gaussian()` (eq. D1), `jaxcoll.Exponential()` ($g = e^{-r}$, Yukawa-like but finite at
the origin, $G = 8\pi/(1+k^2)^2$) and `jaxcoll.SquareWell()` (a soft sphere of radius $R$,
$G = 4\pi(\sin k - k\cos k)/k^3$). `fourier(0)` is the volume integral $\int d^3\xi\,g$.
"""),
    code(r"""
shapes = {
    "Gaussian": jaxcoll.Gaussian(),
    "exponential": jaxcoll.Exponential(),
    "square well": jaxcoll.SquareWell(),
}
r = np.linspace(0.0, 4.0, 400)
k = np.linspace(0.0, 15.0, 600)
radial = {"Gaussian": np.exp(-r**2 / 2), "exponential": np.exp(-r), "square well": (r < 1) * 1.0}
fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3))
for name, prof in shapes.items():
    a1.plot(r, radial[name], label=name)
    a2.semilogy(k, np.asarray(prof.fourier(jnp.asarray(k))) ** 2, label=name)
    print(f"{name:12s} G(0) = {float(prof.fourier(0.0)):.6f}")
a1.set_xlabel("$r/R$")
a1.set_ylabel("$g(r)$")
a2.set_xlabel(r"momentum transfer $k = |q - p|R/\hbar$")
a2.set_ylabel("$|G(k)|^2$")
a2.set_ylim(1e-8, 4e3)
a1.legend()
plt.tight_layout()
plt.show()
"""),
    md(r"""
## Rate against detuning

$I_g(\alpha, s)$ at $\alpha = E_R/k_BT_M = 1$. The Gaussian amplitude cuts off large momentum
transfers exponentially, the exponential only as a power, so detuned transitions ($|s|\gg 1$)
stay much faster; the square well's diffraction zeros leave shoulders. The Gaussian by the
general quadrature is checked against the closed form of eq. (20).
"""),
    code(r"""
alpha = 1.0
s = jnp.linspace(-15.0, 15.0, 61 if FAST else 301)
fig, ax = plt.subplots(figsize=(5, 3.2))
for name, prof in shapes.items():
    ax.semilogy(s, jaxcoll.profile_integral(prof, alpha, s), label=name)
ax.set_xlabel(r"internal energy gained $s = \mathcal{E}/E_R$")
ax.set_ylabel(r"$I_g(1, s)$")
ax.legend()
plt.show()
lq = jaxcoll.profile_integral(jaxcoll.Gaussian(), alpha, s, log=True)
lc = jaxcoll.log_scattering_integral(alpha, s)
print("Gaussian, quadrature vs closed form: max |d ln I| =", float(jnp.abs(lq - lc).max()))
"""),
    md(r"""
## Detailed balance and the zeroth law for every shape

At $T_A = T_M = T$ the ratio of forward and backward rates is $e^{-\mathcal E/k_BT}$ whatever
the shape (micro-reversibility of the Born amplitude, eq. 9), so the spin of eq. (17)
thermalises to the gas temperature.
"""),
    code(r"""
T, omega_s = 0.7, 1.0
for name, prof in shapes.items():
    l_up = jaxcoll.profile_integral(prof, 1 / T, -s, log=True)
    l_dn = jaxcoll.profile_integral(prof, 1 / T, s, log=True)
    db = float(jnp.max(jnp.abs(l_up - l_dn - s / T)))
    gas = jaxcoll.SpinGas(2, omega_s=omega_s, delta=1.7, T_a=T, T_m=T, gamma_tilde=1.0,
                          profile=prof)
    lgp, lgm = gas.log_rates()  # Gamma_+/Gamma_- = exp(-omega_s/T_spin)
    print(f"{name:12s} max |ln R(-s)/R(s) - s E_R/T| = {db:.1e}, "
          f"spin temperature {omega_s / float(lgm - lgp):.12f} (gas: {T})")
"""),
    md(r"""
## Charging a spin battery with each shape

The Fig. 2 setting ($k_BT_M = E_R$, $D = 2$, $A = 0.5$) with each profile at the same $V_0$ and
$R$. The effective temperature (21) follows from detailed balance alone, so the steady state
and its ergotropy are the same for every shape; the shape sets how fast the gas charges the
spin.
"""),
    code(r"""
J = 5 if FAST else 20
D, A, alpha = 2.0, 0.5, 1.0
T_m = 1.0 / alpha
delta = D * T_m
ts = jnp.linspace(0.0, 10.0, 11 if FAST else 81)
fig, ax = plt.subplots(figsize=(5, 3.2))
for name, prof in shapes.items():
    gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=delta, T_a=(1.0 + delta) / A, T_m=T_m,
                          gamma_tilde=1.0, profile=prof)
    res = jaxcoll.evolve(gas, jaxcoll.ground_populations(gas.dim), ts)
    gp, gm = gas.rates()
    ax.plot(ts, res.ergotropy, label=f"{name} ($\\Gamma_-/\\tilde\\Gamma$ = {float(gm):.3f})")
ax.set_xlabel(r"$\tilde\Gamma t$")
ax.set_ylabel(r"ergotropy $\mathcal{W}/\hbar\omega_S$")
ax.legend(fontsize=8)
plt.show()
"""),
    md(r"""
## A drifting gas

Eq. (6) holds for any momentum distribution $\mu(\mathbf p)$. For a Maxwellian drifting with
velocity $\mathbf u$ the component of the incoming momentum along the momentum transfer is a
shifted Gaussian, and the rate picks up the angular average

$$M(\alpha, c, w) = \frac12\int_{-1}^{1}d\mu\,e^{-\alpha(c + w\mu)^2}, \qquad
c = \frac{k + s/k}{2},\quad w = \frac{m|\mathbf u|R}{\hbar}$$

in place of $e^{-\alpha c^2}$ (drift kinetic energy $w^2E_R$). A streaming gas is not an
equilibrium reservoir: even at $T_A = T_M$ detailed balance fails. The drift supplies
motional energy, so it acts like a hotter motion in eq. (21): for a blue-detuned gas
($\Delta > 0$, the motion pays for each de-excitation of the spin) the spin ends up colder
than the gas, for a red-detuned one ($\Delta < 0$) hotter.
"""),
    code(r"""
w = jnp.linspace(0.0, 3.0, 7 if FAST else 31)
fig, ax = plt.subplots(figsize=(5, 3.2))
for (name, prof), color in zip(shapes.items(), ("C0", "C1", "C2"), strict=True):
    for delta, style in ((0.5, "o-"), (-0.5, "s--")):
        T_spin = []
        for wi in np.asarray(w):
            gas = jaxcoll.SpinGas(2, omega_s=1.0, delta=delta, T_a=1.0, T_m=1.0,
                                  gamma_tilde=1.0, profile=prof, drift=float(wi))
            lgp, lgm = gas.log_rates()
            T_spin.append(1.0 / float(lgm - lgp))  # Gamma_+/Gamma_- = exp(-omega_s/T_spin)
        ax.plot(w, T_spin, style, ms=3, color=color, label=rf"{name}, $\Delta = {delta}$")
ax.set_xlabel(r"drift $w = m|u|R/\hbar$ (drift energy $w^2 E_R$)")
ax.set_ylabel(r"spin temperature $/E_R$ at $T_A = T_M = E_R$")
ax.legend(fontsize=7)
plt.show()
"""),
    md(r"""
## Your own profile

Give the radial shape (numerical radial Fourier transform) or the transform itself. Here a
smooth bump $g = (1 - r^2)^2$ for $r < 1$, whose transform is checked against SciPy, and the
rates of the Yukawa potential $e^{-r}/r$ through `FourierProfile`.
"""),
    code(r"""
from scipy.integrate import quad

bump = jaxcoll.RadialProfile(lambda r: (1 - r * r) ** 2, r_max=1.0, n=64, name="bump")
for kk in (0.0, 2.0, 7.0):
    ref = 4 * np.pi * quad(lambda r: r * r * (1 - r * r) ** 2 * np.sinc(kk * r / np.pi), 0, 1)[0]
    print(f"G({kk}) = {float(bump.fourier(kk)):.12f}   SciPy {ref:.12f}")
yukawa = jaxcoll.FourierProfile(lambda k: 4 * jnp.pi / (1 + k * k), name="Yukawa")
print("I_g(1, 2) bump:", float(jaxcoll.profile_integral(bump, 1.0, 2.0)),
      " Yukawa:", float(jaxcoll.profile_integral(yukawa, 1.0, 2.0)),
      " built-in Yukawa:", float(jaxcoll.profile_integral(jaxcoll.Yukawa(), 1.0, 2.0)))
"""),
]


# --- 08 -----------------------------------------------------------------------------------------

NB08 = [
    md(r"""
# 8. Heat statistics and fluctuation theorems

Every jump of the master equation is **one collision**. A jump of channel $c$ changes the system
energy by $E_c$, the ancilla sector's by $\Delta E_{A,c} = \epsilon_k - \epsilon_l$ and the
motional sector's by $\Delta E_{M,c} = -(E_c + \Delta E_{A,c})$ (eq. 14). The heats $Q_A$, $Q_M$
gained by the two sectors of the gas are sums over collisions: random variables whose mean is
what `energy_budget` gives, and whose fluctuations this notebook computes.

- **Tilted generator.** Multiply every jump term of channel $c$ by
  $e^{\lambda_A\Delta E_{A,c} + \lambda_M\Delta E_{M,c}}$; the trace of the tilted evolution is
  the moment generating function $E[e^{\lambda_AQ_A + \lambda_MQ_M}]$, its $\lambda$-derivatives
  at 0 the moments (`heat_statistics`).
- **SCGF.** $\theta(\lambda_A, \lambda_M) = \lim_t t^{-1}\ln E[e^{\lambda\cdot Q}]$ is the
  dominant eigenvalue of the tilted generator (`scgf`); its gradient and Hessian at 0 are the
  steady currents and the diffusion matrix (`steady_heat_statistics`).
- **Gallavotti-Cohen.** Micro-reversibility (eq. 9) gives every channel detailed balance with
  *two* temperatures, $r_c/r_{\bar c} = e^{\Delta E_A/T_A + \Delta E_M/T_M}$, and hence
  $\theta(\lambda_A, \lambda_M) = \theta(-1/T_A - \lambda_A, -1/T_M - \lambda_M)$.
- **Trajectories** (`collision_trajectories`) sample the collisions exactly; along them the
  entropy production $\Sigma$ obeys the integral fluctuation theorem $\langle e^{-\Sigma}\rangle
  = 1$ (`entropy_production`).

Example: a qubit ($h_S = \mathrm{diag}(0, 1)$) in a gas of two-level particles
($h_A = \mathrm{diag}(0, 1.6)$) with $v = \sigma_x\otimes\sigma_x$, $T_A = 3$, $T_M = 1$
(units of $E_R$): its steady state carries a heat current from the hot ancillas to the cold
motion.
"""),
    code(SETUP),
    code(r"""
from jaxcoll import CollisionalModel

sx = np.array([[0.0, 1.0], [1.0, 0.0]])
T_a, T_m = 3.0, 1.0
qubit = CollisionalModel(np.diag([0.0, 1.0]), np.diag([0.0, 1.6]), np.kron(sx, sx),
                         T_a=T_a, T_m=T_m, gamma_tilde=1.0)
ch = qubit.channels()
print("per collision:  dE_S  dE_A  dE_M")
for e, a, m in zip(np.asarray(ch.bohr), np.asarray(ch.ancilla), np.asarray(ch.motion),
                   strict=True):
    print(f"              {e:5.2f} {a:5.2f} {m:5.2f}")
N_TRAJ = 5_000 if FAST else 100_000
"""),
    md(r"""
## Cumulants at finite times, against trajectories

From the ground state: the exact mean and covariance of $(Q_A, Q_M)$ from the tilted generator,
and the same from collision-resolved trajectories (sample mean and variance with their standard
errors). `error_control="all"` (the default) controls the solver's steps on the moments as
well as on the state (needed when the state itself hardly changes, e.g. from the stationary state).
"""),
    code(r"""
ts = np.linspace(0.0, 20.0, 11)
p0 = np.array([1.0, 0.0])
hs = jaxcoll.heat_statistics(qubit, p0, ts, error_control="all")
tr = jaxcoll.collision_trajectories(qubit, p0, ts, n_traj=N_TRAJ, key=jax.random.key(0))
Q = tr.Q  # (n_traj, n_t, 2): (Q_A, Q_M)
mean, var = np.asarray(hs.mean), np.diagonal(np.asarray(hs.covariance), axis1=1, axis2=2)
z_mean = np.abs(Q.mean(0) - mean)[1:] / (Q.std(0)[1:] / np.sqrt(N_TRAJ))
print("max |sample mean - exact| / SE:", z_mean.max())
print("t = 20: <Q_A> =", mean[-1, 0], " Var Q_A =", var[-1, 0], " sample:", Q[:, -1, 0].var())
first_law = np.abs(tr.energy - tr.energy[:, :1] + Q.sum(-1)).max()
print("first law on every trajectory: max |dE_S + Q_A + Q_M| =", first_law)
assert z_mean.max() < 5
"""),
    md(r"""
## SCGF, currents and the Gallavotti-Cohen symmetry

Since $Q_A + Q_M = -\Delta E_S$ stays bounded, $\theta$ depends only on $\lambda_A - \lambda_M$,
$J_A = -J_M$ and the diffusion matrix has rank 1. The symmetry then says that
$\theta(\lambda, 0)$ is mirror symmetric about $\lambda^* = (1/T_M - 1/T_A)/2$.
"""),
    code(r"""
lam = np.linspace(-0.6, 1.3, 77)
theta = np.asarray(jaxcoll.scgf(qubit, lam, 0.0))
steady = jaxcoll.steady_heat_statistics(qubit)
grad = jax.grad(lambda la: jaxcoll.scgf(qubit, la, 0.0))(0.0)
curv = jax.grad(jax.grad(lambda la: jaxcoll.scgf(qubit, la, 0.0)))(0.0)
print("J_A =", np.asarray(steady.currents)[0], " d theta/d lambda_A(0) =", float(grad))
print("D_AA =", np.asarray(steady.diffusion)[0, 0], " d2 theta(0) =", float(curv))
print("diffusion matrix:", np.asarray(steady.diffusion).round(6).tolist())
res = np.asarray(jaxcoll.gallavotti_cohen_residual(qubit, lam, 0.0))
print("Gallavotti-Cohen residual, max over the line:", np.abs(res).max())

lam_star = 0.5 * (1 / T_m - 1 / T_a)
fig, ax = plt.subplots(figsize=(4.5, 3))
ax.plot(lam, theta)
ax.axvline(lam_star, color="0.5", ls=":", label=r"$\lambda^* = (1/T_M - 1/T_A)/2$")
ax.axhline(0.0, color="0.7", lw=0.6)
ax.set_xlabel(r"$\lambda_A$ ($\lambda_M = 0$)")
ax.set_ylabel(r"$\theta(\lambda_A, 0)\ /\ \tilde\Gamma$")
ax.legend()
plt.show()
"""),
    md(r"""
### Where micro-reversibility fails

The symmetry rests on eq. (9). It holds to round-off for real (time-reversal symmetric)
couplings, without forward shift ($h_{\rm eff} = 0$, `gamma_tilde` only) and for
non-degenerate spectra. A complex coupling with $h_{\rm eff} \neq 0$ (`density` and `coupling`
given) on a degenerate spectrum breaks it; `gallavotti_cohen_residual` measures by how much.
"""),
    code(r"""
rng = np.random.default_rng(42)
levels = np.sort(rng.integers(0, 3, size=4)) * 0.7  # repeated levels
U, _ = np.linalg.qr(rng.normal(size=(4, 4)))
h_s = U @ np.diag(levels) @ U.T
h_a = np.diag(np.sort(rng.uniform(0, 2, size=2)))
v = rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8))
v = v + v.conj().T
la, lm = np.array([0.3, -0.6]), np.array([-0.4, 0.5])
for label, kw in (("with h_eff (density, coupling)", dict(density=0.05, coupling=0.9)),
                  ("h_eff = 0 (gamma_tilde only)", dict(gamma_tilde=0.7))):
    m = CollisionalModel(h_s, h_a, v, T_a=1.7, T_m=0.6, **kw)
    r = np.asarray(jaxcoll.gallavotti_cohen_residual(m, la, lm))
    print(f"levels {levels}, complex v, {label}: residual {np.abs(r).max():.2e}")
"""),
    md(r"""
## The integral fluctuation theorem along trajectories

$\Sigma(t) = \ln p_{t_0}(i_{t_0}) - \ln p_t(i_t) + Q_A/T_A + Q_M/T_M$: the stochastic system
entropy change plus the entropy the two sectors gain as heat baths. From a start with every
population $> 0$, $\langle e^{-\Sigma}\rangle = 1$ at every time, and so $\langle\Sigma\rangle
\ge 0$. For the spin of eq. (17) every collision exchanges energy in the fixed ratio
$\omega_S : -\omega_A : \Delta$: *tight coupling*, $Q_A = -(\omega_A/\omega_S)\Delta E_S$ on
every trajectory.
"""),
    code(r"""
p_start = np.array([0.7, 0.3])
ts = np.array([0.0, 1.0, 5.0, 20.0])
tr = jaxcoll.collision_trajectories(qubit, p_start, ts, n_traj=N_TRAJ, key=jax.random.key(1))
sigma = jaxcoll.entropy_production(qubit, tr)
x = np.exp(-sigma)
for k, t in enumerate(ts):
    se = x[:, k].std() / np.sqrt(N_TRAJ)
    print(f"t = {t:4g}: <exp(-Sigma)> = {x[:, k].mean():.4f} +- {se:.4f},"
          f"  <Sigma> = {sigma[:, k].mean():.4f}")
assert np.all(np.abs(x.mean(0) - 1.0) <= 4 * x.std(0) / np.sqrt(N_TRAJ) + 1e-12)

spin = jaxcoll.SpinGas(5, omega_s=1.0, delta=2.0, T_a=6.0, T_m=1.0, gamma_tilde=1.0)
ts_spin = np.linspace(0.0, 5.0, 6)
trs = jaxcoll.collision_trajectories(spin, np.eye(spin.dim)[0], ts_spin, n_traj=N_TRAJ,
                                     key=jax.random.key(2))
dE = trs.energy - trs.energy[:, :1]
print("spin, tight coupling: max |Q_A + 3 dE_S| =", np.abs(trs.Q[..., 0] + 3.0 * dE).max())
"""),
    md(r"""
## Waiting times from the jump records

`record_jumps=n` keeps the time and channel of the first $n$ collisions of every trajectory.
In the stationary state the collisions form a stationary point process: the mean time from
one collision to the next is one over the activity, the steady current of the counter that
adds one per collision (`steady_counting_statistics` with weights all ones).
"""),
    code(r"""
p_ss = np.asarray(jaxcoll.steady_state(qubit, populations=True))
n_rec = 200
tr = jaxcoll.collision_trajectories(qubit, p_ss, np.array([0.0, 200.0]), n_traj=N_TRAJ // 5,
                                    key=jax.random.key(3), record_jumps=n_rec)
# intervals that start before t = 100 (all end before t = 200): dropping those cut off at the
# end of the run would bias the sample towards short waits
starts, waits = tr.jump_times[:, :-1], np.diff(tr.jump_times, axis=1)
waits = waits[np.isfinite(waits) & (starts < 100.0)]
ones = np.ones((1, qubit.channels().n_channels))
activity = float(np.asarray(jaxcoll.steady_counting_statistics(qubit, ones).currents)[0])
print(f"mean waiting time {waits.mean():.4f} +- {waits.std() / np.sqrt(waits.size):.4f},"
      f"  1/activity = {1 / activity:.4f}")
assert abs(waits.mean() - 1 / activity) < 4 * waits.std() / np.sqrt(waits.size)
fig, ax = plt.subplots(figsize=(4.5, 3))
ax.hist(waits, bins=60, density=True, histtype="step")
ax.set_yscale("log")
ax.set_xlabel(r"time between collisions $\tilde\Gamma\tau$")
ax.set_ylabel("density")
plt.show()
"""),
]


NOTEBOOKS = {
    "01_scattering_integral_and_rates.ipynb": NB01,
    "02_thermalisation.ipynb": NB02,
    "03_ergotropy_fig2.ipynb": NB03,
    "04_gradients_and_optimisation.ipynb": NB04,
    "05_large_J_and_gpu_scans.ipynb": NB05,
    "06_your_own_system.ipynb": NB06,
    "07_interaction_shapes.ipynb": NB07,
    "08_heat_statistics.ipynb": NB08,
}


def build(name, cells):
    nb = new_notebook(cells=cells)
    for i, cell in enumerate(nb.cells):
        cell.id = f"nb{name[:2]}-cell{i:02d}"  # stable ids: regenerating changes only what changed
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main():
    NB_DIR.mkdir(exist_ok=True)
    paths = []
    for name, cells in NOTEBOOKS.items():
        nb = build(name, cells)
        nbformat.validate(nb)
        nbformat.write(nb, NB_DIR / name)
        paths.append(str(NB_DIR / name))
        print("wrote", NB_DIR / name)
    # keep the stored notebooks in the project's code style (ruff covers *.ipynb)
    try:
        subprocess.run([sys.executable, "-m", "ruff", "format", "-q", *paths], check=True)
    except (OSError, subprocess.CalledProcessError):
        print("ruff is not available: notebooks written unformatted")


if __name__ == "__main__":
    main()
