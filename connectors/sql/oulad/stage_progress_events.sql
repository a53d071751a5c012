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
    -- narrow: the rows are sorted twice below, and each sort carries what it is given (the
    -- raw row joins back last)
    select
        s._row,
        trim(s.id_student)                                          as learner_id,
        trim(s.id_assessment)                                       as activity_id,
        oulad_days(s.date_submitted)                                as day,
        trim(s.is_banked)                                           as is_banked,
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
first_submissions as (
    -- a second submission of the same assessment adds no weight (the loader quarantines
    -- it as a duplicate event)
    select learner_id, activity_id, min(_row) as _row
    from submissions where problem is null group by all
),
cumulative as (
    select s.*,
        sum(case when f._row is not null then s.weight else 0 end) over (
            partition by s.course_id, s.learner_id order by s.day, try_cast(s.activity_id as bigint), s._row
            rows between unbounded preceding and current row)      as done_weight
    from submissions s
    left join first_submissions f on f._row = s._row
)
select
    'oulad-' || c.activity_id || '-' || c.learner_id                as event_id,
    c.learner_id,
    c.course_id,
    c.activity_id,
    case when c.is_banked = '1' then 'completed' else 'submitted' end as verb,
    oulad_at(c.starts_on, c.day, '00:00:00')                        as occurred_at,
    case when w.total > 0 then round(c.done_weight / w.total, 6)::varchar end as progress,
    r._file, c._row, r._raw, c.problem                              as _problem
from cumulative c
join oulad_studentAssessment r using (_row)
left join course_weight w using (course_id)
