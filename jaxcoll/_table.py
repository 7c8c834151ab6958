"""Plain-text tables for the command line and `reproduce` (no matplotlib, no JAX)."""

from __future__ import annotations

import sys

__all__ = ["print_table"]


def print_table(rows, headers, file=None):
    """Print `rows` (sequences of numbers / strings) as an aligned plain-text table."""
    file = sys.stdout if file is None else file
    cells = [[f"{v:.6g}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)), file=file)
