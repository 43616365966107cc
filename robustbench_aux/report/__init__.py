"""Reports: HTML page + CSV tables from evaluated runs, and the RobustBench leaderboard export.

- :func:`build_report` -- ``index.html`` (self-contained, inline SVG figures) and CSVs;
- :func:`banner_items` -- every way the runs depart from the paper's setting (the page's banner);
- :func:`load_runs`, :func:`check_comparable` -- reading runs and refusing incomparable ones;
- :func:`export_robustbench` -- one leaderboard JSON per run plus the unaggregated CSV.
"""

from robustbench_aux.report.banner import banner_items
from robustbench_aux.report.export import export_robustbench, robustbench_entry
from robustbench_aux.report.render import build_report
from robustbench_aux.report.runs import RunRecord, check_comparable, load_runs

__all__ = [
    "RunRecord",
    "banner_items",
    "build_report",
    "check_comparable",
    "export_robustbench",
    "load_runs",
    "robustbench_entry",
]
