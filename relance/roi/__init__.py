"""ROI review: the cost model, the HTML report, exports, backtests and the risk score.

Every figure comes from a `kpi_*` view of the warehouse (warehouse/views/), so what the
report shows is what an analyst finds there.
"""
