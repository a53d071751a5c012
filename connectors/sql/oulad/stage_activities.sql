-- assessments.csv (and vle.csv when asked) -> stg_oulad__activities: the course calendar.
-- An assessment is due at the end of its day; one without a date (some exams) at the end
-- of the presentation, as the dataset's documentation says. Weights are as published.
create or replace temp table /*@staging*/ as
with assessments as (
    select
        a._file, a._row, a._raw,
        trim(a.code_module) || '-' || trim(a.code_presentation)    as course_id,
        trim(a.id_assessment)                                       as activity_id,
        trim(a.assessment_type)                                     as kind,
        a.date                                                      as date_text,
        oulad_days(a.date)                                          as day,
        trim(a.weight)                                              as weight,
        u.course_id is not null                                     as dated,
        u.starts_on, u.length
    from oulad_assessments a
    left join oulad_usable u on u.course_id = trim(a.code_module) || '-' || trim(a.code_presentation)
),
numbered as (
    select *,
        count(*) over (partition by course_id, kind)                               as n_of_kind,
        row_number() over (partition by course_id, kind order by day nulls last,
                           try_cast(activity_id as bigint), _row)                  as nth
    from assessments
)
select
    course_id,
    activity_id,
    case when n_of_kind = 1 then kind else kind || ' ' || nth end   as title,
    kind,
    (greatest(coalesce(day, length), 0) // 7 + 1)::varchar          as week,
    null::varchar                                                   as opens_at,
    oulad_at(starts_on, coalesce(day, length), '23:59:59')          as due_at,
    weight,
    'true'                                                          as is_required,
    null::varchar                                                   as url,
    _file, _row, _raw,
    case
        when relance_blank(activity_id) then 'missing id_assessment'
        when oulad_not_days(date_text) then 'date is not a whole number of days: ' || date_text
        when not relance_blank(course_id) and not dated then oulad_undated(course_id)
    end                                                             as _problem
from numbered
/*@vle*/
