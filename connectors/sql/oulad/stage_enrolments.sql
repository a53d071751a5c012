-- studentRegistration.csv with studentInfo.csv's final_result -> stg_oulad__enrolments.
-- Enrolled on the registration day (a registration without a date, which the dataset
-- has, counts from day 0, or from its unregistration if that came first); withdrawn on
-- the unregistration day. Status from final_result: Withdrawn -> withdrawn; Pass and
-- Distinction -> completed at the end of the presentation; Fail -> enrolled (the course
-- ran to its end without a pass: nothing says the learner completed it). The result
-- itself goes to `outcomes`.
create or replace temp table /*@staging*/ as
with registrations as (
    select
        coalesce(r._file, i._file)                                  as _file,
        coalesce(r._row, i._row)                                    as _row,
        coalesce(r._raw, i._raw)                                    as _raw,
        trim(coalesce(r.id_student, i.id_student))                  as learner_id,
        trim(coalesce(r.code_module, i.code_module)) || '-'
            || trim(coalesce(r.code_presentation, i.code_presentation)) as course_id,
        r.date_registration, r.date_unregistration,
        trim(i.final_result)                                        as final_result
    from oulad_studentRegistration r
    full join (select * from oulad_studentInfo where not relance_blank(id_student)) i
        on trim(i.id_student) = trim(r.id_student)
       and trim(i.code_module) = trim(r.code_module)
       and trim(i.code_presentation) = trim(r.code_presentation)
)
select
    g.learner_id,
    g.course_id,
    null::varchar                                                   as cohort,
    oulad_at(u.starts_on, coalesce(oulad_days(g.date_registration),
                                   least(0, oulad_days(g.date_unregistration)), 0), '00:00:00')
                                                                    as enrolled_at,
    case g.final_result
        when 'Withdrawn' then 'withdrawn'
        when 'Pass' then 'completed'
        when 'Distinction' then 'completed'
        else 'enrolled'
    end                                                             as status,
    case when g.final_result in ('Pass', 'Distinction')
        then oulad_at(u.ends_on, 0, '23:59:59') end                 as completed_at,
    oulad_at(u.starts_on, oulad_days(g.date_unregistration), '00:00:00') as withdrawn_at,
    g._file, g._row, g._raw,
    case
        when oulad_not_days(g.date_registration)
            then 'date_registration is not a whole number of days: ' || g.date_registration
        when oulad_not_days(g.date_unregistration)
            then 'date_unregistration is not a whole number of days: ' || g.date_unregistration
        when g.course_id is not null and u.course_id is null then oulad_undated(g.course_id)
    end                                                             as _problem
from registrations g
left join oulad_usable u using (course_id)
