"""The paper's figures and their companions, each drawn from the library.

Every figure comes in three parts:

- `<name>_data(...)` computes the numbers (a dict of arrays; matplotlib is not imported),
- `draw_<name>(data)` draws them into a matplotlib `Figure` (from fresh numbers or from an
  entry of `results.json`, so a figure can be restyled without recomputing),
- `<name>(path, ...)` does both, writes the PNG and returns the numbers.

`reproduce` draws them all (the `jaxcoll reproduce` command).

```python
from jaxcoll.figures import draw_fig2_ergotropy, fig2_ergotropy_data

data = fig2_ergotropy_data(fast=True)  # no matplotlib needed
fig = draw_fig2_ergotropy(data)
fig.savefig("fig2.png")
```
"""

from ._figure_data import (
    FIG2_PAIRS as FIG2_PAIRS,
    FLOW_PAIRS as FLOW_PAIRS,
    OPT_BOUNDS as OPT_BOUNDS,
    energy_flows_data as energy_flows_data,
    fig2_ergotropy_data as fig2_ergotropy_data,
    fig3_scattering_integral_data as fig3_scattering_integral_data,
    gibbs_ergotropy as gibbs_ergotropy,
    heat_statistics_data as heat_statistics_data,
    optimisation_data as optimisation_data,
    phase_diagram_data as phase_diagram_data,
    summary_rows as summary_rows,
    thermalisation_data as thermalisation_data,
)
from ._figures import (
    draw_energy_flows as draw_energy_flows,
    draw_fig2_ergotropy as draw_fig2_ergotropy,
    draw_fig3_scattering_integral as draw_fig3_scattering_integral,
    draw_heat_statistics as draw_heat_statistics,
    draw_optimisation as draw_optimisation,
    draw_phase_diagram as draw_phase_diagram,
    draw_thermalisation as draw_thermalisation,
    energy_flows as energy_flows,
    fig2_ergotropy as fig2_ergotropy,
    fig3_scattering_integral as fig3_scattering_integral,
    heat_statistics as heat_statistics,
    optimisation as optimisation,
    phase_diagram as phase_diagram,
    reproduce as reproduce,
    save_figure as save_figure,
    thermalisation as thermalisation,
)
from ._table import print_table as print_table

__all__ = [
    "FIG2_PAIRS",
    "FLOW_PAIRS",
    "OPT_BOUNDS",
    "draw_energy_flows",
    "draw_fig2_ergotropy",
    "draw_fig3_scattering_integral",
    "draw_heat_statistics",
    "draw_optimisation",
    "draw_phase_diagram",
    "draw_thermalisation",
    "energy_flows",
    "energy_flows_data",
    "fig2_ergotropy",
    "fig2_ergotropy_data",
    "fig3_scattering_integral",
    "fig3_scattering_integral_data",
    "gibbs_ergotropy",
    "heat_statistics",
    "heat_statistics_data",
    "optimisation",
    "optimisation_data",
    "phase_diagram",
    "phase_diagram_data",
    "print_table",
    "reproduce",
    "save_figure",
    "summary_rows",
    "thermalisation",
    "thermalisation_data",
]
