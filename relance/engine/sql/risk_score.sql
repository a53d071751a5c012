-- The risk score: one row per learner and course of the features query, the logistic
-- regression of the latest risk model over its standardised features (risk_coefficients).
with features as (
/*@features*/
),
model as (
    select * from risk_coefficients
    where model_id = (select arg_max(model_id, created_at) from risk_models)
),
tall as (
    unpivot features on columns(* exclude (learner_id, course_id)) into name feature value x
)
select l.learner_id, l.course_id,
       1 / (1 + exp(-(any_value(i.coefficient)
                      + sum(m.coefficient * (l.x - m.mean) / m.sd)))) as risk
from tall l
join model m using (feature)
cross join (select coefficient from model where feature = '(intercept)') i
group by all
