r"""Is the master equation valid for this gas? The paper's assumptions as dimensionless numbers.

The collisional master equation (6) rests on three approximations, each of which is a statement
"$x \ll 1$" about a number that the model's parameters fix:

- **Low density** (Sec. "Collisional dynamics", note [28]): collisions are independent binary
  events if there is much less than one gas particle per interaction volume, $nR^3 \ll 1$. The
  Maxwell-Boltzmann momentum distribution of eq. (1)-(2) moreover needs a non-degenerate gas,
  $n\lambda_{\rm th}^3 = nR^3\,(4\pi E_R/k_BT_M)^{3/2} \ll 1$.
- **Born approximation** (eq. D2): the interaction $V_0\,v\otimes g(|x|)$ must be weak: the
  deepest channel potential $|V_0|\,\|v\|$ small against $E_R = \hbar^2/2mR^2$, and the Born
  scattering length $a_B = (m/2\pi\hbar^2)\,|V_0|\,\|v\|\int d^3x\, g
  = (|V_0|\|v\|/E_R)\,\tilde g(0)\,R/4\pi$ small against the range $R$ ($\tilde g(0) = (2\pi)^{3/2}$
  for the Gaussian of eq. D1).
- **Markov coarse-graining** (eq. 3-5): the interval $\Delta t$ over which eq. (4) is
  coarse-grained must be longer than a collision yet short against the time between jumps,
  $\tau_c \ll \Delta t \ll 1/\Gamma_{\max}$. Here $\tau_c = \hbar/\min(E_R, k_BT_M)$: the
  collision time $\hbar/E_R$ set by the momentum transfer $\hbar/R$ (the width of
  $I(\alpha, s)$ for $s < 0$) and the thermal time $\hbar/k_BT_M$ of the motion (its width for
  $s > 0$), and $\Gamma_{\max}$ is the largest total jump rate of any state. Channels that share
  an ancilla transition but differ in their system Bohr frequency must be resolved,
  $\Gamma_{\max} \ll |\mathcal E - \mathcal E'|$, for them to add incoherently as in eq. (6);
  channels with different ancilla transitions never interfere (the ancilla is left in
  orthogonal states), so the ancilla frequencies need not be resolved.

`check_validity` computes these numbers, returns a `ValidityReport` whose `str` is a table, and
issues a `ValidityWarning` for every violated criterion. Not checked (not model parameters): a
heavy system $M \gg m$ (static scattering centre) and micro-reversibility (eq. 9).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import jax
import numpy as np

__all__ = ["Criterion", "ValidityReport", "ValidityWarning", "check_validity"]

# Volume integral of the Gaussian profile exp(-x^2 / 2R^2) of eq. (D1), in units of R^3.
_GAUSSIAN_VOLUME = (2.0 * math.pi) ** 1.5

_ORDER = (
    "low_density",
    "degeneracy",
    "born_strength",
    "born_length",
    "dilute_weak",
    "markov",
    "secular",
)


class ValidityWarning(UserWarning):
    """A parameter set violates an assumption of the master equation (see `check_validity`)."""


class Criterion(NamedTuple):
    """One assumption as a dimensionless number that must be small.

    **Fields:**
    - `name`: short identifier (`"low_density"`, `"degeneracy"`, `"born_strength"`,
      `"born_length"`, `"dilute_weak"`, `"markov"`, `"secular"`).
    - `quantity`: the number's formula, in plain text.
    - `value`: the number (`None` when the model's parameters do not determine it).
    - `threshold`: the criterion holds when `value <= threshold`.
    - `ok`: `True` (holds), `False` (violated) or `None` (cannot be decided).
    - `explanation`: what the number means and which assumption of the paper it tests.
    - `assumption`: the assumption alone, one sentence (what the warnings print).
    """

    name: str
    quantity: str
    value: float | None
    threshold: float
    ok: bool | None
    explanation: str
    assumption: str

    @property
    def status(self) -> str:
        if self.ok is None:
            return "unknown" if self.value is None else "compatible"
        if self.value is None:
            return "not needed"
        return "ok" if self.ok else "VIOLATED"

    def message(self) -> str:
        """One line: the violated (or undecidable) criterion with its number."""
        shown = "unknown" if self.value is None else f"{self.value:.3g}"
        return f"{self.name}: {self.quantity} = {shown} (should be <= {self.threshold:g}). " + (
            self.assumption
        )


@dataclasses.dataclass(frozen=True)
class ValidityReport:
    """What `check_validity` returns: the criteria and the scales they were computed from.

    **Fields:**
    - `criteria`: tuple of `Criterion`.
    - `scales`: the rates and times behind the numbers: `gamma_tilde` ($\\tilde\\Gamma$),
      `gamma_max` (largest total jump rate), `tau_c` (collision / thermal time), `v_norm`
      ($\\|v\\|$), `profile_volume` ($\\tilde g(0)$, in units of $R^3$).
    - `model`: a short description of the model.

    `report["markov"]` picks a criterion by name; `report.ok` is `True` when none is violated;
    `str(report)` is a table.
    """

    criteria: tuple[Criterion, ...]
    scales: Mapping[str, float]
    model: str

    def __getitem__(self, name: str) -> Criterion:
        for c in self.criteria:
            if c.name == name:
                return c
        raise KeyError(f"no criterion {name!r}; have {[c.name for c in self.criteria]}")

    @property
    def ok(self) -> bool:
        """No criterion is violated (undecidable ones do not count as violated)."""
        return not self.violated

    @property
    def violated(self) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if c.ok is False)

    @property
    def unknown(self) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if c.ok is None)

    def __str__(self) -> str:
        head = ("criterion", "quantity", "value", "threshold", "status")
        rows = [
            (
                c.name,
                c.quantity,
                "-" if c.value is None else f"{c.value:.3g}",
                f"{c.threshold:.3g}",
                c.status,
            )
            for c in self.criteria
        ]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        line = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip()
        s = self.scales
        out = [
            f"validity of the master equation for {self.model}",
            f"  Gamma~ = {s['gamma_tilde']:.4g}, largest jump rate Gamma_max = "
            f"{s['gamma_max']:.4g}, collision time tau_c = {s['tau_c']:.4g}, "
            f"||v|| = {'unknown' if s['v_norm'] is None else format(s['v_norm'], '.4g')} "
            "(hbar = k_B = 1)",
            "",
            line(head),
            line(["-" * w for w in widths]),
            *(line(r) for r in rows),
            "",
        ]
        out += [f"{c.name}: {c.explanation}" for c in self.criteria]
        verdict = (
            "all decidable criteria hold"
            if self.ok
            else f"{len(self.violated)} criterion(s) violated: "
            + ", ".join(c.name for c in self.violated)
        )
        out += ["", verdict + (f"; {len(self.unknown)} undecidable" if self.unknown else "")]
        return "\n".join(out)


def _concrete_float(name: str, x) -> float:
    if isinstance(x, jax.core.Tracer):
        raise TypeError(
            f"check_validity needs concrete parameters, got a traced {name}; call it outside "
            "jit/vmap/grad"
        )
    value = float(np.asarray(x))
    if not math.isfinite(value):
        raise ValueError(f"check_validity: {name} must be finite, got {value}")
    return value


def _profile_volume(model) -> float:
    """$\\tilde g(0) = \\int d^3x\\, g(|x|)/R^3$ of the model's interaction profile."""
    profile = getattr(model, "profile", None)
    if profile is None:
        return _GAUSSIAN_VOLUME
    return _concrete_float("profile.fourier(0)", profile.fourier(0.0))


def _scales(model):
    r"""`(||v|| or None, Gamma_max, channels)` of any `AbstractModel`, from its channels:
    $\Gamma_{\max}$ is the largest eigenvalue of $K = \sum_c r_c A_c^\dagger A_c$ and the
    channels are `(Bohr frequency, ancilla energy change)` pairs. $\|v\|$ comes from the
    model's `coupling_norm()` when it has one."""
    from ._relaxation import _Generator

    G = _Generator(model).G
    K = -(G + G.conj().T).tocsr()
    K.eliminate_zeros()
    d = model.dim
    off = K - _sparse_diag(K)
    if off.count_nonzero() == 0:
        gamma_max = float(np.max(np.real(K.diagonal()), initial=0.0))
    elif d <= 4096:
        gamma_max = float(np.max(np.linalg.eigvalsh(K.toarray())))
    else:
        from scipy.sparse.linalg import eigsh

        gamma_max = float(eigsh(K, k=1, which="LA", return_eigenvectors=False)[0])
    norm = getattr(model, "coupling_norm", None)
    v_norm = None if norm is None else _concrete_float("||v||", norm())
    ch = model.channels()
    bohr = np.asarray(ch.bohr, dtype=float)
    anc = np.asarray(ch.ancilla, dtype=float)
    rates = np.asarray(ch.rates, dtype=float)
    keep = rates > 0
    channels = list(zip(bohr[keep].tolist(), anc[keep].tolist(), strict=True))
    return v_norm, gamma_max, channels


def _sparse_diag(K):
    import scipy.sparse as sp

    return sp.diags(K.diagonal(), format="csr")


def _min_separation(channels) -> float | None:
    """Smallest $|\\mathcal E - \\mathcal E'|$ of distinct channels with one ancilla energy
    change (one transition for a non-degenerate ancilla)."""
    groups: dict[float, list[float]] = {}
    for bohr, anc in channels:
        groups.setdefault(round(anc, 12), []).append(bohr)
    seps = []
    for freqs in groups.values():
        f = np.sort(np.unique(np.asarray(freqs)))
        if len(f) > 1:
            seps.append(float(np.min(np.diff(f))))
    return min(seps) if seps else None


def _thresholds(threshold) -> dict[str, float]:
    if isinstance(threshold, Mapping):
        bad = set(threshold) - set(_ORDER)
        if bad:
            raise ValueError(f"threshold names must be among {_ORDER}, got {sorted(bad)}")
        base = {k: 0.1 for k in _ORDER}
        base.update({k: float(v) for k, v in threshold.items()})
    else:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise TypeError(f"threshold must be a number or a mapping, got {threshold!r}")
        base = {k: float(threshold) for k in _ORDER}
    for k, v in base.items():
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"threshold for {k} must be finite and > 0, got {v!r}")
    return base


def check_validity(model, *, threshold: float | Mapping[str, float] = 0.1, warn: bool = True):
    r"""Check the low-density, Born and Markov assumptions of the master equation for `model`.

    Each criterion is a dimensionless number $x$ that the paper requires to be $\ll 1$; it
    holds when $x \le$ `threshold`:

    - `low_density`: $nR^3$; independent binary collisions (note [28]).
    - `degeneracy`: $n\lambda_{\rm th}^3 = nR^3(4\pi E_R/T_M)^{3/2}$; a Maxwell-Boltzmann
      gas, eq. (1)-(2).
    - `born_strength`: $|V_0|\,\|v\|/E_R$; the first Born approximation, eq. (D2).
    - `born_length`: $|a_B|/R = |V_0|\,\|v\|\,\tilde g(0)/(4\pi E_R)$; the same, through
      the zero-energy scattering length.
    - `dilute_weak` (only `gamma_tilde` given): $n\lambda_{\rm th}^3(V_0\|v\|/E_R)^2
      = 2\hbar\tilde\Gamma\|v\|^2/E_R$; both of the above, limit `threshold`$^3$.
    - `markov`: $\Gamma_{\max}\tau_c$ with $\tau_c = \hbar/\min(E_R, k_BT_M)$; short and
      infrequent collisions, eq. (3)-(5).
    - `secular`: $\Gamma_{\max}/\min|\mathcal E - \mathcal E'|$; channels of one ancilla
      transition resolved, eq. (6).

    $\|v\|$ is the largest $|$eigenvalue$|$ of the coupling ($\sqrt{J(J+1)}$ or $J + 1/2$ for the
    spin model, whose channel amplitudes grow with the ladder coefficients), $\Gamma_{\max}$ the
    largest eigenvalue of $\sum_c L_c^\dagger L_c$ (the largest total jump rate of any state), and
    $\tilde g(0)$ the volume integral of the interaction profile in units of $R^3$ (the model's
    `profile.fourier(0.0)` if it has one, else $(2\pi)^{3/2}$ for the Gaussian of eq. D1).
    With `gamma_tilde` alone, $n$ and $V_0$ are not separately known: the first four criteria are
    undecidable (`ok=None`) and `dilute_weak` can only be violated.

    **Arguments:**
    - `model`: a `SpinGas` or `CollisionalModel` with concrete parameters.
    - `threshold`: the bound for "$\ll 1$", one number or a mapping from criterion names to
      numbers (others keep 0.1; `dilute_weak` uses the cube of `low_density`'s unless given).
    - `warn`: issue a `ValidityWarning` for every violated criterion.

    **Returns:** a `ValidityReport`.
    """
    from ._protocol import AbstractModel

    if not isinstance(model, AbstractModel):
        raise TypeError(
            f"model must be a jaxcoll model (an AbstractModel), got {type(model).__name__}"
        )
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(model)):
        raise TypeError(
            "check_validity needs concrete model parameters, got traced ones; call it outside "
            "jit/vmap/grad"
        )
    th = _thresholds(threshold)
    if not (isinstance(threshold, Mapping) and "dilute_weak" in threshold):
        th["dilute_weak"] = th["low_density"] ** 3
    v_norm, gamma_max, channels = _scales(model)
    desc = (
        f"{type(model).__name__}(d={model.dim}, {len(channels)} channels, "
        f"T_a={float(model.T_a):g}, T_m={float(model.T_m):g})"
    )
    E_R = _concrete_float("E_R", model.E_R)
    T_m = _concrete_float("T_m", model.T_m)
    scale = getattr(model, "rate_scale", None)
    gamma_tilde = math.nan if scale is None else _concrete_float("gamma_tilde", scale())
    g0 = _profile_volume(model)
    alpha = E_R / T_m
    degeneracy_factor = (4.0 * math.pi * alpha) ** 1.5  # lambda_th^3 / R^3
    tau_c = 1.0 / min(E_R, T_m)

    crit = []

    def add(name, quantity, value, meaning, assumption="", ok="compare"):
        t = th[name]
        if ok == "compare":
            ok = None if value is None else bool(value <= t)
        text = f"{meaning}. {assumption}" if assumption else meaning
        crit.append(Criterion(name, quantity, value, t, ok, text, assumption or meaning))

    shown_norm = "unknown" if v_norm is None else f"{v_norm:.3g}"
    if getattr(model, "density", None) is not None:
        density = _concrete_float("density", model.density)
        coupling = abs(_concrete_float("coupling", model.coupling))
        strength = None if v_norm is None else coupling * v_norm
        add(
            "low_density",
            "n R^3",
            density,
            "gas particles per interaction volume R^3",
            "The low-density limit (note [28]) needs "
            "<< 1, so that collisions are independent binary events.",
        )
        add(
            "degeneracy",
            "n lambda_th^3",
            density * degeneracy_factor,
            f"phase-space density, n R^3 (4 pi E_R/T_M)^(3/2) with (4 pi E_R/T_M)^(3/2) = "
            f"{degeneracy_factor:.3g}",
            "The Maxwell-Boltzmann motion of eq. (1)-(2) needs a "
            "non-degenerate gas, << 1 (a Bose gas condenses at 2.612).",
        )
        add(
            "born_strength",
            "|V0| ||v|| / E_R",
            strength,
            f"depth of the strongest channel potential (||v|| = {shown_norm}) over "
            "E_R = hbar^2/2mR^2",
            "The first Born amplitude (D2) needs << 1 (for fast particles, "
            "kR >> 1, the condition relaxes to << kR).",
        )
        add(
            "born_length",
            "|a_B| / R",
            None if strength is None else strength * g0 / (4.0 * math.pi),
            f"zero-energy Born scattering length (|V0| ||v||/E_R) g~(0)/4pi over the range R, "
            f"g~(0) = {g0:.4g} the profile's volume integral in units of R^3",
            "The Born approximation (D2) needs << 1.",
        )
    else:
        unknown = "not known from gamma_tilde alone (give density and coupling)"
        add("low_density", "n R^3", None, f"particles per interaction volume R^3, {unknown}.")
        add("degeneracy", "n lambda_th^3", None, f"phase-space density of the gas, {unknown}.")
        add("born_strength", "|V0| ||v|| / E_R", None, f"Born parameter, {unknown}.")
        add("born_length", "|a_B| / R", None, f"Born scattering length over R, {unknown}.")
        joint = None if v_norm is None else 2.0 * gamma_tilde * v_norm**2 / E_R
        add(
            "dilute_weak",
            "n lambda_th^3 (V0 ||v||/E_R)^2",
            joint,
            "equals 2 hbar Gamma~ ||v||^2 / E_R (eq. D4), the only combination of density and "
            "coupling that gamma_tilde fixes",
            "A non-degenerate gas with a Born-weak interaction "
            f"(each number <= {th['low_density']:g}) needs it <= {th['dilute_weak']:.3g}; below "
            "that the separate criteria stay undecidable.",
            ok=False if joint is not None and joint > th["dilute_weak"] else None,
        )
    add(
        "markov",
        "Gamma_max tau_c",
        gamma_max * tau_c,
        f"largest total jump rate Gamma_max times tau_c = hbar/min(E_R, k_B T_M) = {tau_c:.3g} "
        "(collision time hbar/E_R, thermal time hbar/k_B T_M of the motion)",
        "The coarse-graining of eq. (3)-(5) needs collisions short and infrequent, "
        "tau_c << Delta t << 1/Gamma_max.",
    )
    sep = _min_separation(channels)
    if sep is None:
        add(
            "secular",
            "Gamma_max / min|E - E'|",
            None,
            "no two channels share an ancilla transition: the ancilla record tells every "
            "pair apart, so eq. (6) needs no resolved system or ancilla frequencies.",
            ok=True,
        )
    else:
        add(
            "secular",
            "Gamma_max / min|E - E'|",
            gamma_max / sep if sep > 0 else math.inf,
            f"largest jump rate over the smallest separation {sep:.3g} of system Bohr "
            "frequencies within one ancilla transition",
            "Eq. (6) adds such channels incoherently, which needs them resolved, << 1.",
        )
    report = ValidityReport(
        criteria=tuple(crit),
        scales=dict(
            gamma_tilde=gamma_tilde,
            gamma_max=gamma_max,
            tau_c=tau_c,
            v_norm=v_norm,
            profile_volume=g0,
        ),
        model=desc,
    )
    if warn:
        for c in report.violated:
            warnings.warn(c.message(), ValidityWarning, stacklevel=2)
    return report
