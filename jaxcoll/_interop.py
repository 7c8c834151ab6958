"""Conversion of states, operators and models to and from QuTiP.

jaxcoll orders spin states by ascending energy, index 0 is $m = -J$; QuTiP's `jmat`,
`spin_state` and `spin_coherent` put $m = +J$ first. For spins (`spin=True`, the default) the
conversions reverse the basis, so that `to_qutip(rho)` is the same physical state as `rho`. For a
general `CollisionalModel` pass `spin=False`: its basis (that of `h_s`) is used as it is.

QuTiP is an optional dependency and is imported only when these functions are called.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_qutip", "from_qutip", "qutip_lindblad"]


def _qutip():
    try:
        import qutip
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "jaxcoll's QuTiP interoperability needs qutip: `pip install qutip` (>= 5.0)"
        ) from None
    return qutip


def _flip(x, spin, axes):
    if not spin:
        return x
    for ax in axes:
        x = np.flip(x, axis=ax)
    return x


def to_qutip(x, *, spin: bool = True, kind: str = "auto"):
    r"""Convert a jaxcoll state or operator to a QuTiP `Qobj`.

    **Arguments:**
    - `x`: a `(d, d)` density matrix or operator, a `(d,)` vector, or a batch of them with a
      leading axis (`(n, d, d)`, e.g. `evolve(...).states`; `(n, d)` with `kind="populations"`,
      e.g. `evolve(...).populations`, or `kind="ket"`), in jaxcoll's basis order.
    - `spin`: reverse the basis (jaxcoll's $m = -J, \dots, J$ to QuTiP's $m = J, \dots, -J$).
      Use `spin=False` for a general model, whose basis is kept as it is.
    - `kind`: how to read a `(d,)` vector: `"auto"` and `"populations"` read it as energy
      populations (jaxcoll's convention for `(d,)` states) and return the diagonal density
      matrix; `"ket"` returns a ket. A 2-D array is a matrix for `"auto"` and a batch of
      vectors otherwise.

    **Returns:** a `Qobj` (an operator, or a ket for `kind="ket"`), or a list of them for a batch.
    """
    qutip = _qutip()
    if kind not in ("auto", "populations", "ket"):
        raise ValueError(f"kind must be 'auto', 'populations' or 'ket', got {kind!r}")
    a = np.asarray(x)
    batch_ndim = {"auto": 3, "populations": 2, "ket": 2}[kind]
    if a.ndim == batch_ndim:
        return [to_qutip(xi, spin=spin, kind=kind) for xi in a]
    if a.ndim == 1:
        v = np.ascontiguousarray(_flip(a, spin, (0,)))
        if kind == "ket":
            return qutip.Qobj(v.reshape(-1, 1).astype(complex))
        return qutip.Qobj(np.diag(v))
    if a.ndim == 2:
        if a.shape[0] != a.shape[1]:
            raise ValueError(f"x must be a square (d, d) matrix, got shape {a.shape}")
        return qutip.Qobj(np.ascontiguousarray(_flip(a, spin, (0, 1))))
    raise ValueError(f"x must have shape (d,) or (d, d), or a leading batch axis, got {a.shape}")


def from_qutip(qobj, *, spin: bool = True, density: bool = False):
    r"""Convert a QuTiP `Qobj` (or a list of them) to a NumPy array in jaxcoll's basis order.

    **Arguments:**
    - `qobj`: a ket, bra or operator `Qobj`, or a sequence of them.
    - `spin`: reverse the basis (QuTiP's $m = J, \dots, -J$ to jaxcoll's $m = -J, \dots, J$);
      `spin=False` keeps the basis.
    - `density`: return a ket as the density matrix $|\psi\rangle\langle\psi|$.

    **Returns:** `(d, d)` complex for operators (and for kets with `density=True`), `(d,)`
    complex for kets and bras; a stacked array for a sequence.
    """
    qutip = _qutip()
    if isinstance(qobj, list | tuple):
        return np.stack([from_qutip(q, spin=spin, density=density) for q in qobj])
    if not isinstance(qobj, qutip.Qobj):
        raise TypeError(f"qobj must be a qutip.Qobj or a list of them, got {type(qobj).__name__}")
    if qobj.isket or qobj.isbra:
        q = qobj if qobj.isket else qobj.dag()
        if density:
            q = q.proj()
        else:
            return _flip(q.full().reshape(-1), spin, (0,)).copy()
    elif not qobj.isoper:
        raise ValueError(f"qobj must be a ket, bra or operator, got type {qobj.type!r}")
    else:
        q = qobj
    return _flip(q.full(), spin, (0, 1)).copy()


def qutip_lindblad(model, *, spin: bool | None = None):
    r"""The Hamiltonian and collapse operators of a jaxcoll model, for `qutip.mesolve`.

    Written once for every `AbstractModel` (eq. 6): $H = h_S + h_{\rm eff}$ and the jump
    operators $L_c = \sqrt{r_c}A_c$ of `model.channels()`, taken from the working basis to the
    model's own basis (`from_working`; that of `h_s` for a `CollisionalModel`). For `SpinGas`
    (eq. 18) this is $H = \omega_S J_z$, $C = \{\sqrt{\Gamma_+}J_+, \sqrt{\Gamma_-}J_-\}$.

    **Arguments:**
    - `model`: any `AbstractModel` with concrete parameters.
    - `spin`: reverse the basis to QuTiP's spin order $m = J, \dots, -J$ (as `to_qutip`);
      default: the model's `qutip_spin_order` (`True` for `SpinGas`, else `False`).

    **Returns:** `(H, c_ops)`, a `Qobj` and a list of `Qobj` (channels with zero rate left out).
    """
    qutip = _qutip()
    from ._protocol import AbstractModel

    if not isinstance(model, AbstractModel):
        raise TypeError(
            f"model must be a jaxcoll model (an AbstractModel), got {type(model).__name__}"
        )
    if spin is None:
        spin = bool(getattr(model, "qutip_spin_order", False))
    d = model.dim
    h = np.diag(np.asarray(model.energies(), dtype=float)).astype(complex)
    h += np.asarray(model.h_eff_entries().dense())
    H = np.asarray(model.from_working(h))
    ch = model.channels()
    rates = np.asarray(ch.rates, dtype=float)
    A = np.zeros((ch.n_channels, d, d), dtype=complex)
    np.add.at(A, (ch.channel, ch.row, ch.col), np.asarray(ch.value))
    L = np.asarray(model.from_working(np.sqrt(rates)[:, None, None] * A))
    keep = rates > 0
    flip = lambda x: np.ascontiguousarray(_flip(x, spin, (0, 1)))
    return qutip.Qobj(flip(H)), [qutip.Qobj(flip(x)) for x in L[keep]]
