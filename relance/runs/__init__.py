"""A campaign run, start to finish, without Prefect: its steps (`steps`: plan, deliver,
record), the two scheduled jobs made of them (`jobs`: a campaign's run, the hourly
delivery; the flows' tasks, and what `relance run` and `relance deliver` call without a
Prefect server), whether its sources are fresh enough (`freshness`), and when it runs
(`deployments`, the `run-<campaign>` entries of prefect.yaml). `flows/` wraps these steps.

May import: `campaign`, `engine`, `delivery`, `channels`, `feedback`, `team`, `warehouse`.
"""
