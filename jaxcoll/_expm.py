r"""Exact propagation of the spin's population sector by uniformisation (no time stepping).

The birth-death generator of eq. (11) for eq. (18),
$L = \Gamma_+ L_+ + \Gamma_- L_-$ with $(L_+P)_i = c_{i-1}^2P_{i-1} - c_i^2P_i$ and
$(L_-P)_i = c_i^2P_{i+1} - c_{i-1}^2P_i$ ($c_i^2 = (J - m_i)(J + m_i + 1)$), is a Metzler
matrix whose diagonal is bounded by $\Lambda = (\Gamma_+ + \Gamma_-)\max_i c_i^2$. Then
$B = I + L/\Lambda$ is a stochastic matrix (non-negative, columns summing to one) and

$$e^{L\tau}P = \sum_{k\ge 0} \frac{e^{-\Lambda\tau}(\Lambda\tau)^k}{k!}\,B^kP
  \qquad\text{(uniformisation, Jensen's method)}.$$

Every term is non-negative, so the sum has no cancellation: it is accurate to round-off for
any rates, however far from detailed balance with the ancilla temperature they are (the
similarity to a symmetric matrix that detailed balance offers, $S^{-1}LS$ with
$S = \mathrm{diag}(r^{i/2})$, $r = \Gamma_+/\Gamma_-$, amplifies round-off by $r^{J}$, which
on a pumping gas reaches $10^{1700}$). The series is cut where the Poisson tail is provably
below `tol` (the tail after term $k \ge \Lambda\tau$ is at most
$w_{k+1}/(1 - \Lambda\tau/(k+2))$), so every population is within `tol` of the exact
propagation in the 1-norm. A step costs one tridiagonal product, $O(d)$, and a time interval
$\tau$ about $\Lambda\tau + 8\sqrt{\Lambda\tau} + 10$ of them: no step-size control, no
linear solves, and under `vmap` a batch costs as many products as its largest $\Lambda\tau$
(not as many rejected and accepted adaptive steps as its stiffest point).

Derivatives: `propagate` has a `custom_jvp` whose tangent is linear in the input tangents,
$dP(t_j) = \partial_{\Gamma_+}P\,d\Gamma_+ + \partial_{\Gamma_-}P\,d\Gamma_-
+ LP(t_j)\,(dt_j - dt_0)$, with the two partial derivatives from forward-mode through the
series. Reverse mode transposes only that formula, so `grad`, `jvp` and `vmap` all work.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import _config  # noqa: F401
from ._spin import birth_death_bands, tridiagonal_apply

__all__ = ["propagate", "ladder_squares"]


@functools.lru_cache(maxsize=64)
def ladder_squares(d: int) -> np.ndarray:
    """$c_i^2 = (J - m_i)(J + m_i + 1)$ for $i = 0, \\dots, d-2$ ($m_i = i - J$, $J = (d-1)/2$)."""
    J = (d - 1) / 2
    m = np.arange(d - 1) - J
    return (J - m) * (J + m + 1.0)


def _series_impl(x, lower, diag, upper, p, tol):
    """$e^{L\\tau}p$ for every point of a batch, $x = \\Lambda\\tau$ of shape `(...)`,
    `(lower, diag, upper)` the bands of $B = I + L/\\Lambda$ and `p` of shape `(..., d)`.

    One loop for the whole batch, run until every point's tail is below `tol`: the loop's
    condition is one scalar (a point that is done only adds terms below its tail), and the
    work is laid out as `(d, points)`, so that the shifts of the tridiagonal product move
    whole rows.
    """
    shape, d = x.shape, p.shape[-1]
    x = x.reshape(-1)
    lower, diag, upper, p = (a.reshape(-1, d).T for a in (lower, diag, upper, p))

    def step(v):
        zero = jnp.zeros_like(v[:1])
        prev = jnp.concatenate([zero, v[:-1]], 0)
        nxt = jnp.concatenate([v[1:], zero], 0)
        return diag * v + lower * prev + upper * nxt

    log_x = jnp.log(jnp.where(x > 0, x, jnp.ones_like(x)))
    log_tol = jnp.log(jnp.asarray(tol, x.dtype))
    # Safety cap; the tail bound is met long before (about x + 8 sqrt(x) + 10 terms).
    k_max = jnp.max(x + 20.0 * jnp.sqrt(x) + 100.0, initial=0.0)

    def log_weight(k):
        # log of the Poisson weight e^{-x} x^k / k!, directly: a running sum of logarithms
        # would drift by about k x eps, a running product underflows for x > 745
        return k * log_x - x - jax.scipy.special.gammaln(k + 1.0)

    def cond(state):
        k, _, _, lw = state  # terms 0 .. k-1 are summed; lw = log w_k
        kf = k.astype(x.dtype)
        q = x / (kf + 1.0)
        past = q < 1.0
        # tail = sum_{j >= k} w_j <= w_k / (1 - x/(k+1)) once k + 1 > x
        bound = lw - jnp.log1p(-jnp.where(past, q, jnp.zeros_like(q)))
        done = (x == 0) | (past & (bound < log_tol))
        return ~jnp.all(done) & (kf < k_max)

    def body(state):
        k, v, acc, lw = state
        v = step(v)
        acc = acc + jnp.exp(lw) * v
        return k + 1, v, acc, log_weight((k + 1).astype(x.dtype))

    one = jnp.ones((), jnp.int32)
    state = (one, p, jnp.exp(-x) * p, log_weight(one.astype(x.dtype)))
    acc = jax.lax.while_loop(cond, body, state)[2]
    return acc.T.reshape(*shape, d)


def _series_tangents_impl(x, lower, diag, upper, p, dx, dlower, ddiag, dupper, dp, tol):
    """`_series_impl` and its forward derivatives along a stack of tangents (leading axis of
    `dx`, ...; the batch axes follow it): `(p_out, dp_out)`."""
    impl = functools.partial(_series_impl, tol=tol)
    primals = (x, lower, diag, upper, p)

    def along(*tangent):
        return jax.jvp(impl, primals, tangent)

    # the loop's condition depends on the primals only: one loop for every tangent
    return jax.vmap(along, out_axes=(None, 0))(dx, dlower, ddiag, dupper, dp)


def _batched(fn):
    """`fn` of a batch of points (leading axes), with `custom_vmap`: a `vmap`, nested ones
    too, only widens the batch of one loop. (A plain `vmap` of the loop would make its
    condition per point: every iteration would then `select` the whole state per point.)"""
    wrapped = jax.custom_batching.custom_vmap(fn)

    @wrapped.def_vmap
    def _rule(axis_size, in_batched, *args):
        args = [
            a if batched else jnp.broadcast_to(a, (axis_size, *a.shape))
            for a, batched in zip(args, in_batched, strict=True)
        ]
        out = wrapped(*args)
        return out, jax.tree.map(lambda _: True, out)

    return wrapped


@functools.lru_cache(maxsize=16)
def _series(tol: float):
    return _batched(lambda *args: _series_impl(*args, tol=tol))


@functools.lru_cache(maxsize=16)
def _series_tangents(tol: float):
    def fn(x, lower, diag, upper, p, dx, dlower, ddiag, dupper, dp):
        # tangents carry the direction axis first; move the batch axes in front of it
        t = [jnp.moveaxis(a, x.ndim, 0) for a in (dx, dlower, ddiag, dupper, dp)]
        out, dout = _series_tangents_impl(x, lower, diag, upper, p, *t, tol=tol)
        return out, jnp.moveaxis(dout, 0, x.ndim)

    return _batched(fn)


_MAX_PRODUCTS = 2**24
_TINY = 1e-200  # below this Lambda tau the propagation is the identity to all digits


def _bands(gp, gm, c2):
    """$\\Lambda$ and the bands `(lower, diag, upper)` of $B = I + L/\\Lambda$."""
    lam = (gp + gm) * jnp.max(c2)
    inv = 1.0 / jnp.where(lam > 0, lam, jnp.ones_like(lam))
    z = jnp.zeros_like(c2[:1])
    up, dn = gp * inv * c2, gm * inv * c2  # Gamma_+ c_i^2 / Lambda, Gamma_- c_i^2 / Lambda
    lower = jnp.concatenate([z, up])
    diag = 1.0 - jnp.concatenate([up, z]) - jnp.concatenate([z, dn])
    upper = jnp.concatenate([dn, z])
    return lam, (lower, diag, upper)


def _reduced(lam, dt):
    x = lam * dt
    return jnp.where(x > _TINY, x, jnp.zeros_like(x))


def _check_cost(lam, ts):
    """`lam`, checked (before any product is taken) against the cost cap."""
    return eqx.error_if(
        lam,
        lam * (ts[-1] - ts[0]) > _MAX_PRODUCTS,
        "the exponential path would take more than 2^24 tridiagonal products (rates x time "
        "too large): use solver='rodas5p' (the adaptive Rosenbrock solver) for such long times",
    )


def _propagate(gp, gm, ts, p0, tol):
    c2 = jnp.asarray(ladder_squares(p0.shape[-1]), dtype=p0.dtype)
    lam, bands = _bands(gp, gm, c2)
    lam = _check_cost(lam, ts)
    series = _series(float(tol))

    def one(p, dt):
        p = series(_reduced(lam, dt), *bands, p)
        return p, p

    _, ps = jax.lax.scan(one, p0, jnp.diff(ts))
    return jnp.concatenate([p0[None], ps], 0)


@functools.partial(jax.custom_jvp, nondiff_argnums=(4,))
def propagate(
    gp: Float[Array, ""],
    gm: Float[Array, ""],
    ts: Float[Array, " n"],
    p0: Float[Array, " d"],
    tol: float,
) -> Float[Array, "n d"]:
    r"""Populations $P(t_j) = e^{L(t_j - t_0)}P_0$ of the spin's birth-death chain, exactly.

    **Arguments:**
    - `gp`, `gm`: the rates $\Gamma_\pm \ge 0$ (any time unit; `ts` in its inverse).
    - `ts`: increasing times, `ts[0]` the time of `p0`.
    - `p0`: populations at `ts[0]` in ascending order of the levels ($d = 2J + 1$ of them);
      not differentiated.
    - `tol`: bound on the 1-norm error of each interval's propagation (the Poisson tail).

    **Returns:** `(n, d)` populations; row 0 is `p0`.
    """
    return _propagate(gp, gm, ts, p0, tol)


@propagate.defjvp
def _propagate_jvp(tol, primals, tangents):
    gp, gm, ts, p0 = primals
    dgp, dgm, dts, _ = tangents
    c2 = jnp.asarray(ladder_squares(p0.shape[-1]), dtype=p0.dtype)
    lam, bands = _bands(gp, gm, c2)
    lam = _check_cost(lam, ts)
    # derivatives of Lambda and of the bands along Gamma_+ and along Gamma_- (direction axis 0)
    one = jnp.ones_like(gp)
    d_plus = jax.jvp(lambda a: _bands(a, gm, c2), (gp,), (one,))[1]
    d_minus = jax.jvp(lambda b: _bands(gp, b, c2), (gm,), (one,))[1]
    dlam, dbands = jax.tree.map(lambda u, v: jnp.stack([u, v]), d_plus, d_minus)
    series = _series_tangents(float(tol))

    def step(carry, dt):
        p, dp = carry
        x = _reduced(lam, dt)
        dx = jnp.where(x > 0, dlam * dt, jnp.zeros_like(dlam))
        p, dp = series(x, *bands, p, dx, *dbands, dp)
        return (p, dp), (p, dp)

    start = (p0, jnp.zeros((2, *p0.shape), p0.dtype))
    _, (ps, dps) = jax.lax.scan(step, start, jnp.diff(ts))
    ps = jnp.concatenate([p0[None], ps], 0)
    dps = jnp.concatenate([start[1][None], dps], 0)  # (n, 2, d)
    rate = tridiagonal_apply(
        *birth_death_bands(gp, gm, c2), ps
    )  # dP(t_j)/dt_j = L P(t_j) = -dP(t_j)/dt_0
    dt = (dts - dts[0])[:, None]
    return ps, dps[:, 0] * dgp + dps[:, 1] * dgm + rate * dt


# The automatic solver choice (functionals, `ergotropy_curve`) takes this path up to this many
# levels in float64, the adaptive Rosenbrock solver above (crossover: benchmarks/README.md,
# "Scans").
AUTO_MAX_DIM = 64


def chosen(exponential: bool | None, d: int, dtype=None) -> bool:
    """Whether the exact path is taken for a ladder of `d` levels: `exponential` is
    `SolverOptions.exponential` (`True`: always; `False`: never; `None`, automatic: for a short
    ladder in float64)."""
    if exponential is not None:
        return bool(exponential)
    double = jnp.dtype(dtype if dtype is not None else jnp.result_type(float)) == jnp.float64
    return d <= AUTO_MAX_DIM and double


def from_ground(gp, gm, ts: Float[Array, " n"], d: int, tol: float) -> Float[Array, "n d"]:
    """`propagate` from the ground state (level 0) at `ts[0]`, with the 1-norm error of every
    row below `tol` (shared out over the intervals)."""
    p0 = jnp.zeros(d, dtype=ts.dtype).at[0].set(1.0)
    return propagate(gp, gm, ts, p0, float(tol) / max(ts.shape[0] - 1, 1))
