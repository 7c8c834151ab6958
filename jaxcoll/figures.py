"""The paper's figures and their companions, each drawn from the library.

Every figure maker writes a PNG when given a `path` and returns a dictionary of the plotted
numbers (plain lists and floats, ready for `json.dump`); `reproduce` draws them all (the
`jaxcoll reproduce` command). Needs matplotlib.

```python
from jaxcoll.figures import fig2_ergotropy

data = fig2_ergotropy("fig2.png", fast=True)
```
"""

from ._figures import (
    OPT_BOUNDS as OPT_BOUNDS,
    energy_flows as energy_flows,
    fig2_ergotropy as fig2_ergotropy,
    fig3_scattering_integral as fig3_scattering_integral,
    gibbs_ergotropy as gibbs_ergotropy,
    optimisation as optimisation,
    phase_diagram as phase_diagram,
    print_table as print_table,
    reproduce as reproduce,
    summary_rows as summary_rows,
    thermalisation as thermalisation,
)

__all__ = [
    "OPT_BOUNDS",
    "energy_flows",
    "fig2_ergotropy",
    "fig3_scattering_integral",
    "gibbs_ergotropy",
    "optimisation",
    "phase_diagram",
    "print_table",
    "reproduce",
    "summary_rows",
    "thermalisation",
]
