"""The community manager's desk (`relance desk`): a small web page behind a per-person login
where each person of the team file sees today's list, a learner's timeline, and records
contacts, outcomes and snoozes into `follow_up_actions`, which the engine reads on the next
run (issue 18)."""
