"""The accelerator (GPU/TPU) code paths, forced on this CPU, against the CPU paths and NumPy.

`jaxcoll._config.backend_paths("accelerator")` traces the branches a GPU would run
(`jnp.linalg.eigvalsh` and `lax.sort` instead of the NumPy host callbacks, cyclic reduction
for `method="auto"`); `backend_paths("cpu")` the CPU branches. References: NumPy's `eigvalsh`
and first-order perturbation theory for spectra, eq. (23) written out in NumPy for the sorts,
and the CPU paths themselves for whole solves. A walk over the traced program checks that the
accelerator paths contain no host callback.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcoll
from jaxcoll import _config
from jaxcoll._evolve import _HOST_EIGH_MIN, _spectrum, _spin_operator
from jaxcoll._functionals import ergotropy_at
from jaxcoll._observables import _HOST_SORT_MIN, _eq23, _passive_energy
from jaxcoll._solver import PartitionedTridiagonalOperator, TridiagonalOperator

PATHS = ("cpu", "accelerator")
GAS = dict(omega_s=1.0, delta=4.0, T_a=5.0, T_m=1.0, E_R=1.0, gamma_tilde=1.0)


def _host_calls(jaxpr, in_loop=False, out=None):
    """`(name, in_loop, from_equinox_error)` for every host-callback primitive of a jaxpr,
    sub-jaxprs (loops, conds, jits, custom rules) included."""
    out = [] if out is None else out
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if "callback" in name:
            fn = eqn.params.get("callback")
            fn = getattr(fn, "callback_func", fn)
            # eqx.error_if: a branch taken only when a check fails, raising on the host
            raiser = getattr(fn, "__module__", "").startswith("equinox")
            out.append((name, in_loop, raiser))
        loop = in_loop or name == "while"
        for p in eqn.params.values():
            for sub in p if isinstance(p, list | tuple) else [p]:
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    _host_calls(sub.jaxpr, loop, out)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    _host_calls(sub, loop, out)
    return out


def _callbacks(fn, *args):
    """Host callbacks of the traced `fn` other than error branches."""
    return {c[0] for c in _host_calls(jax.make_jaxpr(fn)(*args).jaxpr) if not c[2]}


def _callbacks_in_loops(fn, *args):
    """Host callbacks of any kind, error branches included, inside a loop (a solver's steps)."""
    return [c for c in _host_calls(jax.make_jaxpr(fn)(*args).jaxpr) if c[1]]


def _hermitian(rng, n, d):
    a = rng.normal(size=(n, d, d)) + 1j * rng.normal(size=(n, d, d))
    return a + np.conj(np.swapaxes(a, -1, -2))


def test_backend_paths_rejects_unknown_names():
    with pytest.raises(ValueError, match="paths"):
        with _config.backend_paths("gpu"):
            pass


@pytest.mark.parametrize("paths", PATHS)
def test_spectrum_against_numpy(paths):
    d = _HOST_EIGH_MIN + 8  # large enough for the CPU path to use the host callback
    rng = np.random.default_rng(0)
    a, da = _hermitian(rng, 3, d), _hermitian(rng, 3, d)
    ref = np.linalg.eigvalsh(a)
    # first-order perturbation theory: dw_k = <v_k| dA |v_k> (non-degenerate spectrum)
    _, v = np.linalg.eigh(a)
    dref = np.real(np.einsum("nik,nij,njk->nk", np.conj(v), da, v))
    with _config.backend_paths(paths):
        w = jax.jit(_spectrum)(jnp.asarray(a))
        _, dw = jax.jit(lambda x, t: jax.jvp(_spectrum, (x,), (t,)))(jnp.asarray(a), da)
        cbs = _callbacks(_spectrum, jnp.asarray(a))
    np.testing.assert_allclose(w, ref, rtol=0, atol=1e-11 * np.max(np.abs(ref)))
    np.testing.assert_allclose(dw, dref, rtol=0, atol=1e-9 * np.max(np.abs(dref)))
    # the switch works: the CPU branch calls NumPy on the host, the accelerator branch does not
    assert bool(cbs) == (paths == "cpu")


def _eq23_numpy(q, e):
    """Eq. (23) and its gradient in q: W = sum_i e_i (q_i - q^desc_i)."""
    order = np.argsort(-q, kind="stable")
    w = e @ q - e @ q[order]
    grad = e.copy()
    grad[order] -= e  # q[order[k]] is multiplied by e[k] in the passive energy
    return w, grad


@pytest.mark.parametrize("paths", PATHS)
def test_sorted_forms_against_numpy(paths):
    d = _HOST_SORT_MIN + 89
    rng = np.random.default_rng(1)
    q = rng.dirichlet(np.ones(d), size=2)  # distinct entries, almost surely
    e = np.sort(rng.normal(size=d))
    with _config.backend_paths(paths):
        w = jax.jit(_eq23)(jnp.asarray(q), jnp.asarray(e))
        g = jax.jit(jax.grad(lambda x: _eq23(x, jnp.asarray(e))))(jnp.asarray(q[0]))
        passive = jax.jit(_passive_energy)(jnp.asarray(q), jnp.asarray(e))
        cbs = _callbacks(_eq23, jnp.asarray(q), jnp.asarray(e))
    for k in range(2):
        w_ref, _ = _eq23_numpy(q[k], e)
        np.testing.assert_allclose(w[k], w_ref, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(passive[k], e @ np.sort(q[k])[::-1], rtol=1e-12)
    np.testing.assert_allclose(g, _eq23_numpy(q[0], e)[1], rtol=1e-12, atol=1e-15)
    assert bool(cbs) == (paths == "cpu")


def test_auto_method_takes_cyclic_reduction_on_accelerators():
    n = 20_001  # a chain the CPU solves by the partitioned sweep
    lo, di, up = (np.zeros(n), -np.ones(n), np.zeros(n))
    with _config.backend_paths("cpu"):
        cpu_op = _spin_operator(lo, di, up, "auto")
    with _config.backend_paths("accelerator"):
        gpu_op = _spin_operator(lo, di, up, "auto")
        gpu_batch = _spin_operator(*(np.zeros((8, 4096)),) * 3, "auto")
        explicit = _spin_operator(lo, di, up, "partition")  # an explicit choice is kept
    assert isinstance(cpu_op, PartitionedTridiagonalOperator)
    assert isinstance(gpu_op, TridiagonalOperator) and gpu_op.method == "cyclic"
    assert isinstance(gpu_batch, TridiagonalOperator) and gpu_batch.method == "cyclic"
    assert isinstance(explicit, PartitionedTridiagonalOperator)


def _populations_run(J, dtype=None, rtol=1e-8, atol=1e-10):
    gas = jaxcoll.SpinGas(J, **GAS)
    p0 = np.zeros(2 * J + 1)
    p0[0] = 1.0
    ts = np.linspace(0.0, 1.3, 9)
    return jaxcoll.evolve(
        gas, p0, ts, rtol=rtol, atol=atol, dtype=dtype, observables=("energy", "ergotropy")
    )


def test_populations_solve_same_on_both_paths():
    # d = 10001: sorted on the host and solved by the partitioned sweep on the CPU path (chains
    # of 8192 entries or more), by lax.sort and cyclic reduction on the accelerator path
    J = 5000
    runs = {}
    for paths in PATHS:
        with _config.backend_paths(paths):
            runs[paths] = _populations_run(J)
    cpu, acc = runs["cpu"], runs["accelerator"]
    np.testing.assert_allclose(acc.populations, cpu.populations, rtol=0, atol=1e-9)
    np.testing.assert_allclose(acc.energy, cpu.energy, rtol=0, atol=1e-8 * 2 * J)
    # eq. (23) written out in NumPy on the accelerator run's own populations
    e = np.arange(2 * J + 1) - J
    w_ref = [_eq23_numpy(np.asarray(p), e)[0] for p in acc.populations]
    np.testing.assert_allclose(acc.ergotropy, np.maximum(w_ref, 0), rtol=0, atol=1e-9)


def test_full_density_matrix_same_on_both_paths():
    J = 20  # d = 41: spectra through the host callback on the CPU path
    gas = jaxcoll.SpinGas(J, **GAS)
    rho0 = jaxcoll.spin_coherent_state(J, np.pi / 2)
    ts = np.linspace(0.0, 2.0, 5)
    runs = {}
    for paths in PATHS:
        with _config.backend_paths(paths):
            runs[paths] = jaxcoll.evolve(gas, rho0, ts, rtol=1e-8, atol=1e-10)
    cpu, acc = runs["cpu"], runs["accelerator"]
    np.testing.assert_allclose(acc.states, cpu.states, rtol=0, atol=1e-10)
    for name in ("energy", "ergotropy", "entropy"):
        np.testing.assert_allclose(getattr(acc, name), getattr(cpu, name), rtol=0, atol=1e-9)
    # von Neumann entropy from NumPy's spectrum of the accelerator run's states
    w = np.clip(np.linalg.eigvalsh(np.asarray(acc.states)), 1e-300, None)
    np.testing.assert_allclose(acc.entropy, -np.sum(w * np.log(w), axis=-1), atol=1e-9)


def test_gradient_same_on_both_paths():
    J = 260  # d = 521: eq. (23) sorted on the host on the CPU path
    x0 = jnp.asarray([1.0, 0.4, 1.0])

    def w(x):
        p = {"T_a": x[0], "T_m": x[1], "delta": x[2]}
        return ergotropy_at(p, 3.0, J=J, omega_s=1.0, density=0.01, coupling=1.0)

    grads = {}
    for paths in PATHS:
        with _config.backend_paths(paths):
            grads[paths] = jax.jit(jax.value_and_grad(w))(x0)
    np.testing.assert_allclose(grads["accelerator"][0], grads["cpu"][0], rtol=1e-12)
    np.testing.assert_allclose(grads["accelerator"][1], grads["cpu"][1], rtol=1e-9)


def test_no_host_callback_in_accelerator_solves():
    """Every traced solve on the accelerator paths stays on the device: populations with eq.
    (23) at d > 512, the full density matrix with spectra, and a vmapped scan point."""
    J = 300
    gas = jaxcoll.SpinGas(J, **GAS)
    p0 = jnp.zeros(2 * J + 1).at[0].set(1.0)
    ts = jnp.linspace(0.0, 1.0, 4)
    small = jaxcoll.SpinGas(20, **GAS)
    rho0 = jnp.asarray(jaxcoll.spin_coherent_state(20, np.pi / 2))

    def pops(p):
        return jaxcoll.evolve(gas, p, ts, observables=("energy", "ergotropy")).ergotropy

    def full(r):
        res = jaxcoll.evolve(small, r, ts, observables=("ergotropy", "entropy"))
        return res.ergotropy, res.entropy

    def scan_point(tm):
        p = {"T_a": 5.0, "T_m": tm, "delta": 1.0}
        return ergotropy_at(p, 3.0, J=J, omega_s=1.0, density=0.01, coupling=1.0)

    batch = jnp.linspace(0.1, 1.0, 4)
    with _config.backend_paths("accelerator"):
        assert _callbacks(pops, p0) == set()
        assert _callbacks(full, rho0) == set()
        assert _callbacks(jax.vmap(scan_point), batch) == set()
        # not even an error branch inside the solver's loop (forward and reverse mode)
        assert _callbacks_in_loops(jax.vmap(scan_point), batch) == []
        assert _callbacks_in_loops(jax.grad(scan_point), 0.5) == []
    with _config.backend_paths("cpu"):  # the walk sees callbacks where there are some
        assert _callbacks(pops, p0)
        assert _callbacks(full, rho0)


def test_float32_on_accelerator_paths():
    # README: float32 with tolerances no tighter than ~1e-6; errors in units of 2J
    J = 1000
    with _config.backend_paths("accelerator"):
        r32 = _populations_run(J, dtype=jnp.float32, rtol=1e-5, atol=1e-7)
    with _config.backend_paths("cpu"):
        r64 = _populations_run(J)
    assert r32.populations.dtype == jnp.float32
    np.testing.assert_allclose(r32.energy, r64.energy, rtol=0, atol=1e-4 * 2 * J)
    np.testing.assert_allclose(r32.ergotropy, r64.ergotropy, rtol=0, atol=1e-4 * 2 * J)
    np.testing.assert_allclose(r32.populations, r64.populations, rtol=0, atol=1e-4)
