-- Study history: what a source says of a learner's studies besides this course's events,
-- read by the risk score (relance/engine/sql/risk_features.sql). Never demographics: no
-- gender, age, disability, region, deprivation or prior education here, nor anywhere in
-- the warehouse (tests/test_roi_risk.py fails if one enters the risk features).

-- One row per learner per course: how many times they had attempted the course before
-- (OULAD's num_of_prev_attempts) and the credits they were studying at once when they
-- registered (studied_credits, this course's included). Written by the connectors' loader
-- (connectors/sql/load_study_history.sql).
create table study_history (
    learner_id         varchar not null,
    course_id          varchar not null,
    previous_attempts  integer,
    credits            integer,
    source             varchar not null,
    loaded_at          timestamptz not null default current_timestamp,
    primary key (learner_id, course_id)
);

-- The risk model a backtest scored with (its AUC by course week is in backtest_auc):
-- null when the campaign does not use the risk score and no model was trained for it.
alter table backtest_runs add column risk_model_id varchar;

-- How a risk model was fitted (e.g. 'scikit-learn 1.9.1 LogisticRegression, C=1.0').
alter table risk_models add column fitted_with varchar;
