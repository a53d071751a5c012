-- studentAssessment.csv -> stg_oulad__progress_events: one event per submission, on its
-- day. A banked assessment (credit carried over from an earlier presentation) is
-- 'completed', a fresh one 'submitted'; both complete the activity. `progress` is the
-- weighted share of the presentation's assessments submitted so far (published weights,
-- exams included), so it agrees with what the engine computes from the calendar.
-- Submissions of presentations not selected are out of scope; those of an assessment
-- missing from assessments.csv are quarantined.
create or replace temp table /*@staging*/ as
with known as (
    -- every assessment of the file (selected or not), first row per id
    select trim(id_assessment) as activity_id,
           trim(code_module) || '-' || trim(code_presentation) as course_id
    from oulad_all_assessments
    qualify row_number() over (partition by trim(id_assessment) order by _row) = 1
),
selected as (
    select trim(id_assessment) as activity_id,
           trim(code_module) || '-' || trim(code_presentation) as course_id,
           coalesce(relance_num(weight), 0) as weight
    from oulad_assessments
    qualify row_number() over (partition by trim(id_assessment) order by _row) = 1
),
course_weight as (
    select course_id, sum(weight) as total from selected group by all
),
submissions as (
    select
        s._file, s._row, s._raw,
        trim(s.id_student)                                          as learner_id,
        trim(s.id_assessment)                                       as activity_id,
        s.date_submitted,
        oulad_days(s.date_submitted)                                as day,
        trim(s.is_banked)                                           as is_banked,
        k.activity_id is not null                                   as is_known,
        a.course_id, a.weight, u.starts_on,
        case
            when relance_blank(s.id_student) then 'missing id_student'
            when relance_blank(s.id_assessment) then 'missing id_assessment'
            when k.activity_id is null
                then 'unknown assessment: ' || trim(s.id_assessment) || ' (not in assessments.csv)'
            when relance_blank(s.date_submitted) then 'missing date_submitted'
            when oulad_not_days(s.date_submitted)
                then 'date_submitted is not a whole number of days: ' || s.date_submitted
            when coalesce(trim(s.is_banked), '') not in ('0', '1', '')
                then 'is_banked must be 0 or 1: ' || s.is_banked
            when u.course_id is null then oulad_undated(a.course_id)
        end                                                         as problem
    from oulad_studentAssessment s
    left join known k on k.activity_id = trim(s.id_assessment)
    left join selected a on a.activity_id = trim(s.id_assessment)
    left join oulad_usable u on u.course_id = a.course_id
    -- unknown assessments stay (quarantined); known ones of other presentations go
    where k.activity_id is null or a.activity_id is not null
),
ranked as (
    select *,
        -- a second submission of the same assessment adds no weight (the loader
        -- quarantines it as a duplicate event)
        problem is null and row_number() over (
            partition by learner_id, activity_id, problem is null order by _row) = 1 as counts
    from submissions
),
cumulative as (
    select *,
        sum(case when counts then weight else 0 end) over (
            partition by course_id, learner_id order by day, try_cast(activity_id as bigint), _row
            rows between unbounded preceding and current row)      as done_weight
    from ranked
)
select
    'oulad-' || c.activity_id || '-' || c.learner_id                as event_id,
    c.learner_id,
    c.course_id,
    c.activity_id,
    case when c.is_banked = '1' then 'completed' else 'submitted' end as verb,
    oulad_at(c.starts_on, c.day, '00:00:00')                        as occurred_at,
    case when w.total > 0 then round(c.done_weight / w.total, 6)::varchar end as progress,
    c._file, c._row, c._raw, c.problem                              as _problem
from cumulative c
left join course_weight w using (course_id)
