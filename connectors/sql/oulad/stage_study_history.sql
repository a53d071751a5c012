-- studentInfo.csv's num_of_prev_attempts and studied_credits -> stg_oulad__study_history
-- (the risk score's study history). Only these two of its columns: gender, region,
-- highest_education, imd_band, age_band and disability are never staged.
create or replace temp table /*@staging*/ as
select
    trim(i.id_student)                                              as learner_id,
    trim(i.code_module) || '-' || trim(i.code_presentation)         as course_id,
    i.num_of_prev_attempts                                          as previous_attempts,
    i.studied_credits                                               as credits,
    i._file, i._row,
    -- the raw row a quarantined one keeps: its keys and these two columns, nothing else
    to_json({'code_module': i.code_module, 'code_presentation': i.code_presentation,
             'id_student': i.id_student, 'num_of_prev_attempts': i.num_of_prev_attempts,
             'studied_credits': i.studied_credits})                 as _raw,
    case
        when u.course_id is null and not relance_blank(i.code_module) and not relance_blank(i.code_presentation)
            then oulad_undated(trim(i.code_module) || '-' || trim(i.code_presentation))
    end                                                             as _problem
from oulad_studentInfo i
left join oulad_usable u on u.course_id = trim(i.code_module) || '-' || trim(i.code_presentation)
-- a row without id_student is quarantined once, as a learner
where not relance_blank(i.id_student)
