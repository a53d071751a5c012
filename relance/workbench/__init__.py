"""The learning designer's workbench: the `tests:` block run on throwaway warehouses
(`testbench`), one learner's message previewed (`preview`, `digest_preview`), a weekly replay
(`replay`) and a plan compared with another (`plan_diff`).
"""
