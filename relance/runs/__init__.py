"""A campaign run, start to finish, without Prefect: its steps (`steps`: plan, deliver,
record), whether its sources are fresh enough (`freshness`), and when it runs
(`deployments`, the `run-<campaign>` entries of prefect.yaml). `flows/` wraps these steps.

May import: `campaign`, `engine`, `delivery`, `channels`, `feedback`, `warehouse`.
"""
