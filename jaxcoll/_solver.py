r"""Stiff solver for structured linear ODEs $\dot y = L y$: Rosenbrock methods in Diffrax.

The master equations of this package are linear and autonomous. Their generators are stiff: the
spin ladder's fastest rates grow like $\Gamma J^2$ while the dynamics of interest take
$\sim \ln J/(\Gamma J)$, so explicit methods need thousands of steps at large $J$. An L-stable
Rosenbrock method needs no Newton iterations: every stage is one linear solve with the same
matrix $I - \gamma h L$,

$$\Big(\frac{1}{\gamma h} - L\Big) u_i = L\Big(y_0 + \sum_{j<i} a_{ij} u_j\Big)
  + \sum_{j<i} \frac{c_{ij}}{h} u_j, \qquad y_1 = y_0 + \sum_i m_i u_i$$

(Hairer & Wanner, *Solving ODEs II*, Sec. IV.7, eq. (7.4')), with an embedded error estimate and
a dense output. For constant $L$ and a single $\gamma$ every stage is a polynomial in the
resolvent $S = (I - \gamma hL)^{-1}$ applied to $y_0$, so a step computes the powers
$v_1 = S(\gamma hLy_0)$, $v_j = Sv_{j-1}$ and reads the solution, the error estimate and the dense
output off them with fixed weights derived from the published tableau
(`_resolvent_power_weights`): exactly the same method, one structured solve per power and no
per-stage linear combinations (RODAS5P needs 7 powers for its 8 stages).

Tableaus (coefficients as published, in the transformed form above):

- `RODAS5P` (default): Steinebach (2023), order 5 (order 6 on linear problems) with an embedded
  order-4 estimate, stiffly accurate, L-stable, order-4 dense output.
- `RODAS4`: Hairer & Wanner (1996), order 4(3), stiffly accurate, L-stable, order-3 dense output.

Structured operators (`pack`/`unpack` convert states to the flat layout the solver carries):

- `TridiagonalOperator`: a batch of real tridiagonal matrices in natural order, solved by cyclic
  reduction in `jax.numpy` (factorised once per step, down to a short system for LAPACK `gtsv`)
  or by `gtsv` alone. Used for chains shorter than 8192.
- `PartitionedTridiagonalOperator`: the same matrices cut into blocks that one `lax.scan` Thomas
  sweep advances together as vectors, coupled through a small boundary system. Used for long
  chains and for all coherence bands of the spin at once. No pivoting in either: $I - \tau L$
  is column diagonally dominant for every generator here.
- `DenseOperator`: the general collisional model (population generator, or the superoperator in
  a real basis of Hermitian matrices): one LU factorisation per step.

Why this design (the measurements are in `benchmarks/README.md`, "Solver design"):

- RODAS5P over RODAS4: at the tolerances used here the higher order takes about a third of
  the steps for one more solve per step.
- The resolvent-power form over the stage form: one structured solve per power replaces a
  solve, a product with $L$ and the per-stage sums per stage.
- Cyclic reduction, and for long chains the partitioned sweep, over LAPACK `gtsv` alone: both
  are faster per solve, the sweep most on the longest chains.
- Flat states: XLA's CPU reductions (the error norm) are much slower over `(..., 1)`-shaped
  arrays.
- Diagonalising is not an option: the spin generators are similar to symmetric matrices via
  the detailed-balance transform $\mathrm{diag}\,(\Gamma_+/\Gamma_-)^{i/2}$, which overflows for
  $J \gtrsim 20$ at strong inversion.

`Rosenbrock` is a `diffrax.AbstractAdaptiveSolver`, so `diffrax.diffeqsolve` supplies the step
size control (`PIDController`), `SaveAt(ts=...)` through the dense output, adjoints
(`RecursiveCheckpointAdjoint` differentiates through the operator's float parameters) and
progress meters. The vector field of the `diffrax.ODETerm` must be the operator itself.

Derivatives: the resolvent powers of a step carry a JVP rule of their own
(`_resolvent_powers`), one solve per power with the step's factors, which JAX transposes for
reverse mode, instead of differentiating the elimination line by line: fewer operations to
trace and to run than the elimination's own derivative (`benchmarks/bench_gradients.py`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.lax.linalg import tridiagonal_solve
from jaxtyping import Array, Float

from . import _config  # noqa: F401

__all__ = [
    "PartitionedTridiagonalOperator",
    "RosenbrockTableau",
    "RODAS4",
    "RODAS5P",
    "AbstractStructuredOperator",
    "TridiagonalOperator",
    "DenseOperator",
    "Rosenbrock",
    "RosenbrockInterpolation",
]


# --- tableaus -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class RosenbrockTableau:
    r"""Coefficients of a Rosenbrock method in the transformed form of Hairer & Wanner (7.4').

    **Fields:**
    - `name`, `reference`: for messages and documentation.
    - `order`: classical order $p$ (also the order of $R(z) \approx e^z$).
    - `embedded_order`: order of the embedded method used for the error estimate.
    - `gamma`: the diagonal coefficient $\gamma$.
    - `a`, `c`: `(s, s)` strictly lower triangular stage couplings ($a_{ij}$, $c_{ij}$).
    - `m`: `(s,)` weights of the solution, $y_1 = y_0 + \sum_i m_i u_i$.
    - `m_err`: `(s,)` weights of the error estimate, $y_1 - \hat y_1 = \sum_i e_i u_i$.
    - `h`: `(k, s)` dense-output coefficients: with $\kappa_r = \sum_i h_{ri} u_i$,
      $y(t_0 + \theta h) = (1-\theta)y_0 + \theta\,[y_1 + (1-\theta)(\kappa_0 + \theta(\kappa_1
      + \theta(\kappa_2 + \dots)))]$.
    - `dense_order`: order of that interpolant.
    """

    name: str
    reference: str
    order: int
    embedded_order: int
    dense_order: int
    gamma: float
    a: np.ndarray
    c: np.ndarray
    m: np.ndarray
    m_err: np.ndarray
    h: np.ndarray

    @property
    def stages(self) -> int:
        return len(self.m)

    def standard_form(self):
        r"""`(alpha, Gamma, b)` of the untransformed method (7.1).

        $\Gamma = (I/\gamma - C)^{-1}$ (lower triangular, diagonal $\gamma$),
        $\alpha = A\Gamma$, $b^\top = m^\top\Gamma$ (Hairer & Wanner, Sec. IV.7).
        """
        s = self.stages
        G = np.linalg.inv(np.eye(s) / self.gamma - self.c)
        return self.a @ G, G, self.m @ G

    def stability_function(self, z):
        r"""$R(z) = 1 + z\,b^\top (I - z(\alpha + \Gamma))^{-1}\mathbb 1$ for complex `z`."""
        alpha, G, b = self.standard_form()
        B = alpha + G
        s = self.stages
        z = np.asarray(z, dtype=complex)
        out = np.empty(z.shape, dtype=complex)
        for idx, zi in np.ndenumerate(z):
            if np.isinf(zi):
                out[idx] = 1.0 - b @ np.linalg.solve(B, np.ones(s))
            else:
                out[idx] = 1.0 + zi * b @ np.linalg.solve(np.eye(s) - zi * B, np.ones(s))
        return out


def _stiffly_accurate(name, reference, order, dense_order, gamma, a_rows, c_rows, h_rows):
    """Build a stiffly accurate RODAS-type tableau: m = last row of a (+1), error = last stage."""
    s = len(c_rows)
    a = np.zeros((s, s))
    c = np.zeros((s, s))
    for i, row in enumerate(a_rows, start=1):
        a[i, : len(row)] = row
    for i, row in enumerate(c_rows):
        c[i, : len(row)] = row
    # Stages beyond the given a-rows reuse the previous stage's argument plus its increment
    # (y0 + sum_j a_ij u_j is the solution of the embedded method; Hairer & Wanner's RODAS).
    for i in range(len(a_rows) + 1, s):
        a[i] = a[i - 1]
        a[i, i - 1] = 1.0
    m = a[s - 1].copy()
    m[s - 1] = 1.0
    m_err = np.zeros(s)
    m_err[s - 1] = 1.0
    return RosenbrockTableau(
        name=name,
        reference=reference,
        order=order,
        embedded_order=order - 1,
        dense_order=dense_order,
        gamma=gamma,
        a=a,
        c=c,
        m=m,
        m_err=m_err,
        h=np.asarray(h_rows, dtype=float),
    )


RODAS4 = _stiffly_accurate(
    "RODAS4",
    "E. Hairer, G. Wanner, Solving Ordinary Differential Equations II, 2nd ed., Springer (1996), "
    "Sec. IV.7, code RODAS",
    order=4,
    dense_order=3,
    gamma=0.25,
    a_rows=[
        [1.544],
        [0.9466785280815826, 0.2557011698983284],
        [3.314825187068521, 2.896124015972201, 0.9986419139977817],
        [1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895],
    ],
    c_rows=[
        [],
        [-5.6688],
        [-2.430093356833875, -0.2063599157091915],
        [-0.1073529058151375, -9.594562251023355, -20.47028614809616],
        [7.496443313967647, -10.24680431464352, -33.99990352819905, 11.7089089320616],
        [
            8.083246795921522,
            -7.981132988064893,
            -31.52159432874371,
            16.31930543123136,
            -6.058818238834054,
        ],
    ],
    h_rows=[
        [
            10.12623508344586,
            -7.487995877610167,
            -34.80091861555747,
            -7.992771707568823,
            1.025137723295662,
            0.0,
        ],
        [
            -0.6762803392801253,
            6.087714651680015,
            16.43084320892478,
            24.76722511418386,
            -6.594389125716872,
            0.0,
        ],
    ],
)

RODAS5P = _stiffly_accurate(
    "RODAS5P",
    "G. Steinebach, Construction of Rosenbrock-Wanner method Rodas5P and numerical benchmarks "
    "within the Julia Differential Equations package, BIT Numer. Math. 63, 27 (2023)",
    order=5,
    dense_order=4,
    gamma=0.21193756319429014,
    a_rows=[
        [3.0],
        [2.849394379747939, 0.45842242204463923],
        [-6.954028509809101, 2.489845061869568, -10.358996098473584],
        [2.8029986275628964, 0.5072464736228206, -0.3988312541770524, -0.04721187230404641],
        [
            -7.502846399306121,
            2.561846144803919,
            -11.627539656261098,
            -0.18268767659942256,
            0.030198172008377946,
        ],
    ],
    c_rows=[
        [],
        [-14.155112264123755],
        [-17.97296035885952, -2.859693295451294],
        [147.12150275711716, -1.41221402718213, 71.68940251302358],
        [165.43517024871676, -0.4592823456491126, 42.90938336958603, -5.961986721573306],
        [
            24.854864614690072,
            -3.0009227002832186,
            47.4931110020768,
            5.5814197821558125,
            -0.6610691825249471,
        ],
        [
            30.91273214028599,
            -3.1208243349937974,
            77.79954646070892,
            34.28646028294783,
            -19.097331116725623,
            -28.087943162872662,
        ],
        [
            37.80277123390563,
            -3.2571969029072276,
            112.26918849496327,
            66.9347231244047,
            -40.06618937091002,
            -54.66780262877968,
            -9.48861652309627,
        ],
    ],
    h_rows=[
        [
            25.948786856663858,
            -2.5579724845846235,
            10.433815404888879,
            -2.3679251022685204,
            0.524948541321073,
            1.1241088310450404,
            0.4272876194431874,
            -0.17202221070155493,
        ],
        [
            -9.91568850695171,
            -0.9689944594115154,
            3.0438037242978453,
            -24.495224566215796,
            20.176138334709044,
            15.98066361424651,
            -6.789040303419874,
            -6.710236069923372,
        ],
        [
            11.419903575922262,
            2.8879645146136994,
            72.92137995996029,
            80.12511834622643,
            -52.072871366152654,
            -59.78993625266729,
            -0.15582684282751913,
            4.883087185713722,
        ],
    ],
)

_TABLEAUS = {"rodas4": RODAS4, "rodas5p": RODAS5P}


# --- linear autonomous form -----------------------------------------------------------------


def _resolvent_power_weights(tab: RosenbrockTableau, tol: float = 1e-12):
    r"""The method on $\dot y = Ly$ written in powers of the resolvent $S = (I - \gamma hL)^{-1}$.

    With one $\gamma$ for all stages, every stage of (7.4') is a polynomial in $S$ applied to
    $y_0$. In the basis $v_1 = S(\gamma h L y_0)$, $v_j = S v_{j-1}$ (so that
    $v_j \leftrightarrow (u - 1)u^{j-1}$ for $u = 1/(1-\gamma z)$, $z = h\lambda$), stage $i$ is
    $U_i(u) = (u-1)(1 + \sum_{j<i} a_{ij}U_j) + \gamma u\sum_{j<i} c_{ij}U_j$. Returns the
    weights of $y_1 - y_0$, of the error estimate and of the dense-output vectors in that basis,
    with trailing powers that no output uses dropped (RODAS5P needs 7 of its 8).
    """
    P = np.polynomial.polynomial
    s, g = tab.stages, tab.gamma
    stages = []
    for i in range(s):
        base = np.array([1.0])
        coupled = np.array([0.0])
        for j in range(i):
            base = P.polyadd(base, tab.a[i, j] * stages[j])
            coupled = P.polyadd(coupled, g * tab.c[i, j] * stages[j])
        stages.append(P.polyadd(P.polymul([-1.0, 1.0], base), P.polymul([0.0, 1.0], coupled)))
    Q = np.zeros((s, s))
    for i, Ui in enumerate(stages):
        q, r = P.polydiv(Ui, [-1.0, 1.0])  # every stage vanishes at u = 1 (h = 0)
        assert np.max(np.abs(r)) < 1e-9
        Q[i, : len(q)] = q
    m, e, h = tab.m @ Q, tab.m_err @ Q, tab.h @ Q
    scale = max(np.max(np.abs(m)), np.max(np.abs(e)), np.max(np.abs(h)))
    used = np.max(np.abs(np.vstack([m, e, h])), axis=0) > tol * scale
    n = int(np.max(np.nonzero(used)[0])) + 1
    return m[:n], e[:n], h[:, :n]


# --- structured operators -------------------------------------------------------------------


class AbstractStructuredOperator(eqx.Module):
    """A linear operator $L$ with a fast matrix-vector product and fast solves with $I - \\tau L$.

    Concrete operators implement `mv(y)` ($Ly$), `factor(tau)` (whatever makes solves with
    $I - \\tau L$ cheap; computed once per step) and `solve(factors, b)`. `pack`/`unpack`
    convert states between the natural layout and the one the operator works in. Calling the
    operator as `op(t, y, args)` returns `op.mv(y)`, so it can be the vector field of a
    `diffrax.ODETerm`.
    """

    def mv(self, y):
        raise NotImplementedError

    def factor(self, tau):
        raise NotImplementedError

    def solve(self, factors, b):
        raise NotImplementedError

    def powers(self, factors, tau, y0, n: int):
        r"""The resolvent powers of a step, `(n, *y0.shape)`: $v_1 = S(\tau L y_0)$,
        $v_j = S v_{j-1}$ with $S = (I - \tau L)^{-1}$ and `factors = factor(tau)`.

        One solve after the other; an operator whose solves split into parts that can run
        side by side across the powers overrides it.
        """
        # Unrolled (n is 6-7): XLA schedules the solves back to back and writes each power into
        # the stacked output; a `fori_loop` over a buffer with dynamic indices is slower per step
        # at the same compile time.
        v = self.solve(factors, tau * self.mv(y0))
        vs = [v]
        for _ in range(1, n):
            v = self.solve(factors, v)
            vs.append(v)
        return jnp.stack(vs)

    def pack(self, y):
        """A state in the natural layout -> the layout `mv` and `solve` work in."""
        return y

    def unpack(self, y):
        """Inverse of `pack`."""
        return y

    def astype(self, dtype) -> AbstractStructuredOperator:
        """The same operator with its floating arrays cast to `dtype`."""
        return jax.tree_util.tree_map(
            lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, self
        )

    def __call__(self, t, y, args):
        del t, args
        return self.mv(y)


def _split(x):
    """Even and odd rows along axis -2 (its length must be even)."""
    x2 = x.reshape(x.shape[:-2] + (x.shape[-2] // 2, 2) + x.shape[-1:])
    return x2[..., 0, :], x2[..., 1, :]


def _merge(even, odd):
    """Inverse of `_split`."""
    return jnp.stack([even, odd], axis=-2).reshape(even.shape[:-2] + (-1,) + even.shape[-1:])


def _next(x):
    """`y[..., m, :] = x[..., m+1, :]`, zero past the end."""
    return jnp.concatenate([x[..., 1:, :], jnp.zeros_like(x[..., :1, :])], axis=-2)


def _prev(x):
    """`y[..., m, :] = x[..., m-1, :]`, zero before the start."""
    return jnp.concatenate([jnp.zeros_like(x[..., :1, :]), x[..., :-1, :]], axis=-2)


def _cyclic_levels(n: int, min_rows: int) -> int:
    """Number of cyclic-reduction levels that bring n rows down to about `min_rows`."""
    if n <= 2 * min_rows:
        return 0
    return int(np.floor(np.log2(n / min_rows)))


class TridiagonalOperator(AbstractStructuredOperator):
    r"""A batch of real tridiagonal matrices acting along the second-to-last axis.

    $$(Ly)_{\dots,i,k} = \ell_i\, y_{\dots,i-1,k} + d_i\, y_{\dots,i,k} + u_i\, y_{\dots,i+1,k}.$$

    **Arguments:**
    - `lower`, `diag`, `upper`: shape `(*batch, n)`, LAPACK `gtsv` convention
      (`lower[..., 0] = upper[..., -1] = 0`).
    - `method`: how $(I - \tau L)x = b$ is solved: `"lapack"` (`gtsv` through
      `jax.lax.linalg.tridiagonal_solve`, refactorised at every solve), `"cyclic"` (cyclic
      reduction in `jax.numpy`, factorised once per step, down to a short system handed to
      `gtsv`), or `"auto"` (cyclic for `n > 2 * min_rows`).
    - `min_rows`: length of the reduced system where cyclic reduction stops.

    States have shape `(*batch, n, k)`: `k` right-hand sides per matrix (e.g. the real and
    imaginary parts of a coherence band); `pack` flattens them (as the solver carries them)
    and `unpack` restores the shape. Cyclic reduction is Gaussian elimination in odd-even
    order without pivoting; it is stable here because $I - \tau L$ is column diagonally
    dominant for every generator of this package (Metzler matrices with non-positive column
    sums, and the coherence bands by the AM-GM inequality), so all multipliers are bounded by 1.
    """

    lower: Float[Array, "*batch n"]
    diag: Float[Array, "*batch n"]
    upper: Float[Array, "*batch n"]
    method: str = eqx.field(static=True, default="auto")
    min_rows: int = eqx.field(static=True, default=256)

    @property
    def n(self) -> int:
        return self.diag.shape[-1]

    @property
    def levels(self) -> int:
        if self.method == "lapack":
            return 0
        if self.method == "cyclic":
            return _cyclic_levels(self.n, min(self.min_rows, max(self.n // 4, 1)))
        if self.method == "auto":
            return _cyclic_levels(self.n, self.min_rows)
        raise ValueError(f"method must be 'auto', 'lapack' or 'cyclic', got {self.method!r}")

    def _shaped(self, y):
        """Flat state -> `(*batch, n, k)`."""
        return y.reshape(self.diag.shape + (y.size // self.diag.size,))

    def pack(self, y):
        return y.reshape(-1)

    def unpack(self, y):
        return self._shaped(y)

    def mv(self, y):
        flat = y.ndim == 1
        y = self._shaped(y)
        lo, di, up = self.lower[..., None], self.diag[..., None], self.upper[..., None]
        out = di * y + lo * _prev(y) + up * _next(y)
        return out.reshape(-1) if flat else out

    def factor(self, tau):
        a = -tau * self.lower
        b = 1.0 - tau * self.diag
        c = -tau * self.upper
        L = self.levels
        pad = (-self.n) % (2**L)
        if pad:
            widths = [(0, 0)] * (a.ndim - 1) + [(0, pad)]
            a = jnp.pad(a, widths)
            c = jnp.pad(c, widths)
            b = jnp.pad(b, widths, constant_values=1.0)
        levels = []
        for _ in range(L):
            ae, ao = _split(a[..., None])
            be, bo = _split(b[..., None])
            ce, co = _split(c[..., None])
            ibe = 1.0 / be
            alpha = -ao * ibe
            beta = -co * _next(ibe)
            a = (alpha * ae)[..., 0]
            b = (bo + alpha * ce + beta * _next(ae))[..., 0]
            c = (beta * _next(ce))[..., 0]
            levels.append((alpha, beta, ibe, ae * ibe, ce * ibe))
        return tuple(levels), (a, b, c)

    def solve(self, factors, rhs):
        if rhs.ndim == 1:
            return self._solve(factors, self._shaped(rhs)).reshape(-1)
        return self._solve(factors, rhs)

    def _solve(self, factors, rhs):
        levels, (a, b, c) = factors
        n = rhs.shape[-2]
        pad = (-n) % (2 ** len(levels))
        if pad:
            rhs = jnp.pad(rhs, [(0, 0)] * (rhs.ndim - 2) + [(0, pad), (0, 0)])
        evens = []
        for alpha, beta, _, _, _ in levels:
            de, do = _split(rhs)
            evens.append(de)
            rhs = do + alpha * de + beta * _next(de)
        x = tridiagonal_solve(a, b, c, rhs)
        for (_, _, ibe, ae_b, ce_b), de in zip(reversed(levels), reversed(evens), strict=True):
            x = _merge(de * ibe - ae_b * _prev(x) - ce_b * x, x)
        return x[..., :n, :] if pad else x


def _rows_prev(y):
    """Natural-order predecessor in the partitioned layout `(L, W, ...)`: row j-1 of the same
    block, and for row 0 the last row of the previous block (zero for the first)."""
    last = y[-1:]
    carry = jnp.concatenate([jnp.zeros_like(last[:, :1]), last[:, :-1]], axis=1)
    return jnp.concatenate([carry, y[:-1]], axis=0)


def _rows_next(y):
    """Natural-order successor in the partitioned layout (see `_rows_prev`)."""
    first = y[:1]
    carry = jnp.concatenate([first[:, 1:], jnp.zeros_like(first[:, :1])], axis=1)
    return jnp.concatenate([y[1:], carry], axis=0)


class _PartitionFactors(eqx.Module):
    tau: Array
    l: Array  # multipliers of the (interior) LU, (L, W, *batch)
    iu: Array  # reciprocal pivots
    spikes: Array | None  # (L, W, *batch, 2): responses to the first / last row of a block
    reduced: tuple | None  # boundary system (lower, diag, upper), (*batch, 2W)
    coupling: tuple | None  # (c[0], a[L-1]) per block, (W, *batch)


class PartitionedTridiagonalOperator(AbstractStructuredOperator):
    r"""Tridiagonal matrices (a batch of them) solved by a partitioned, vectorised Thomas sweep.

    Each chain of length n is cut into `W` blocks of `L` rows, stored row-major as `(L, W)`
    so that one sweep over the `L` rows advances all blocks (and the batch and right-hand
    sides) at once as vectors. The blocks are coupled through their first and last rows: with
    the interior of every block eliminated once per step (two "spike" solutions), the $2W$
    boundary unknowns satisfy a tridiagonal system of their own, solved by LAPACK `gtsv`;
    then each block is the particular solution plus the spikes times its boundary values.
    With `W = 1` (e.g. all coherence bands at once, where the batch already fills the
    vectors) it is the plain Thomas algorithm.

    No pivoting: stable because $I - \tau L$ is column diagonally dominant for the generators
    of this package (see `TridiagonalOperator`), hence also its principal submatrices and the
    Schur complement on the boundary rows; every multiplier is bounded by 1.

    Build it with `from_natural(lower, diag, upper)` (`(*batch, n)`, gtsv convention); states
    are `pack`ed from `(*batch, n, k)` to `(L, W, *batch, k)`, flattened, and `unpack`ed back.
    """

    lower: Float[Array, "L W *batch"]
    diag: Float[Array, "L W *batch"]
    upper: Float[Array, "L W *batch"]
    n: int = eqx.field(static=True)

    @classmethod
    def from_natural(cls, lower, diag, upper, blocks: int | None = None):
        n = diag.shape[-1]
        batch = diag.shape[:-1]
        if blocks is None:
            blocks = _default_blocks(n, int(np.prod(batch, dtype=int)))
        W = int(blocks)
        L = -(-n // W)
        if W > 1 and L < 4:
            raise ValueError(f"blocks={W} leaves fewer than 4 rows per block for n={n}")

        def arrange(x):
            x = jnp.pad(x, [(0, 0)] * len(batch) + [(0, W * L - n)])
            x = x.reshape(batch + (W, L))
            return jnp.moveaxis(jnp.moveaxis(x, -1, 0), -1, 1)  # (L, W, *batch)

        return cls(arrange(lower), arrange(diag), arrange(upper), n=n)

    @property
    def blocks(self) -> int:
        return self.diag.shape[1]

    @property
    def rows(self) -> int:
        return self.diag.shape[0]

    def _shaped(self, y):
        """Flat state -> `(L, W, *batch, k)`."""
        return y.reshape(self.diag.shape + (y.size // self.diag.size,))

    def pack(self, y):
        L, W = self.rows, self.blocks
        nb = y.ndim - 2
        y = jnp.pad(y, [(0, 0)] * nb + [(0, W * L - self.n), (0, 0)])
        y = y.reshape(y.shape[:nb] + (W, L) + y.shape[-1:])
        # (L, W, *batch, k), flattened: XLA's CPU reductions (the error norm) are many times
        # slower over arrays with a trailing unit axis than over flat ones.
        return jnp.moveaxis(jnp.moveaxis(y, nb + 1, 0), nb + 1, 1).reshape(-1)

    def unpack(self, y):
        L, W = self.rows, self.blocks
        y = self._shaped(y)
        y = jnp.moveaxis(jnp.moveaxis(y, 1, -2), 0, -2)  # (*batch, W, L, k)
        y = y.reshape(y.shape[:-3] + (W * L,) + y.shape[-1:])
        return y[..., : self.n, :]

    def mv(self, y):
        y = self._shaped(y)
        lo, di, up = self.lower[..., None], self.diag[..., None], self.upper[..., None]
        return (di * y + lo * _rows_prev(y) + up * _rows_next(y)).reshape(-1)

    # The sweeps build the matrix I - tau L row by row from (lower, diag, upper), so that no
    # modified copy of the coefficients is ever stored. With W > 1 the first and last row of
    # every block are replaced by identity rows and decoupled from the interior ("tilde" system).

    def _row(self, tau, j, lo, di, up):
        a, b, c = -tau * lo, 1.0 - tau * di, -tau * up
        if self.blocks == 1:
            return a, b, c
        L = self.rows
        edge = (j == 0) | (j == L - 1)
        zero = jnp.zeros_like(a)
        a = jnp.where(edge | (j == 1), zero, a)
        b = jnp.where(edge, jnp.ones_like(b), b)
        c = jnp.where(edge | (j == L - 2), zero, c)
        return a, b, c

    def _forward(self, tau, l, rhs, *, interior: bool):
        """$y_j = r_j - l_j y_{j-1}$; with `interior`, rows 0 and L-1 of the rhs count as 0.

        `rhs` may also be a function of the row index giving that row (no array stored)."""
        L = self.rows
        js = jnp.arange(L)
        row_of = rhs if callable(rhs) else None

        def body(prev, row):
            if row_of is None:
                j, lj, rj = row
            else:
                (j, lj), rj = row, row_of(row[0])
            if interior:
                rj = jnp.where((j == 0) | (j == L - 1), jnp.zeros_like(rj), rj)
            yj = rj - lj[..., None] * prev
            return yj, yj

        xs = (js, l) if row_of is not None else (js, l, rhs)
        init = jnp.zeros_like(row_of(0) if row_of is not None else rhs[0])
        return jax.lax.scan(body, init, xs)[1]

    def _backward(self, tau, iu, y):
        """$x_j = (y_j - c_j x_{j+1}) / u_j$ with $c$ of the (tilde) system."""
        js = jnp.arange(self.rows)

        def body(nxt, row):
            j, up, iuj, yj = row
            _, _, c = self._row(tau, j, up, up, up)
            xj = (yj - c[..., None] * nxt) * iuj[..., None]
            return xj, xj

        return jax.lax.scan(body, jnp.zeros_like(y[0]), (js, self.upper, iu, y), reverse=True)[1]

    def factor(self, tau):
        tau = jnp.asarray(tau, dtype=self.diag.dtype)
        L, W = self.rows, self.blocks
        js = jnp.arange(L)

        def body(carry, row):
            u_prev, c_prev = carry
            j, lo, di, up = row
            a, b, c = self._row(tau, j, lo, di, up)
            lj = a / u_prev
            uj = b - lj * c_prev
            return (uj, c), (lj, 1.0 / uj)

        init = (jnp.ones_like(self.diag[0]), jnp.zeros_like(self.diag[0]))
        _, (l, iu) = jax.lax.scan(body, init, (js, self.lower, self.diag, self.upper))
        if W == 1:
            return _PartitionFactors(tau=tau, l=l, iu=iu, spikes=None, reduced=None, coupling=None)

        a = -tau * self.lower
        b = 1.0 - tau * self.diag
        c = -tau * self.upper
        # Spikes: the interior's response to unit values in the first / last row of its block.
        one, a1, cl = jnp.ones_like(a[0]), -a[1], -c[L - 2]

        def e_row(j):  # rows of the right-hand sides e_0 - a_1 e_1 and e_{L-1} - c_{L-2} e_{L-2}
            first = jnp.where(j == 0, one, jnp.where(j == 1, a1, jnp.zeros_like(one)))
            last = jnp.where(j == L - 1, one, jnp.where(j == L - 2, cl, jnp.zeros_like(one)))
            return jnp.stack([first, last], axis=-1)

        spikes = self._backward(tau, iu, self._forward(tau, l, e_row, interior=False))
        s_first, s_last = spikes[..., 0], spikes[..., 1]
        # Boundary system on z = (f_0, g_0, f_1, g_1, ...), f_w / g_w the first / last rows.
        f_lo = a[0]
        f_di = b[0] + c[0] * s_first[1]
        f_up = c[0] * s_last[1]
        g_lo = a[L - 1] * s_first[L - 2]
        g_di = b[L - 1] + a[L - 1] * s_last[L - 2]
        g_up = c[L - 1]

        def interleave(f, g):  # (W, *batch) x 2 -> (*batch, 2W)
            z = jnp.stack([f, g], axis=1)
            z = z.reshape((2 * W,) + z.shape[2:])
            return jnp.moveaxis(z, 0, -1)

        reduced = (interleave(f_lo, g_lo), interleave(f_di, g_di), interleave(f_up, g_up))
        return _PartitionFactors(
            tau=tau, l=l, iu=iu, spikes=spikes, reduced=reduced, coupling=(c[0], a[L - 1])
        )

    def solve(self, factors, rhs):
        return self._solve(factors, self._shaped(rhs)).reshape(-1)

    def _solve(self, factors, rhs):
        F = factors
        if self.blocks == 1:
            return self._backward(F.tau, F.iu, self._forward(F.tau, F.l, rhs, interior=False))
        L, W = self.rows, self.blocks
        p = self._backward(F.tau, F.iu, self._forward(F.tau, F.l, rhs, interior=True))
        c0, a_last = F.coupling
        rf = rhs[0] - c0[..., None] * p[1]
        rg = rhs[L - 1] - a_last[..., None] * p[L - 2]
        r = jnp.stack([rf, rg], axis=1).reshape((2 * W,) + rf.shape[1:])  # (2W, *batch, k)
        r_lo, r_di, r_up = F.reduced
        z = tridiagonal_solve(r_lo, r_di, r_up, jnp.moveaxis(r, 0, -2))  # (*batch, 2W, k)
        z = jnp.moveaxis(z, -2, 0).reshape((W, 2) + rf.shape[1:])
        s_first, s_last = F.spikes[..., 0], F.spikes[..., 1]
        return p + z[:, 0] * s_first[..., None] + z[:, 1] * s_last[..., None]


def _default_blocks(n: int, batch: int) -> int:
    """Blocks per chain for `PartitionedTridiagonalOperator`: enough lanes per sweep.

    A batch of 32 chains or more (the coherence bands) already fills the vectors: plain Thomas
    is then faster than blocks, which only add the boundary system."""
    if batch >= 32 or n < 64:
        return 1
    W = 2 ** int(np.floor(np.log2(max(1, np.sqrt(n)))))
    return int(max(1, min(W, 2048 // max(batch, 1), n // 16)))


class DenseOperator(AbstractStructuredOperator):
    """A dense real `(n, n)` matrix acting on states `(n,)` or `(n, k)`; LU once per step."""

    matrix: Float[Array, "n n"]

    def mv(self, y):
        return jnp.matmul(self.matrix, y, precision=jax.lax.Precision.HIGHEST)

    def factor(self, tau):
        n = self.matrix.shape[-1]
        eye = jnp.eye(n, dtype=self.matrix.dtype)
        return jax.scipy.linalg.lu_factor(eye - tau * self.matrix)

    def solve(self, factors, b):
        return jax.scipy.linalg.lu_solve(factors, b)


# --- the solver -----------------------------------------------------------------------------


def _linear_rescale(t0, t, t1):
    """(t - t0) / (t1 - t0), and 0 for an empty interval (no NaN, also in gradients)."""
    div = t1 - t0
    empty = div == 0
    safe = jnp.where(empty, jnp.ones_like(div), div)
    return jnp.where(empty, jnp.zeros_like(div), (t - t0) / safe)


def _powers(op, factors, tau, y0, n: int):
    r"""`(n, *y0.shape)`: $v_1 = S(\tau L y_0)$, $v_j = S v_{j-1}$ ($S = (I - \tau L)^{-1}$)."""
    return op.powers(factors, tau, y0, n)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _resolvent_powers(op: AbstractStructuredOperator, tau, y0, n: int):
    r"""The resolvent powers of a step, $v_1 = S(\tau L y_0)$, $v_j = S v_{j-1}$, $S = A^{-1}$,
    $A = I - \tau L$, with the derivative rule of the linear algebra.

    Differentiating the factorisation and the sweeps primitive by primitive stores every
    intermediate of the elimination and costs several solves per solve. Instead, with
    $D = d\tau\,L + \tau\,dL$ (so $dA = -D$),
    $$dv_1 = S\big(D(y_0 + v_1) + \tau L\,dy_0\big), \qquad dv_j = S\big(dv_{j-1} + Dv_j\big):$$
    one solve per power with the factors already computed, linear in the tangents. Reverse mode
    is its transpose (JAX transposes the solves: one transposed solve per power, and the
    cotangent of $L$ as products of the adjoint and the powers on the tridiagonal pattern).
    The same derivative as differentiating the solver line by line, up to round-off.
    """
    return _powers(op, op.factor(tau), tau, y0, n)


@_resolvent_powers.defjvp
def _resolvent_powers_jvp(n, primals, tangents):
    op, tau, y0 = primals
    dop, dtau, dy0 = tangents
    factors = op.factor(tau)
    V = _powers(op, factors, tau, y0, n)

    def D(x):
        return dtau * op.mv(x) + tau * dop.mv(x)

    dv1 = op.solve(factors, D(y0 + V[0]) + tau * op.mv(dy0))

    def body(dv, v):
        dv = op.solve(factors, dv + D(v))
        return dv, dv

    _, rest = jax.lax.scan(body, dv1, V[1:])
    return V, jnp.concatenate([dv1[None], rest])


class RosenbrockInterpolation(diffrax.AbstractLocalInterpolation):
    r"""Dense output of a Rosenbrock step (Hairer & Wanner's RODAS form).

    $y(\theta) = (1-\theta)y_0 + \theta[y_1 + (1-\theta)(\kappa_0 + \theta(\kappa_1 + \dots))]$,
    $\theta = (t - t_0)/(t_1 - t_0)$, with $\kappa_r = \sum_j H_{rj} v_j$ formed only where
    the output is evaluated (`v` are the resolvent powers of the step, `h` the weights).
    """

    t0: Float[Array, ""]
    t1: Float[Array, ""]
    y0: Array
    y1: Array
    v: Array
    h: Array

    def evaluate(self, t0, t1=None, left: bool = True):
        del left
        if t1 is not None:
            return self.evaluate(t1) - self.evaluate(t0)
        theta = _linear_rescale(self.t0, t0, self.t1).astype(self.y0.dtype)
        w = self.h[-1]
        for row in self.h[-2::-1]:
            w = row + theta * w
        poly = jnp.tensordot(w, self.v, axes=1, precision=jax.lax.Precision.HIGHEST)
        return (1 - theta) * self.y0 + theta * (self.y1 + (1 - theta) * poly)


def _operator_of(terms) -> AbstractStructuredOperator:
    term = terms
    # diffeqsolve wraps terms (e.g. in its private WrapTerm, for the direction of time).
    while not isinstance(term, diffrax.ODETerm) and isinstance(
        getattr(term, "term", None), diffrax.AbstractTerm
    ):
        term = term.term
    if not isinstance(term, diffrax.ODETerm) or not isinstance(
        term.vector_field, AbstractStructuredOperator
    ):
        raise TypeError(
            "Rosenbrock needs diffrax.ODETerm(op) with op a structured linear operator "
            "(TridiagonalOperator, PartitionedTridiagonalOperator or DenseOperator)"
        )
    return term.vector_field


class Rosenbrock(diffrax.AbstractAdaptiveSolver):
    r"""L-stable Rosenbrock method for linear autonomous ODEs $\dot y = Ly$ with structured $L$.

    Use as `diffrax.diffeqsolve(diffrax.ODETerm(op), Rosenbrock(), ...)` with `op` a
    `TridiagonalOperator`, `PartitionedTridiagonalOperator` or `DenseOperator`.

    Since $L$ is constant and all stages share one $\gamma$, each stage of the tableau is a
    polynomial in the resolvent $S = (I - \gamma h L)^{-1}$ applied to $y_0$; a step therefore
    computes $v_1 = S(\gamma h L y_0)$, $v_j = S v_{j-1}$ (one factorisation of
    $I - \gamma hL$, one product with $L$, one solve per stage) and forms the solution, the
    error estimate and the dense output as fixed combinations of the $v_j$ (see
    `_resolvent_power_weights`). This is exactly the published method, with none of the
    per-stage linear combinations of the general form: about a third of the memory traffic.
    The $v_j$ are increments, $O(h)$, so no $O(1)$ quantities cancel.

    **Arguments:**
    - `tableau`: a `RosenbrockTableau` or its name, `"rodas5p"` (default) or `"rodas4"`.
    """

    tableau: RosenbrockTableau = eqx.field(static=True, default=RODAS5P)

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar[Callable[..., RosenbrockInterpolation]] = RosenbrockInterpolation

    def __init__(self, tableau: RosenbrockTableau | str = RODAS5P):
        if isinstance(tableau, str):
            key = tableau.lower()
            if key not in _TABLEAUS:
                raise ValueError(
                    f"tableau must be one of {sorted(_TABLEAUS)} or a RosenbrockTableau, "
                    f"got {tableau!r}"
                )
            tableau = _TABLEAUS[key]
        if not isinstance(tableau, RosenbrockTableau):
            raise TypeError(f"tableau must be a RosenbrockTableau or a name, got {tableau!r}")
        self.tableau = tableau

    def order(self, terms):
        return self.tableau.order

    def error_order(self, terms):
        return self.tableau.embedded_order + 1

    def init(self, terms, t0, t1, y0, args):
        return None

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        m, e, hw = _resolvent_power_weights(self.tableau)
        op = _operator_of(terms)
        dtype = y0.dtype
        tau = self.tableau.gamma * jnp.asarray(terms.contr(t0, t1)).astype(dtype)
        # The solution and the error are read off the powers by one small matrix product, the
        # dense output only where it is evaluated.
        V = _resolvent_powers(op, tau, y0, len(m))
        weights = jnp.asarray(np.vstack([m, e]), dtype=dtype)
        out = jnp.tensordot(weights, V, axes=1, precision=jax.lax.Precision.HIGHEST)
        y1 = y0 + out[0]
        y_error = out[1]
        dense_info = dict(y0=y0, y1=y1, v=V, h=jnp.asarray(hw, dtype=dtype))
        return y1, y_error, dense_info, None, diffrax.RESULTS.successful


def rosenbrock(setting) -> Rosenbrock:
    """The `Rosenbrock` solver of a `SolverOptions.solver` setting: `None`/`"auto"` (RODAS5P),
    a tableau name, or a `Rosenbrock` instance."""
    if setting is None or (isinstance(setting, str) and setting == "auto"):
        return Rosenbrock()
    return Rosenbrock(setting) if isinstance(setting, str) else setting


def integrate(op, y0, ts, *, save, solver, controller, max_steps, adjoint, progress=False):
    """Solve $\\dot y = $ `op` $y$ from `ts[0]` to `ts[-1]`, saving `save(t, y, args)` at `ts`;
    failures are reported in the solution's `result` (no exception), for the caller to turn
    into its own message."""
    return diffrax.diffeqsolve(
        diffrax.ODETerm(op),
        solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=y0,
        saveat=diffrax.SaveAt(ts=ts, fn=save),
        stepsize_controller=controller,
        max_steps=max_steps,
        adjoint=adjoint,
        throw=False,
        progress_meter=diffrax.TqdmProgressMeter() if progress else diffrax.NoProgressMeter(),
    )
