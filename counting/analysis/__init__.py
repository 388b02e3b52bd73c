"""From a results table to the phase transition: cell means with bootstrap intervals,
m_thr(d) by interpolation and by a logistic fit, and the log-log fit of m_thr against d.

Data flow: table.csv -> `table.cells` -> `threshold` (per d) -> `scaling` (across d);
`analyze.analyze` runs them all and `analyze.write` puts the tables next to table.csv.
"""
