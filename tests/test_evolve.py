"""`evolve` and `ergotropy_curve` against references nobody here wrote.

References: `scipy.linalg.expm` of generators written out in this file from the rates,
QuTiP's `mesolve` (which lists the spin basis from m = +J; reversed here), eq. (21) for the
stationary temperature, NumPy eigenvalues for ergotropy and entropy, central differences for
gradients.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import qutip
import scipy.linalg as sla
from _references import birth_death_generator, ergotropy_ref, fig2_rates_ref

from jaxcoll._evolve import EvolveError, _solve_traced, ergotropy_curve, evolve
from jaxcoll._model import CollisionalModel
from jaxcoll._rates import spin_rates
from jaxcoll._spin import SpinGas

J = 2
D = 5
NT = 7


def inverting(**kw):
    """Negative effective temperature: T = omega_s T_a T_m / (omega_a T_m - delta T_a) = -1."""
    p = dict(omega_s=1.0, delta=2.0, T_a=1.0, T_m=0.5, gamma_tilde=50.0) | kw
    return SpinGas(J, **p)


def equilibrium(delta=0.5, T=0.8):
    return SpinGas(J, omega_s=1.0, delta=delta, T_a=T, T_m=T, gamma_tilde=20.0)


def times(model, span=3.0):
    gp, gm = (float(r) for r in model.rates())
    return np.linspace(0.0, span / (gp + gm), NT)


# --- references written out here --------------------------------------------------------------


def ladder(j):
    m = np.arange(2 * j + 1) - j
    return np.sqrt((j - m[:-1]) * (j + m[:-1] + 1))  # <m+1|J+|m>


def spin_operators(j):
    """Jz, J+, J- in ascending order (index 0 is m = -J)."""
    m = np.arange(2 * j + 1) - j
    jp = np.diag(ladder(j), -1)
    return np.diag(m), jp, jp.T


def rate_matrix(j, gp, gm):
    """Dense birth-death generator of eq. (11) for eq. (18): up with gp c^2, down with gm c^2."""
    c2 = ladder(j) ** 2
    G = np.diag(gp * c2, -1) + np.diag(gm * c2, 1)
    return G - np.diag(G.sum(axis=0))


def lindblad(rho, H, jumps):
    out = -1j * (H @ rho - rho @ H)
    for L in jumps:
        LdL = L.conj().T @ L
        out = out + L @ rho @ L.conj().T - 0.5 * (LdL @ rho + rho @ LdL)
    return out


def qutip_states(model, rho0, ts):
    """Eq. (18) by QuTiP in its own basis (m = +J first), returned in ascending order."""
    gp, gm = (float(r) for r in model.rates())
    H = float(model.omega_s) * qutip.jmat(J, "z")
    c_ops = [np.sqrt(gp) * qutip.jmat(J, "+"), np.sqrt(gm) * qutip.jmat(J, "-")]
    rho_q = qutip.Qobj(np.asarray(rho0)[::-1, ::-1])
    res = qutip.mesolve(H, rho_q, ts, c_ops, options={"atol": 1e-13, "rtol": 1e-11})
    return np.stack([s.full()[::-1, ::-1] for s in res.states])


def gibbs(energies, T):
    x = -np.asarray(energies) / T
    x -= x.max()
    p = np.exp(x)
    return p / p.sum()


def eq21(omega_s, delta, T_a, T_m):
    return omega_s * T_a * T_m / ((omega_s + delta) * T_m - delta * T_a)


def random_density(rng, d):
    X = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    rho = X @ X.conj().T
    return rho / np.trace(rho)


def initial_populations():
    rng = np.random.default_rng(0)
    m = np.arange(D) - J
    ground = np.eye(D)[0]
    thermal = gibbs(m, 1 / 0.7)
    # spin coherent state at theta = 1: binomial populations in m
    th = 1.0
    from math import comb

    coherent = np.array(
        [
            comb(2 * J, J + k) * np.cos(th / 2) ** (2 * (J + k)) * np.sin(th / 2) ** (2 * (J - k))
            for k in m
        ]
    )
    random = rng.random(D)
    return {
        "ground": ground,
        "thermal": thermal,
        "coherent": coherent / coherent.sum(),
        "random": random / random.sum(),
    }


def initial_states():
    rng = np.random.default_rng(1)
    pops = initial_populations()
    coherent = qutip.spin_coherent(J, 1.1, 0.4)  # QuTiP basis
    coherent = (coherent * coherent.dag()).full()[::-1, ::-1]
    return {
        "ground": np.diag(pops["ground"]).astype(complex),
        "thermal": np.diag(pops["thermal"]).astype(complex),
        "coherent": coherent,
        "random": random_density(rng, D),
    }


TIGHT = dict(rtol=1e-11, atol=1e-13)


# --- population sector --------------------------------------------------------------------------


@pytest.mark.parametrize("name, p0", list(initial_populations().items()))
def test_populations_against_expm(name, p0):
    model = inverting()
    ts = times(model)
    res = evolve(model, p0, ts, **TIGHT)
    gp, gm = (float(r) for r in model.rates())
    G = rate_matrix(J, gp, gm)
    ref = np.stack([sla.expm(G * t) @ p0 for t in ts])
    np.testing.assert_allclose(res.populations, ref, atol=1e-9)
    assert res.states is None
    eps = np.arange(D) - J
    np.testing.assert_allclose(res.energy, ref @ eps, atol=1e-9)
    np.testing.assert_allclose(res.heat_current, (ref @ G.T) @ eps, atol=1e-9)
    srt = -np.sort(-ref, axis=1)
    np.testing.assert_allclose(res.ergotropy, np.maximum(ref @ eps - srt @ eps, 0), atol=1e-9)
    xlogx = np.where(ref > 0, ref * np.log(np.where(ref > 0, ref, 1)), 0)
    np.testing.assert_allclose(res.entropy, -xlogx.sum(axis=1), atol=1e-8)


def test_population_methods_agree():
    """Long chain: cyclic reduction and the partitioned sweep give one answer."""
    model = SpinGas(60, omega_s=1.0, delta=2.0, T_a=1.0, T_m=0.5, gamma_tilde=1.0)
    p0 = np.eye(121)[0]
    ts = np.linspace(0.0, 0.5, NT)
    out = [evolve(model, p0, ts, tridiagonal=m).populations for m in ("cyclic", "partition")]
    np.testing.assert_allclose(out[1], out[0], atol=1e-12)
    gp, gm = (float(r) for r in model.rates())
    ref = sla.expm(rate_matrix(60, gp, gm) * 0.5) @ p0
    np.testing.assert_allclose(out[1][-1], ref, atol=1e-8)


# --- full dynamics ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, rho0", list(initial_states().items()))
def test_density_matrix_against_qutip(name, rho0):
    model = inverting()
    ts = times(model)
    res = evolve(model, rho0, ts, **TIGHT)
    ref = qutip_states(model, rho0, ts)
    np.testing.assert_allclose(res.states, ref, atol=1e-8)
    assert res.populations is None
    # observables against NumPy on the reference states
    H = float(model.omega_s) * spin_operators(J)[0]
    gp, gm = (float(r) for r in model.rates())
    _, jp, jm = spin_operators(J)
    jumps = [np.sqrt(gp) * jp, np.sqrt(gm) * jm]
    for k, rho in enumerate(ref):
        r = np.linalg.eigvalsh(rho)
        e = np.trace(rho @ H).real
        np.testing.assert_allclose(res.energy[k], e, atol=1e-8)
        np.testing.assert_allclose(
            res.ergotropy[k], max(e - np.sort(r)[::-1] @ np.diag(H), 0), atol=1e-8
        )
        rp = r[r > 1e-300]
        np.testing.assert_allclose(res.entropy[k], -(rp * np.log(rp)).sum(), atol=1e-6)
        heat = np.trace(H @ lindblad(rho, np.zeros_like(H), jumps)).real
        np.testing.assert_allclose(res.heat_current[k], heat, atol=1e-8)


def test_invariants_along_trajectory():
    model = inverting()
    rho0 = random_density(np.random.default_rng(7), D)
    res = evolve(model, rho0, times(model, 10.0))
    rho = np.asarray(res.states)
    np.testing.assert_allclose(np.trace(rho, axis1=1, axis2=2), 1.0, atol=1e-12)
    np.testing.assert_allclose(rho, np.conj(np.swapaxes(rho, 1, 2)), atol=1e-14)
    assert np.min(np.linalg.eigvalsh(rho)) > -1e-10
    # the Hamiltonian rotates the coherences: |rho_ij| decays but the phase turns
    assert np.abs(rho[1, 0, 1]) > 0


def test_diagonal_start_matches_population_sector():
    model = inverting()
    p0 = initial_populations()["coherent"]
    ts = times(model)
    full = evolve(model, np.diag(p0), ts)
    pops = evolve(model, p0, ts)
    np.testing.assert_allclose(
        np.diagonal(full.states, axis1=1, axis2=2).real, pops.populations, atol=1e-9
    )
    np.testing.assert_allclose(full.ergotropy, pops.ergotropy, atol=1e-9)  # general == eq. (23)
    np.testing.assert_allclose(full.entropy, pops.entropy, atol=1e-7)
    np.testing.assert_allclose(full.heat_current, pops.heat_current, atol=1e-9)


# --- stationary states ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        dict(omega_s=1.0, delta=2.0, T_a=1.0, T_m=0.5),  # T = -1
        dict(omega_s=1.0, delta=3.0, T_a=2.0, T_m=0.4),  # T < 0, strong inversion
        dict(omega_s=1.0, delta=0.5, T_a=1.0, T_m=0.9),  # T > 0
    ],
)
def test_steady_state_is_gibbs_at_eq21(params):
    model = SpinGas(J, gamma_tilde=50.0, **params)
    T = eq21(**params)
    ref = gibbs(np.arange(D) - J, T)
    rho0 = random_density(np.random.default_rng(3), D)
    res = evolve(model, rho0, times(model, 400.0))
    np.testing.assert_allclose(res.states[-1], np.diag(ref), atol=1e-8)
    pops = evolve(model, np.eye(D)[0], times(model, 400.0))
    np.testing.assert_allclose(pops.populations[-1], ref, atol=1e-8)
    assert (res.ergotropy[-1] > 1e-3) == (T < 0)


@pytest.mark.parametrize("delta", [-0.5, 0.0, 0.7, 3.0])
def test_equilibrium_gas_thermalises_at_its_temperature(delta):
    """T_a = T_m = T: Gibbs at T, whatever the detuning (zeroth law)."""
    model = equilibrium(delta=delta, T=0.8)
    res = evolve(model, np.eye(D)[-1], times(model, 400.0))
    np.testing.assert_allclose(res.populations[-1], gibbs(np.arange(D) - J, 0.8), atol=1e-8)
    assert res.ergotropy[-1] < 1e-8


# --- the general model ---------------------------------------------------------------------


def spin_collisional(T_a=1.0, T_m=0.5, delta=2.0, gamma_tilde=50.0):
    jz, jp, jm = spin_operators(J)
    sm = np.array([[0.0, 1.0], [0.0, 0.0]])
    v = np.kron(jp, sm) + np.kron(jm, sm.T)
    return CollisionalModel(
        jz, np.diag([0.0, 1.0 + delta]), v, T_a=T_a, T_m=T_m, gamma_tilde=gamma_tilde
    )


def test_collisional_model_against_expm_and_spin_model():
    model = spin_collisional()
    spin = inverting()
    ts = times(spin)
    rho0 = initial_states()["coherent"]
    res = evolve(model, rho0, ts, **TIGHT)
    S = np.asarray(model.superoperator())
    ref = np.stack([(sla.expm(S * t) @ rho0.reshape(-1)).reshape(D, D) for t in ts])
    np.testing.assert_allclose(res.states, ref, atol=1e-9)
    # eq. (17) through the general model is eq. (18)
    np.testing.assert_allclose(res.states, evolve(spin, rho0, ts, **TIGHT).states, atol=1e-9)
    H = spin_operators(J)[0]
    np.testing.assert_allclose(res.energy, np.einsum("tij,ji->t", ref, H).real, atol=1e-9)

    p0 = initial_populations()["random"]
    pops = evolve(model, p0, ts, **TIGHT)
    G = np.asarray(model.population_generator())
    ref_p = np.stack([sla.expm(G * t) @ p0 for t in ts])
    np.testing.assert_allclose(pops.populations, ref_p, atol=1e-9)
    np.testing.assert_allclose(pops.heat_current, (ref_p @ G.T) @ (np.arange(D) - J), atol=1e-9)


# --- options --------------------------------------------------------------------------------------


def test_observables_only():
    model = inverting()
    ts = times(model)
    rho0 = initial_states()["random"]
    full = evolve(model, rho0, ts)
    obs = evolve(model, rho0, ts, observables_only=True)
    assert obs.states is None and obs.populations is None
    for name in ("energy", "ergotropy", "entropy", "heat_current"):
        np.testing.assert_allclose(getattr(obs, name), getattr(full, name), atol=1e-12)


def test_float32():
    model = inverting()
    ts = times(model)
    p0 = initial_populations()["ground"]
    r32 = evolve(model, p0, ts, dtype=jnp.float32, rtol=1e-5, atol=1e-7)
    r64 = evolve(model, p0, ts)
    assert r32.populations.dtype == jnp.float32 and r32.energy.dtype == jnp.float32
    np.testing.assert_allclose(r32.populations, r64.populations, atol=1e-4)


def test_progress_meter(capsys):
    """The bar reaches 100 % on stderr, and showing it changes no number."""
    model = inverting()
    res = evolve(model, np.eye(D)[0], times(model), progress=True, observables_only=True)
    err = capsys.readouterr().err
    assert "100.00%" in err, err
    quiet = evolve(model, np.eye(D)[0], times(model), observables_only=True)
    assert "%" not in capsys.readouterr().err
    np.testing.assert_array_equal(res.energy, quiet.energy)
    np.testing.assert_array_equal(res.ergotropy, quiet.ergotropy)


def test_no_recompilation_for_new_parameters():
    ts = times(inverting())
    p0 = np.eye(D)[0]
    evolve(inverting(), p0, ts, observables_only=True)
    n = eqx.debug.get_num_traces(_solve_traced)
    for T_a in (0.9, 1.3, 2.0):
        evolve(
            inverting(T_a=T_a, gamma_tilde=40.0),
            p0,
            ts * 1.1,
            observables_only=True,
            rtol=1e-7,
            atol=1e-9,
        )
    assert eqx.debug.get_num_traces(_solve_traced) == n


# --- errors ---------------------------------------------------------------------------------------


def test_bad_rho0():
    model = inverting()
    ts = times(model)
    with pytest.raises(ValueError, match=r"rho0 must have shape \(5,\) or \(5, 5\), got \(4, 4\)"):
        evolve(model, np.eye(4) / 4, ts)
    with pytest.raises(ValueError, match="rho0.*sum to 1"):
        evolve(model, np.ones(D), ts)
    with pytest.raises(ValueError, match="rho0.*non-negative"):
        evolve(model, np.array([1.5, -0.5, 0, 0, 0]), ts)
    with pytest.raises(ValueError, match="rho0.*Hermitian"):
        evolve(model, np.triu(np.ones((D, D))) / D, ts)
    with pytest.raises(ValueError, match="rho0.*trace 1"):
        evolve(model, np.eye(D), ts)
    with pytest.raises(ValueError, match="rho0.*positive semidefinite"):
        evolve(model, np.diag([1.5, -0.5, 0, 0, 0]).astype(complex), ts)


def test_bad_ts():
    model = inverting()
    p0 = np.eye(D)[0]
    with pytest.raises(ValueError, match="ts must be strictly increasing"):
        evolve(model, p0, [0.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="ts must be strictly increasing"):
        evolve(model, p0, [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="ts must be a non-empty 1-D"):
        evolve(model, p0, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="ts must be finite"):
        evolve(model, p0, [0.0, np.nan])
    with pytest.raises(ValueError, match="rtol"):
        evolve(model, p0, [0.0, 1.0], rtol=-1.0)
    with pytest.raises(TypeError, match="model"):
        evolve("spin", p0, [0.0, 1.0])


def test_solver_failure_says_what_to_change():
    model = inverting()
    ts = times(model)
    p0 = np.eye(D)[0]
    with pytest.raises(EvolveError, match="raise max_steps, loosen rtol/atol"):
        evolve(model, p0, ts, max_steps=3, observables_only=True)
    # under jit the same failure is a run-time error with the same advice
    f = eqx.filter_jit(lambda m: evolve(m, p0, ts, max_steps=3, observables_only=True).energy)
    with pytest.raises(Exception, match="raise max_steps"):
        jax.block_until_ready(f(model))


# --- ergotropy_curve and gradients ---------------------------------------------------------

CURVE_TS = np.linspace(0.0, 40.0, NT)


def test_ergotropy_curve_is_the_spin_model_in_fig2_units():
    """W/omega_s with time in 1/Gamma~: SpinGas with omega_s = E_R = gamma_tilde = 1,
    T_m = 1/alpha, delta = D/alpha, T_a = omega_a/A."""
    Dp, Ap, alpha = 4.0, 1.0, 1.0
    model = SpinGas(
        3, omega_s=1.0, delta=Dp / alpha, T_a=(1 + Dp / alpha) / Ap, T_m=1 / alpha, gamma_tilde=1.0
    )
    w = ergotropy_curve(3, Dp, Ap, alpha, CURVE_TS)
    ref = evolve(model, np.eye(7)[0], CURVE_TS)
    np.testing.assert_allclose(w, ref.ergotropy, atol=1e-9)
    assert w[0] == 0 and w[-1] > 1.0


# CONTRACT.md: "`jaxcoll.ergotropy_curve(J, D, A, alpha, ts)` -> array W(t_i) (units of omega_s)
# for the spin starting in its ground state at t = 0 (whatever `ts[0]` is)".
CURVE_CASES = [
    (10, 4.0, 1.0, 1.0),  # the example of issue 11: W(10) = 11.03, not 9.70
    (3, 2.0, 0.5, 0.5),
    (2.5, 1.5, 0.5, 0.7),  # half-integer spin
    (4, 1.0, 0.2, 3.0),
]
LATE_TS = np.array([0.5, 3.0, 10.0, 40.0])  # ts[0] > 0 and not evenly spaced


def curve_ref(j, D_, A_, alpha, ts):
    """W(t_i) / omega_s: SciPy expm of the eq. (11) generator from the ground state at t = 0."""
    L = birth_death_generator(j, *fig2_rates_ref(D_, A_, alpha))
    d = L.shape[0]
    m = np.arange(d) - j
    return np.array([ergotropy_ref(sla.expm(L * t)[:, 0], m) for t in ts])


@pytest.mark.parametrize("case", CURVE_CASES)
def test_ergotropy_curve_counts_time_from_zero(case):
    j = case[0]
    scale = 2 * j * 1e-9  # 1e-9 of the largest possible ergotropy 2J omega_s
    ref = curve_ref(*case, LATE_TS)
    np.testing.assert_allclose(ergotropy_curve(*case, LATE_TS, **TIGHT), ref, rtol=0, atol=scale)
    # the same times after t = 0, and a single time
    w0 = ergotropy_curve(*case, np.r_[0.0, LATE_TS], **TIGHT)
    np.testing.assert_allclose(w0, np.r_[0.0, ref], rtol=0, atol=scale)
    np.testing.assert_allclose(
        ergotropy_curve(*case, LATE_TS[2:3], **TIGHT), ref[2:3], rtol=0, atol=scale
    )


def test_ergotropy_curve_issue_example():
    w = ergotropy_curve(10, 4, 1, 1, [0.5, 3, 10, 40])  # Python ints, default tolerances
    assert abs(float(w[2]) - 11.03) < 0.01
    np.testing.assert_allclose(w, curve_ref(10, 4.0, 1.0, 1.0, LATE_TS), rtol=0, atol=1e-6)


def test_ergotropy_curve_gradient_at_late_times():
    """d/d(D, A, alpha) of sum_i W(t_i), ts[0] > 0, against central differences of the SciPy
    reference (time from t = 0)."""
    ts = LATE_TS[1:]  # W > 0 at all three
    x = np.array([2.0, 0.5, 0.5])
    g = jax.jit(jax.grad(lambda x: ergotropy_curve(3, *x, ts, **TIGHT).sum()))(jnp.asarray(x))
    for i in range(3):
        h = 1e-5
        up, dn = x.copy(), x.copy()
        up[i] += h
        dn[i] -= h
        fd = (curve_ref(3, *up, ts).sum() - curve_ref(3, *dn, ts).sum()) / (2 * h)
        np.testing.assert_allclose(g[i], fd, rtol=1e-6)


def test_ergotropy_curve_rejects_negative_times():
    with pytest.raises(ValueError, match="ts must be >= 0"):
        ergotropy_curve(3, 4.0, 1.0, 1.0, [-1.0, 2.0])
    with pytest.raises(ValueError, match="ts must be strictly increasing"):
        ergotropy_curve(3, 4.0, 1.0, 1.0, [2.0, 1.0])
    f = eqx.filter_jit(lambda ts: ergotropy_curve(3, 4.0, 1.0, 1.0, ts))
    np.testing.assert_allclose(
        f(jnp.asarray(LATE_TS)), curve_ref(3, 4.0, 1.0, 1.0, LATE_TS), atol=1e-7
    )
    with pytest.raises(Exception, match="ts must be >= 0"):
        jax.block_until_ready(f(jnp.asarray([-1.0, 2.0])))


def test_ergotropy_curve_gradient_and_vmap():
    f = lambda D_, A_, al: ergotropy_curve(3, D_, A_, al, CURVE_TS)[3:].sum()
    x = (4.0, 1.0, 1.0)
    g = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(*x)
    fj = jax.jit(f)
    for i in range(3):
        h = 1e-5
        xp = list(x)
        xm = list(x)
        xp[i] += h
        xm[i] -= h
        fd = (fj(*xp) - fj(*xm)) / (2 * h)
        np.testing.assert_allclose(g[i], fd, rtol=1e-5)
    Ds = jnp.array([3.0, 4.0, 5.0])
    batched = jax.vmap(lambda D_: ergotropy_curve(3, D_, 1.0, 1.0, CURVE_TS))(Ds)
    for k, D_ in enumerate(Ds):
        np.testing.assert_allclose(
            batched[k], ergotropy_curve(3, float(D_), 1.0, 1.0, CURVE_TS), atol=1e-10
        )


def test_evolve_gradient_in_model_parameters():
    ts = times(inverting())
    p0 = initial_populations()["thermal"]

    def energy_at_end(T_a):
        return evolve(inverting(T_a=T_a), p0, ts, observables_only=True).energy[-1]

    g = jax.grad(energy_at_end)(1.0)
    h = 1e-5
    fd = (energy_at_end(1.0 + h) - energy_at_end(1.0 - h)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5)


def test_spin_rates_units():
    gp, gm = spin_rates(4.0, 1.0, 1.0)
    assert gp > gm  # D > A inverts: the curve of Fig. 2 builds up ergotropy


def test_selected_observables():
    model = inverting()
    ts = times(model)
    rho0 = initial_states()["random"]
    full = evolve(model, rho0, ts)
    some = evolve(model, rho0, ts, observables=("energy", "heat_current"))
    assert some.ergotropy is None and some.entropy is None
    np.testing.assert_allclose(some.energy, full.energy, atol=1e-12)
    np.testing.assert_allclose(some.states, full.states, atol=1e-12)
    with pytest.raises(ValueError, match="observables must be among"):
        evolve(model, rho0, ts, observables=("purity",))


def test_passive_states_have_exactly_zero_ergotropy():
    """Eq. (23) as one sum of differences: zero to the last bit for a Gibbs state at T >= 0,
    also on the NumPy-sorted path of long ladders, whether the levels come sorted (as in
    `evolve`) or shuffled (`ergotropy_populations` sorts them)."""
    from jaxcoll import ergotropy_populations
    from jaxcoll._observables import _ergotropy_ascending

    for d in (5, 2001):
        e = np.arange(d) - (d - 1) / 2
        p = gibbs(e, 37.0)
        perm = np.random.default_rng(d + 1).permutation(d)
        assert float(_ergotropy_ascending(jnp.asarray(p), jnp.asarray(e))) == 0.0
        assert float(ergotropy_populations(jnp.asarray(p[perm]), jnp.asarray(e[perm]))) == 0.0
        q = np.random.default_rng(d).random(d)
        q /= q.sum()
        ref = e @ q - np.sort(q)[::-1] @ e
        np.testing.assert_allclose(
            _ergotropy_ascending(jnp.asarray(q), jnp.asarray(e)), ref, rtol=1e-12
        )
        np.testing.assert_allclose(
            ergotropy_populations(jnp.asarray(q[perm]), jnp.asarray(e[perm])), ref, rtol=1e-12
        )


# --- expectation values (e_ops) and the folded band layout --------------------------------------


@pytest.mark.parametrize("j", [0.5, 1.5, 2, 3.5])
def test_e_ops_against_qutip_expect(j):
    """<J_z>, <J_+>, <J_x^2> and a random operator along a spin-coherent start, odd and even
    d (the middle band of even d sits alone in its chain), against QuTiP's own e_ops."""
    gas = SpinGas(j, omega_s=1.3, delta=2.0, T_a=1.0, T_m=0.5, gamma_tilde=5.0)
    d = gas.dim
    rng = np.random.default_rng(int(2 * j))
    A = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    jz, jp, jm = spin_operators(j)
    jx2 = (0.5 * (jp + jm)) @ (0.5 * (jp + jm))
    psi = qutip.spin_coherent(j, 1.1, 0.4)
    rho_q = psi * psi.dag()
    rho0 = rho_q.full()[::-1, ::-1]
    ts = times(gas)
    ops = [jz, jp, jx2, A]
    res = evolve(gas, rho0, ts, e_ops=ops, observables=(), observables_only=True)
    assert res.states is None and res.energy is None
    gp, gm = (float(r) for r in gas.rates())
    flip = lambda a: qutip.Qobj(np.asarray(a)[::-1, ::-1])
    ref = qutip.mesolve(
        1.3 * qutip.jmat(j, "z"),
        rho_q,
        ts,
        [np.sqrt(gp) * qutip.jmat(j, "+"), np.sqrt(gm) * qutip.jmat(j, "-")],
        e_ops=[flip(a) for a in ops],
        options={"atol": 1e-12, "rtol": 1e-11, "nsteps": 10**6},
    )
    got = np.asarray(res.expect)
    assert got.shape == (4, len(ts))
    for k, want in enumerate(ref.expect):
        scale = max(1.0, np.max(np.abs(ops[k])))
        np.testing.assert_allclose(got[k], want, atol=1e-7 * scale, rtol=0)


def test_e_ops_with_stored_states_and_other_models():
    """With states stored, expect equals tr(A rho) of those states; the general model's and the
    population sector's expectations against SciPy expm."""
    gas = inverting()
    d = gas.dim
    rng = np.random.default_rng(3)
    X = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    rho0 = X @ X.conj().T
    rho0 /= np.trace(rho0)
    A = rng.normal(size=(2, d, d)) + 1j * rng.normal(size=(2, d, d))
    ts = times(gas)
    res = evolve(gas, rho0, ts, e_ops=A)
    np.testing.assert_allclose(
        np.asarray(res.expect), np.einsum("kij,tji->kt", A, np.asarray(res.states)), atol=1e-13
    )
    jz, jp, jm = spin_operators(J)
    gp, gm = (float(r) for r in gas.rates())
    model = CollisionalModel(
        np.diag(np.arange(d) - J),
        np.diag([0.0, 3.0]),
        np.kron(jp, [[0, 1], [0, 0]]) + np.kron(jm, [[0, 0], [1, 0]]),
        T_a=1.0,
        T_m=0.5,
        gamma_tilde=50.0,
    )
    S = np.asarray(model.superoperator())
    res = evolve(model, rho0, ts, e_ops=list(A), observables=(), observables_only=True)
    exact = [
        np.einsum("kij,ji->k", A, (sla.expm(S * t) @ rho0.reshape(-1)).reshape(d, d)) for t in ts
    ]
    np.testing.assert_allclose(np.asarray(res.expect), np.array(exact).T, atol=1e-8)
    p0 = np.zeros(d)
    p0[0] = 1.0
    res = evolve(gas, p0, ts, e_ops=jz)
    G = rate_matrix(J, gp, gm)
    want = [(np.arange(d) - J) @ (sla.expm(G * t) @ p0) for t in ts]
    np.testing.assert_allclose(np.real(np.asarray(res.expect[0])), want, atol=1e-8)


def test_bad_e_ops():
    gas = inverting()
    rho0 = np.eye(gas.dim) / gas.dim
    ts = times(gas)
    with pytest.raises(ValueError, match=r"e_ops\[1\] must have shape \(5, 5\), got \(4, 4\)"):
        evolve(gas, rho0, ts, e_ops=[np.eye(5), np.eye(4)])
    with pytest.raises(ValueError, match="e_ops must hold at least one operator"):
        evolve(gas, rho0, ts, e_ops=[])
    with pytest.raises(ValueError, match="e_ops must be finite"):
        evolve(gas, rho0, ts, e_ops=np.full((5, 5), np.nan))
    with pytest.raises(TypeError, match="e_ops"):
        evolve(gas, rho0, ts, e_ops="Jz")
    with pytest.raises(ValueError, match="nothing to compute"):
        evolve(gas, rho0, ts, observables=(), observables_only=True)
