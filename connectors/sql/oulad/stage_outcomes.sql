-- studentInfo.csv's final_result -> stg_oulad__outcomes: settled at the withdrawal for
-- Withdrawn (when the dataset dates it), at the end of the presentation otherwise.
create or replace temp table /*@staging*/ as
select
    trim(i.id_student)                                              as learner_id,
    trim(i.code_module) || '-' || trim(i.code_presentation)         as course_id,
    trim(i.final_result)                                            as final_result,
    case
        when trim(i.final_result) = 'Withdrawn'
            then oulad_at(u.starts_on, oulad_days(r.date_unregistration), '00:00:00')
        else oulad_at(u.ends_on, 0, '23:59:59')
    end                                                             as decided_at,
    i._file, i._row, i._raw,
    case
        when not relance_blank(i.final_result)
         and trim(i.final_result) not in ('Pass', 'Distinction', 'Fail', 'Withdrawn')
            then 'unknown final_result: ' || i.final_result || ' (expected Pass, Distinction, Fail or Withdrawn)'
        when u.course_id is null and not relance_blank(i.code_module) and not relance_blank(i.code_presentation)
            then oulad_undated(trim(i.code_module) || '-' || trim(i.code_presentation))
    end                                                             as _problem
from oulad_studentInfo i
left join oulad_studentRegistration r
    on trim(r.id_student) = trim(i.id_student)
   and trim(r.code_module) = trim(i.code_module)
   and trim(r.code_presentation) = trim(i.code_presentation)
left join oulad_usable u on u.course_id = trim(i.code_module) || '-' || trim(i.code_presentation)
-- a row without id_student is quarantined once, as a learner
where not relance_blank(i.id_student)
