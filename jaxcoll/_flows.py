r"""Energy flows of the structured reservoir along a trajectory: system, ancillas, motion.

Every collision conserves the total energy of system, ancilla and motion (eq. 14): a jump in
channel $c$ (system Bohr frequency $\mathcal E_c$, ancilla change $\Delta\epsilon_c$) changes
them by $\mathcal E_c$, $\Delta\epsilon_c$ and $-(\mathcal E_c + \Delta\epsilon_c)$. With
$N_c(t)$ the mean number of jumps in channel $c$ up to time $t$,

$$\Delta E_S(t) = \sum_c \mathcal E_c N_c(t), \qquad Q_A(t) = \sum_c \Delta\epsilon_c N_c(t),
  \qquad Q_M(t) = -\sum_c (\mathcal E_c + \Delta\epsilon_c) N_c(t),$$

so $\Delta E_S + Q_A + Q_M = 0$ at every time (first law). $Q_A$ and $Q_M$ are the energies
taken up by the internal and by the motional sector of the gas; the heat into the system is
$Q = -Q_A - Q_M = \Delta E_S$ (eq. 15). The paper's point is that the two sectors are parts of
one reservoir: a collision moves energy between them directly, $\Delta\epsilon_c$ leaves the
ancilla while only $\mathcal E_c$ enters the system.

**Cumulative flows without quadrature.** $N_c(t)$ is the time integral of the jump rate
$\nu_c = \mathrm{tr}(L_c^\dagger L_c\,\rho)$, so $Q_X(t) = \int_{t_0}^t \mathrm{tr}(O_X\rho)\,dt'$
with $O_X = \sum_c x_c L_c^\dagger L_c$. If $\Phi_X$ solves the Poisson equation
$\mathcal L^\dagger\Phi_X = O_X - J_X$, where $J_X = \mathrm{tr}(O_X\rho_\infty)$ is the
steady-state current, then $\frac{d}{dt}\mathrm{tr}(\Phi_X\rho) = \mathrm{tr}(O_X\rho) - J_X$ and

$$Q_X(t) = J_X\,(t - t_0) + \mathrm{tr}\big(\Phi_X[\rho(t) - \rho(t_0)]\big)$$

exactly, from the states at the two times only (no time grid enters). For the system
$\Phi_S = h_S$ and $J_S = 0$, i.e. $\Delta E_S = \mathrm{tr}(h_S\Delta\rho)$.

**The spin model is tightly coupled.** Its two channels, $J_+$ with an ancilla de-excitation
and $J_-$ with an excitation, both exchange energy in the ratio
$\mathcal E : \Delta\epsilon : \Delta E_M = \omega_S : -\omega_A : \Delta$. Hence, for any
initial state, $Q_A = -\omega_A\,\Delta\langle J_z\rangle$,
$Q_M = \Delta\,\Delta\langle J_z\rangle$, and every steady-state current vanishes, also for
$T_A \ne T_M$: the stationary state is Gibbs at the effective temperature (21) with detailed
balance on every link. The charging efficiency
from the ground state is then bounded by $\mathcal W/(-Q_A) \le \omega_S/\omega_A$ (a
maser-like bound), and eq. (22) reads $\omega_S/\omega_A < 1 - T_M/T_A$: inversion needs this
bound below the Carnot efficiency of the two sectors. Models with several energy ratios (e.g.
counter-rotating or ancilla-flip terms in $v$) carry a steady heat current from the hotter to
the colder sector *through* the system, while its energy stays constant.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from . import _config  # noqa: F401
from ._model import CollisionalModel
from ._observables import ergotropy, ergotropy_populations
from ._spin import SpinGas

__all__ = ["EnergyBudget", "energy_budget"]


class EnergyBudget(eqx.Module):
    r"""Time-resolved energy flows of system, ancilla sector and motional sector.

    Every field has shape `(n_t,)` (the save times), except `steady_rates`. Signs: positive
    means energy *into* that part; cumulative values count from `ts[0]`.

    **Fields:**
    - `ts`: the times.
    - `system_rate`, `ancilla_rate`, `motion_rate`: $\dot E_S$ (the heat current, eq. 15),
      $\dot E_A$, $\dot E_M$; they add up to zero.
    - `system`, `ancilla`, `motion`: $\Delta E_S(t)$, $Q_A(t)$, $Q_M(t)$; they add up to zero.
    - `ergotropy`: $\mathcal W(t)$.
    - `drawn`: $-Q_A(t)$, the energy drawn from the ancillas.
    - `charging_efficiency`: $\eta(t) = [\mathcal W(t) - \mathcal W(t_0)]/(-Q_A(t))$ where the
      ancillas have given energy ($-Q_A$ above a rounding floor), else 0.
    - `steady_rates`: $(\dot E_S, \dot E_A, \dot E_M)$ in the stationary state.
    """

    ts: Float[Array, " n_t"]
    system_rate: Float[Array, " n_t"]
    ancilla_rate: Float[Array, " n_t"]
    motion_rate: Float[Array, " n_t"]
    system: Float[Array, " n_t"]
    ancilla: Float[Array, " n_t"]
    motion: Float[Array, " n_t"]
    ergotropy: Float[Array, " n_t"]
    drawn: Float[Array, " n_t"]
    charging_efficiency: Float[Array, " n_t"]
    steady_rates: Float[Array, " 3"]

    def first_law_residual(self):
        r"""$\Delta E_S + Q_A + Q_M$ at each time (zero up to rounding)."""
        return self.system + self.ancilla + self.motion


def _efficiency(dW, drawn, scale):
    """$\\Delta W / \\text{drawn}$ where drawn exceeds a rounding floor, else 0 (no NaN)."""
    floor = 1e-12 * scale
    ok = drawn > floor
    safe = jnp.where(ok, drawn, jnp.ones_like(drawn))
    return jnp.where(ok, dW / safe, jnp.zeros_like(dW))


@eqx.filter_jit
def _spin_budget(model: SpinGas, p, ts):
    """Spin: all flows from $\\langle J_z\\rangle$ (tight coupling)."""
    m = model.m
    c2 = model.ladder() ** 2
    z = jnp.zeros(1)
    gp, gm = model.rates()
    drift = gp * jnp.concatenate([c2, z]) - gm * jnp.concatenate([z, c2])  # d<Jz>/dt per level
    jz = p @ m
    djz = jz - jz[0]
    jz_rate = p @ drift
    w_s, w_a, d = model.omega_s, model.omega_a, model.delta
    ss_rate = model.steady_state_populations() @ drift
    return (
        (w_s * jz_rate, -w_a * jz_rate, d * jz_rate),
        (w_s * djz, -w_a * djz, d * djz),
        jnp.stack([w_s * ss_rate, -w_a * ss_rate, d * ss_rate]),
        jnp.zeros(()),
    )


def _weights(model: CollisionalModel):
    """$(x_c)$ for system, ancilla, motion."""
    return (model.channel_bohr, model.channel_ancilla, model.channel_motional())


@eqx.filter_jit
def _general_population_budget(model: CollisionalModel, p, ts):
    U = model.eigenbasis
    L = model.channel_operators()
    Le = jnp.einsum("ji,cjk,kl->cil", U.conj(), L, U)  # eigenbasis
    nu = jnp.sum(jnp.abs(Le) ** 2, axis=1)  # nu[c, j]: jump rate of channel c from level j
    M = model.population_generator()
    d = model.dim
    # stationary populations: (M + 1 1^T / d) p = 1 / d
    one = jnp.ones(d)
    p_ss = jnp.linalg.solve(M + jnp.outer(one, one) / d, one / d)
    A = M.T + jnp.outer(one, p_ss)
    rates, cums, steady, resid = [], [], [], []
    t = ts - ts[0]
    for k, x in enumerate(_weights(model)):
        o = x @ nu  # o[j] = sum_c x_c nu_c(j)
        J = o @ p_ss
        rates.append(p @ o)
        steady.append(J)
        if k == 0:  # Phi_S = h_S: the system energy itself
            cums.append((p - p[0]) @ model.energies())
            continue
        b = o - J
        phi = jnp.linalg.solve(A, b)
        resid.append(jnp.max(jnp.abs(M.T @ phi - b)) / (jnp.max(jnp.abs(o)) + 1e-300))
        cums.append(J * t + (p - p[0]) @ phi)
    return tuple(rates), tuple(cums), jnp.stack(steady), jnp.max(jnp.stack(resid))


@eqx.filter_jit
def _general_density_budget(model: CollisionalModel, rho, ts):
    d = model.dim
    L = model.channel_operators()
    LdL = jnp.einsum("cji,cjk->cik", L.conj(), L)
    S = model.superoperator()
    rho_ss = model.steady_state()
    tvec = jnp.eye(d, dtype=S.dtype).reshape(-1)
    A = S.T + jnp.outer(tvec, rho_ss.reshape(-1))
    drho = (rho - rho[0]).reshape(rho.shape[0], d * d)
    t = ts - ts[0]
    rates, cums, steady, resid = [], [], [], []
    for k, x in enumerate(_weights(model)):
        O = jnp.einsum("c,cij->ij", x.astype(LdL.dtype), LdL)
        J = jnp.real(jnp.trace(O @ rho_ss))
        rates.append(jnp.real(jnp.einsum("ij,nji->n", O, rho)))
        steady.append(J)
        if k == 0:
            cums.append(jnp.real(jnp.einsum("ij,nji->n", model.h_s, rho - rho[0])))
            continue
        # tr(Phi rho) = vec(Phi^T) . vec(rho); L^dagger Phi = O - J  <=>  S^T vec(Phi^T) = b
        b = (O - J.astype(O.dtype) * jnp.eye(d, dtype=O.dtype)).T.reshape(-1)
        w = jnp.linalg.solve(A, b)
        resid.append(jnp.max(jnp.abs(S.T @ w - b)) / (jnp.max(jnp.abs(O)) + 1e-300))
        cums.append(J * t + jnp.real(drho @ w))
    return tuple(rates), tuple(cums), jnp.stack(steady), jnp.max(jnp.stack(resid))


def _states_of(result_or_states, ts):
    if hasattr(result_or_states, "ts") and ts is None:
        res = result_or_states
        states = res.states if res.states is not None else res.populations
        if states is None:
            raise ValueError(
                "result holds no states (evolve(..., observables_only=True)?); energy_budget "
                "needs the populations or density matrices at the save times"
            )
        return states, res.ts, getattr(res, "ergotropy", None)
    if ts is None:
        raise ValueError("ts must be given with an array of states (or pass an evolve result)")
    return result_or_states, ts, None


def energy_budget(model, result_or_states, ts=None, *, ergotropy_values=None) -> EnergyBudget:
    r"""Time-resolved energy flows into system, ancilla sector and motional sector.

    For a trajectory $\rho(t_i)$ of `model` returns the rates $\dot E_S$, $\dot E_A$,
    $\dot E_M$ at every time and the cumulative $\Delta E_S(t)$, $Q_A(t)$, $Q_M(t)$ from
    `ts[0]`, computed exactly from the states (see the module docstring: a Poisson equation of
    the generator, no quadrature), together with the charging efficiency
    $\eta(t) = [\mathcal W(t) - \mathcal W(t_0)]/(-Q_A(t))$: ergotropy gained per energy
    drawn from the ancillas.

    **Arguments:**
    - `model`: a `SpinGas` or `CollisionalModel`.
    - `result_or_states`: what `evolve(model, rho0, ts)` returned (with its states or
      populations stored), or an array of populations `(n_t, d)` (energy eigenbasis, as
      `evolve` returns them) or density matrices `(n_t, d, d)` (basis of `h_s`).
    - `ts`: the times, when an array of states is given.
    - `ergotropy_values`: $\mathcal W(t_i)$ if known; else taken from the result or computed.

    **Returns:** an `EnergyBudget`.

    **Raises:** `ValueError` for inconsistent shapes, or when the stationary state is not
    unique (then the Poisson equation has no unique solution).
    """
    states, ts, W = _states_of(result_or_states, ts)
    if ergotropy_values is not None:
        W = ergotropy_values
    states = jnp.asarray(states)
    ts = jnp.asarray(ts, dtype=jnp.result_type(float))
    if not isinstance(model, SpinGas | CollisionalModel):
        raise TypeError(f"model must be a SpinGas or CollisionalModel, got {type(model).__name__}")
    d = model.dim
    n_t = ts.shape[0] if ts.ndim == 1 else -1
    if ts.ndim != 1 or n_t < 1:
        raise ValueError(f"ts must be a non-empty 1-D array, got shape {ts.shape}")
    if states.shape not in ((n_t, d), (n_t, d, d)):
        raise ValueError(
            f"states must have shape ({n_t}, {d}) (populations) or ({n_t}, {d}, {d}) (density "
            f"matrices) for {n_t} times and dimension {d}, got {states.shape}"
        )
    populations = states.ndim == 2
    if isinstance(model, SpinGas):
        p = jnp.real(states if populations else jnp.diagonal(states, axis1=-2, axis2=-1))
        rates, cums, steady, resid = _spin_budget(model, p.astype(ts.dtype), ts)
        energies = model.energies()
        width = jnp.abs(model.omega_s) * (d - 1) + jnp.abs(model.omega_a)
    else:
        if populations:
            rates, cums, steady, resid = _general_population_budget(model, states.real, ts)
        else:
            rates, cums, steady, resid = _general_density_budget(
                model, states.astype(model.h_s.dtype), ts
            )
        energies = model.energies()
        width = (energies[-1] - energies[0]) + (
            model.ancilla_energies[-1] - model.ancilla_energies[0]
        )
    if not isinstance(resid, jax.core.Tracer) and not float(resid) < 1e-6:
        raise ValueError(
            "energy_budget needs a unique stationary state: the Poisson equation of the "
            f"generator has relative residual {float(resid):.2g} (conserved quantities or "
            "decoupled blocks make the steady state non-unique)"
        )
    if W is None:
        if populations:
            W = ergotropy_populations(jnp.real(states), energies)
        else:
            h = jnp.diag(energies).astype(states.dtype) if isinstance(model, SpinGas) else None
            W = ergotropy(states, model.h_s if h is None else h)
    W = jnp.asarray(W, dtype=ts.dtype)
    if W.shape != (n_t,):
        raise ValueError(f"ergotropy_values must have shape ({n_t},), got {W.shape}")
    drawn = -cums[1]
    eta = _efficiency(W - W[0], drawn, width)
    return EnergyBudget(
        ts=ts,
        system_rate=rates[0],
        ancilla_rate=rates[1],
        motion_rate=rates[2],
        system=cums[0],
        ancilla=cums[1],
        motion=cums[2],
        ergotropy=W,
        drawn=drawn,
        charging_efficiency=eta,
        steady_rates=jnp.asarray(steady, dtype=ts.dtype),
    )
