"""The learning designer's workbench: the `tests:` block run on throwaway warehouses
(`testbench`), one learner's message previewed (`preview`, `digest_preview`), a weekly replay
(`replay`), a plan compared with another (`plan_diff`) and the learners two campaigns
would both write to in a week (`collisions`).

Reads the same models and runs the same engine and rendering; writes nothing that stays.
May import: `campaign`, `engine`, `delivery`, `channels`, `warehouse`.
"""
