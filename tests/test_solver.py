"""The Rosenbrock solver and the structured operators of `jaxcoll._solver`.

References: the Rosenbrock order conditions written out over rooted trees (Hairer & Wanner,
Solving ODEs II, Sec. IV.7), dense NumPy/SciPy linear algebra (`numpy.linalg.solve`,
`scipy.linalg.expm`, `scipy.linalg.solve_banded`), and a plain stage-by-stage NumPy
implementation of eq. (7.4') written here from the tableau.
"""

import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla

from jaxcoll._solver import (
    RODAS4,
    RODAS5P,
    DenseOperator,
    PartitionedTridiagonalOperator,
    Rosenbrock,
    TridiagonalOperator,
    _resolvent_powers,
)

TABLEAUS = [RODAS4, RODAS5P]
# order of R(z) ~ e^z (linear problems): RODAS5P's stability function is accurate to z^6
LINEAR_ORDER = {"RODAS4": 4, "RODAS5P": 6}


# --- order conditions -----------------------------------------------------------------------


def _canon(t):
    return tuple(sorted(_canon(c) for c in t))


def _grow(t):
    yield _canon(t + ((),))
    for i, c in enumerate(t):
        for g in _grow(c):
            yield _canon(t[:i] + (g,) + t[i + 1 :])


def _trees(n):
    """All rooted trees with n nodes (a tree is the sorted tuple of its subtrees)."""
    ts = {()}
    for _ in range(n - 1):
        ts = {g for t in ts for g in _grow(t)}
    return sorted(ts)


def _density(t):
    order = 1 + sum(_size(c) for c in t)
    return order * math.prod(_density(c) for c in t)


def _size(t):
    return 1 + sum(_size(c) for c in t)


def _weights(t, alpha, beta):
    """Elementary weights of a Rosenbrock method (Hairer & Wanner IV.7): a root with one child
    carries beta = alpha + Gamma (the Jacobian term), a root with several carries alpha."""
    s = alpha.shape[0]
    if t == ():
        return np.ones(s)
    if len(t) == 1:
        return beta @ _weights(t[0], alpha, beta)
    return np.prod([alpha @ _weights(c, alpha, beta) for c in t], axis=0)


def test_number_of_trees():
    assert [len(_trees(n)) for n in range(1, 7)] == [1, 1, 2, 4, 9, 20]


@pytest.mark.parametrize("tab", TABLEAUS, ids=lambda t: t.name)
def test_order_conditions(tab):
    alpha, G, b = tab.standard_form()
    beta = alpha + G
    b_hat = (tab.m - tab.m_err) @ G
    for n in range(1, tab.order + 2):
        res = max(abs(b @ _weights(t, alpha, beta) - 1 / _density(t)) for t in _trees(n))
        res_hat = max(abs(b_hat @ _weights(t, alpha, beta) - 1 / _density(t)) for t in _trees(n))
        if n <= tab.order:
            assert res < 1e-12, (n, res)
        else:
            assert res > 1e-4, "the method is not of higher order than claimed"
        if n <= tab.embedded_order:
            assert res_hat < 1e-12, (n, res_hat)
        elif n == tab.embedded_order + 1:
            assert res_hat > 1e-4


@pytest.mark.parametrize("tab", TABLEAUS, ids=lambda t: t.name)
def test_stability_function(tab):
    p = LINEAR_ORDER[tab.name]
    alpha, G, b = tab.standard_form()
    B = alpha + G
    one = np.ones(tab.stages)
    coeff = [b @ np.linalg.matrix_power(B, k - 1) @ one * math.factorial(k) for k in range(1, 9)]
    np.testing.assert_allclose(coeff[:p], 1.0, atol=1e-12)
    assert abs(coeff[p] - 1.0) > 1e-3
    # L-stable: A-stable and R(infinity) = 0
    assert abs(tab.stability_function(np.array([np.inf]))[0]) < 1e-12
    x, y = np.meshgrid(-np.logspace(-3, 4, 60), np.linspace(-200, 200, 81))
    z = np.concatenate([(x + 1j * y).ravel(), 1j * np.linspace(-1e3, 1e3, 201)])
    assert np.max(np.abs(tab.stability_function(z))) <= 1 + 1e-12


# --- one step against the stage form ----------------------------------------------------------


def _stage_step(tab, L, y0, h):
    """Eq. (7.4') of Hairer & Wanner, stage by stage, dense NumPy."""
    n = len(y0)
    M = np.eye(n) / (tab.gamma * h) - L
    us = []
    for i in range(tab.stages):
        arg = y0 + sum(tab.a[i, j] * us[j] for j in range(i))
        rhs = L @ arg + sum(tab.c[i, j] / h * us[j] for j in range(i))
        us.append(np.linalg.solve(M, rhs))
    us = np.array(us)
    return y0 + tab.m @ us, tab.m_err @ us, tab.h @ us


def _random_generator(rng, n, scale=1.0):
    """A random rate matrix (columns sum to zero) with a skew part: complex spectrum."""
    R = rng.random((n, n)) * scale
    np.fill_diagonal(R, 0.0)
    G = R - np.diag(R.sum(axis=0))
    K = rng.normal(size=(n, n))
    return G + 0.5 * (K - K.T)


@pytest.mark.parametrize("tab", TABLEAUS, ids=lambda t: t.name)
def test_step_equals_stage_form(tab):
    rng = np.random.default_rng(0)
    L = _random_generator(rng, 6, scale=30.0)  # stiff
    y0 = rng.random(6)
    h = 0.07
    y1, err, k = _stage_step(tab, L, y0, h)
    term = diffrax.ODETerm(DenseOperator(jnp.asarray(L)))
    out = Rosenbrock(tab).step(term, 0.0, h, jnp.asarray(y0), None, None, False)
    np.testing.assert_allclose(out[0], y1, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(out[1], err, rtol=1e-10, atol=1e-13)
    k_out = np.tensordot(np.asarray(out[2]["h"]), np.asarray(out[2]["v"]), axes=1)
    np.testing.assert_allclose(k_out, k, rtol=1e-10, atol=1e-12)


# --- convergence --------------------------------------------------------------------------------


def _fixed_step_errors(tab, hs, t1=1.0):
    """Constant steps h (one compilation for all h): error at t1 and, through the dense
    output, at points strictly inside the steps."""
    rng = np.random.default_rng(1)
    L = _random_generator(rng, 4)
    y0 = rng.random(4)
    exact = sla.expm(L * t1) @ y0
    t_mid = (2 * np.arange(16) + 1) / 32  # never on a grid of h = 1/4, 1/8, 1/16
    mid_exact = np.stack([sla.expm(L * t) @ y0 for t in t_mid])

    @jax.jit
    def run(h):
        return diffrax.diffeqsolve(
            diffrax.ODETerm(DenseOperator(jnp.asarray(L))),
            Rosenbrock(tab),
            0.0,
            t1,
            h,
            jnp.asarray(y0),
            saveat=diffrax.SaveAt(ts=jnp.asarray(t_mid), t1=True),
            stepsize_controller=diffrax.ConstantStepSize(),
            max_steps=64,
        ).ys

    errs, mids = [], []
    for h in hs:
        ys = np.asarray(run(h))
        errs.append(np.max(np.abs(ys[-1] - exact)))
        mids.append(np.max(np.abs(ys[:-1] - mid_exact)))
    return np.array(errs), np.array(mids)


@pytest.mark.parametrize("tab", TABLEAUS, ids=lambda t: t.name)
def test_convergence_order(tab):
    """Global error at t = 1 scales like h^p (p the linear order); the dense output between
    the steps like h^min(p, q + 1) with q its order."""
    hs = [1 / 4, 1 / 8, 1 / 16]
    errs, mids = _fixed_step_errors(tab, hs)
    slopes = np.diff(np.log(errs)) / np.diff(np.log(hs))
    p = LINEAR_ORDER[tab.name]
    assert np.all(np.abs(slopes - p) < 0.35), (slopes, errs)
    mid_slopes = np.diff(np.log(mids)) / np.diff(np.log(hs))
    q = min(p, tab.dense_order + 1)
    assert np.all(mid_slopes > q - 0.35), (mid_slopes, mids)


@pytest.mark.parametrize("tab", TABLEAUS, ids=lambda t: t.name)
def test_error_estimate_order(tab):
    """One step: the embedded estimate scales like h^(q+1), q the embedded order."""
    rng = np.random.default_rng(2)
    L = _random_generator(rng, 4)
    y0 = jnp.asarray(rng.random(4))
    term = diffrax.ODETerm(DenseOperator(jnp.asarray(L)))
    hs = np.array([0.1, 0.05, 0.025])
    est = [
        float(jnp.max(jnp.abs(Rosenbrock(tab).step(term, 0.0, h, y0, None, None, False)[1])))
        for h in hs
    ]
    slopes = np.diff(np.log(est)) / np.diff(np.log(hs))
    np.testing.assert_allclose(slopes, tab.embedded_order + 1, atol=0.3)


# --- operators ------------------------------------------------------------------------------------


def _random_tridiagonal(rng, batch, n):
    """A batch of generator-like tridiagonals: off-diagonals >= 0, columns sum to <= 0."""
    lo = rng.random(batch + (n,))
    up = rng.random(batch + (n,))
    lo[..., 0] = 0.0
    up[..., -1] = 0.0
    col = np.zeros(batch + (n,))
    col[..., :-1] += lo[..., 1:]
    col[..., 1:] += up[..., :-1]
    di = -col - rng.random(batch + (n,))
    return lo, di, up


def _dense(lo, di, up):
    return np.diag(di) + np.diag(lo[1:], -1) + np.diag(up[:-1], 1)


OPERATORS = [
    ("lapack", lambda lo, di, up: TridiagonalOperator(lo, di, up, method="lapack")),
    ("cyclic", lambda lo, di, up: TridiagonalOperator(lo, di, up, method="cyclic", min_rows=4)),
    ("thomas", lambda lo, di, up: PartitionedTridiagonalOperator.from_natural(lo, di, up, 1)),
    ("blocks8", lambda lo, di, up: PartitionedTridiagonalOperator.from_natural(lo, di, up, 8)),
    ("blocks5", lambda lo, di, up: PartitionedTridiagonalOperator.from_natural(lo, di, up, 5)),
]


@pytest.mark.parametrize("name, make", OPERATORS, ids=[o[0] for o in OPERATORS])
@pytest.mark.parametrize("batch, n, k", [((), 103, 1), ((3,), 64, 2)])
def test_tridiagonal_operators(name, make, batch, n, k):
    rng = np.random.default_rng(n + k)
    lo, di, up = _random_tridiagonal(rng, batch, n)
    y = rng.normal(size=batch + (n, k))
    tau = 0.37

    @jax.jit
    def run(lo, di, up, y):
        op = make(lo, di, up)
        yp = op.pack(y)
        return op.unpack(yp), op.unpack(op.mv(yp)), op.unpack(op.solve(op.factor(tau), yp))

    back, mv, x = run(lo, di, up, y)
    np.testing.assert_array_equal(back, y)
    for idx in np.ndindex(*batch):
        A = _dense(lo[idx], di[idx], up[idx])
        np.testing.assert_allclose(mv[idx], A @ y[idx], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(
            x[idx], np.linalg.solve(np.eye(n) - tau * A, y[idx]), rtol=1e-11, atol=1e-13
        )


def test_dense_operator():
    rng = np.random.default_rng(3)
    A = _random_generator(rng, 5)
    y = rng.normal(size=5)
    op = DenseOperator(jnp.asarray(A))
    np.testing.assert_allclose(op.mv(jnp.asarray(y)), A @ y, rtol=1e-13)
    x = op.solve(op.factor(0.3), jnp.asarray(y))
    np.testing.assert_allclose(x, np.linalg.solve(np.eye(5) - 0.3 * A, y), rtol=1e-12)


def _spin_bands(J, gp, gm):
    """Coherence-band generators of eq. (18) in the rotating frame, written out here."""
    d = int(2 * J) + 1
    m = np.arange(d) - J
    cp = np.sqrt((J - m) * (J + m + 1))  # <m+1|J+|m>
    cm = np.concatenate([[0.0], cp[:-1]])  # <m-1|J-|m>
    bands = []
    for q in range(d):
        n = d - q
        i = np.arange(n)
        lo = np.zeros(d)
        up = np.zeros(d)
        di = np.zeros(d)
        lo[1:n] = gp * cp[i[1:] - 1] * cp[i[1:] - 1 + q]
        up[: n - 1] = gm * cm[i[:-1] + 1] * cm[i[:-1] + 1 + q]
        di[:n] = -0.5 * (gp * (cp[i] ** 2 + cp[i + q] ** 2) + gm * (cm[i] ** 2 + cm[i + q] ** 2))
        bands.append((lo, di, up))
    return [np.stack(x) for x in zip(*bands, strict=True)]


UNPIVOTED = [OPERATORS[i] for i in (1, 2, 4)]
SOME = [OPERATORS[i] for i in (0, 1, 4)]


@pytest.mark.parametrize("name, make", UNPIVOTED, ids=[o[0] for o in UNPIVOTED])
def test_no_pivoting_is_stable_on_spin_generators(name, make):
    """Strong inversion (rates 1e4 apart), J = 60, long and short steps: the unpivoted solvers
    agree with pivoted banded LU."""
    lo, di, up = _spin_bands(60, 1.0, 1e-4)
    rng = np.random.default_rng(4)
    y = rng.normal(size=lo.shape + (2,))

    @jax.jit
    def run(tau):
        op = make(*map(jnp.asarray, (lo, di, up)))
        return op.unpack(op.solve(op.factor(tau), op.pack(jnp.asarray(y))))

    for tau in [1e-6, 1e-2, 1e3]:
        x = np.asarray(run(tau))
        for q in range(0, lo.shape[0], 17):
            ab = np.stack(
                [
                    np.concatenate([[0.0], -tau * up[q, :-1]]),
                    1 - tau * di[q],
                    np.concatenate([-tau * lo[q, 1:], [0.0]]),
                ]
            )
            ref = sla.solve_banded((1, 1), ab, y[q])
            np.testing.assert_allclose(x[q], ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("name, make", SOME, ids=[o[0] for o in SOME])
def test_solve_gradient(name, make):
    """Reverse-mode derivative of a solve with respect to the coefficients, against central
    differences."""
    rng = np.random.default_rng(5)
    lo, di, up = map(jnp.asarray, _random_tridiagonal(rng, (), 40))
    y = jnp.asarray(rng.normal(size=(40, 1)))
    w = jnp.asarray(rng.normal(size=(40, 1)))

    def f(s):
        op = make(lo * s, di * s, up * (1 + s))
        return jnp.sum(w * op.unpack(op.solve(op.factor(0.5), op.pack(y))))

    g = jax.jit(jax.grad(f))(1.3)
    eps = 1e-6
    f = jax.jit(f)
    fd = (f(1.3 + eps) - f(1.3 - eps)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-7)


def _dense_powers(lo, di, up, tau, y0, n):
    """Reference: the resolvent powers with dense `jnp.linalg.solve`, autodiffed by JAX."""
    L = jnp.diag(di) + jnp.diag(lo[1:], -1) + jnp.diag(up[:-1], 1)
    A = jnp.eye(di.shape[0]) - tau * L
    v = jnp.linalg.solve(A, tau * (L @ y0))
    out = [v]
    for _ in range(n - 1):
        v = jnp.linalg.solve(A, v)
        out.append(v)
    return jnp.stack(out)


def _structured_powers(make, lo, di, up, tau, y0, n):
    op = make(lo, di, up)
    return jax.vmap(op.unpack)(_resolvent_powers(op, tau, op.pack(y0), n))


POWERS = [*OPERATORS[:4], ("dense", None)]


@pytest.mark.parametrize("name, make", POWERS, ids=[o[0] for o in POWERS])
def test_resolvent_power_derivatives(name, make):
    """The derivative rule of the resolvent powers (jvp, vjp, vmap of grad) against JAX's
    autodiff of dense `jnp.linalg.solve`, and against central differences."""
    rng = np.random.default_rng(11)
    n, k, npow = 48, 2, 7
    lo, di, up = map(jnp.asarray, _random_tridiagonal(rng, (), n))
    y0 = jnp.asarray(rng.normal(size=(n, k)))
    tau = jnp.asarray(0.21)
    primals = (lo, di, up, tau, y0)
    if make is None:

        def ours(lo, di, up, tau, y0):
            L = jnp.diag(di) + jnp.diag(lo[1:], -1) + jnp.diag(up[:-1], 1)
            return _resolvent_powers(DenseOperator(L), tau, y0, npow)
    else:

        def ours(lo, di, up, tau, y0):
            return _structured_powers(make, lo, di, up, tau, y0, npow)

    def ref(lo, di, up, tau, y0):
        return _dense_powers(lo, di, up, tau, y0, npow)

    # gtsv convention: lower[0] and upper[-1] are not part of the matrix
    mask = (jnp.ones(n).at[0].set(0.0), jnp.ones(n), jnp.ones(n).at[-1].set(0.0), 1.0, 1.0)
    tangents = tuple(
        m * jnp.asarray(rng.normal(size=np.shape(p))) for m, p in zip(mask, primals, strict=True)
    )
    cot = jnp.asarray(rng.normal(size=(npow, n, k)))

    V, dV = jax.jit(lambda *t: jax.jvp(ours, primals, t))(*tangents)
    V_ref, dV_ref = jax.jvp(ref, primals, tangents)
    np.testing.assert_allclose(V, V_ref, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(dV, dV_ref, rtol=1e-10, atol=1e-12 * np.abs(dV_ref).max())

    g = jax.jit(lambda c: jax.vjp(ours, *primals)[1](c))(cot)
    g_ref = jax.vjp(ref, *primals)[1](cot)
    for m, a, b in zip(mask, g, g_ref, strict=True):
        np.testing.assert_allclose(m * a, m * b, rtol=1e-10, atol=1e-12 * np.abs(b).max())

    # central differences of a scalar projection along the tangent direction
    def proj(s):
        shifted = tuple(p + s * t for p, t in zip(primals, tangents, strict=True))
        return jnp.sum(cot * ours(*shifted))

    eps = 1e-6
    proj = jax.jit(proj)
    fd = (proj(eps) - proj(-eps)) / (2 * eps)
    np.testing.assert_allclose(jnp.sum(cot * dV), fd, rtol=1e-7)

    # vmap over the step size of the gradient with respect to the coefficients and tau
    taus = jnp.asarray([0.05, 0.21, 1.7])

    def loss(f):
        return lambda di, tau: jnp.sum(cot * f(lo, di, up, tau, y0))

    gv = jax.jit(jax.vmap(jax.grad(loss(ours), argnums=(0, 1)), in_axes=(None, 0)))(di, taus)
    for i, t in enumerate(taus):
        gd, gt = jax.grad(loss(ref), argnums=(0, 1))(di, t)
        np.testing.assert_allclose(gv[0][i], gd, rtol=1e-10, atol=1e-12 * np.abs(gd).max())
        np.testing.assert_allclose(gv[1][i], gt, rtol=1e-10)


# --- through diffeqsolve --------------------------------------------------------------------------


@pytest.mark.parametrize("name, make", SOME, ids=[o[0] for o in SOME])
def test_diffeqsolve_adaptive(name, make):
    """Adaptive steps, dense output at `ts`: the spin population chain against expm."""
    J = 20
    lo, di, up = (x[0] for x in _spin_bands(J, 0.3, 0.05))
    op = make(*map(jnp.asarray, (lo, di, up)))
    p0 = np.zeros((2 * J + 1, 1))
    p0[0] = 1.0
    ts = jnp.linspace(0.0, 0.4, 9)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(op),
        Rosenbrock(),
        0.0,
        0.4,
        None,
        op.pack(jnp.asarray(p0)),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-12),
    )
    A = _dense(lo, di, up)
    ref = np.stack([sla.expm(A * float(t)) @ p0[:, 0] for t in ts])
    got = np.asarray(jax.vmap(op.unpack)(sol.ys))[..., 0]
    np.testing.assert_allclose(got, ref, atol=1e-9)


def test_rejects_a_plain_vector_field():
    term = diffrax.ODETerm(lambda t, y, args: -y)
    with pytest.raises(TypeError, match="structured linear operator"):
        Rosenbrock().step(term, 0.0, 0.1, jnp.ones(3), None, None, False)


def test_tableau_names():
    assert Rosenbrock("rodas4").tableau is RODAS4
    assert Rosenbrock().tableau is RODAS5P
    with pytest.raises(ValueError, match="tableau must be one of"):
        Rosenbrock("rk4")
