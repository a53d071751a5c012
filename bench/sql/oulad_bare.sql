-- The least any load of OULAD into the warehouse's model can do, for the benchmark to
-- compare the `oulad` connector with: each file read once with its columns given (no
-- sniffing), then the model's rows made from them and inserted, with none of what the
-- connector must also do: no check of any value, no quarantine, no raw row kept, no
-- cursor, no merge with rows already loaded (the warehouse is empty), no selection of
-- presentations. Day 0 is the first Monday of February (B) or October (J). Not a loader:
-- a row it cannot read stops it, and a bad one loads as it is.
create temp table b_courses as select * from read_csv($dir || '/courses.csv', header = true,
    auto_detect = false, delim = ',', quote = '"', escape = '"',
    columns = {'code_module': 'varchar', 'code_presentation': 'varchar',
               'module_presentation_length': 'integer'});
create temp table b_assessments as select * from read_csv($dir || '/assessments.csv',
    header = true, auto_detect = false, delim = ',', quote = '"', escape = '"', nullstr = '',
    columns = {'code_module': 'varchar', 'code_presentation': 'varchar',
               'id_assessment': 'varchar', 'assessment_type': 'varchar', 'date': 'integer',
               'weight': 'double'});
create temp table b_info as select * from read_csv($dir || '/studentInfo.csv', header = true,
    auto_detect = false, delim = ',', quote = '"', escape = '"',
    columns = {'code_module': 'varchar', 'code_presentation': 'varchar',
               'id_student': 'varchar', 'gender': 'varchar', 'region': 'varchar',
               'highest_education': 'varchar', 'imd_band': 'varchar', 'age_band': 'varchar',
               'num_of_prev_attempts': 'varchar', 'studied_credits': 'varchar',
               'disability': 'varchar', 'final_result': 'varchar'});
create temp table b_registration as select * from read_csv($dir || '/studentRegistration.csv',
    header = true, auto_detect = false, delim = ',', quote = '"', escape = '"', nullstr = '',
    columns = {'code_module': 'varchar', 'code_presentation': 'varchar',
               'id_student': 'varchar', 'date_registration': 'integer',
               'date_unregistration': 'integer'});
create temp table b_submissions as select *, row_number() over () as _row
from read_csv($dir || '/studentAssessment.csv', header = true, auto_detect = false,
    delim = ',', quote = '"', escape = '"', nullstr = '',
    columns = {'id_assessment': 'varchar', 'id_student': 'varchar',
               'date_submitted': 'integer', 'is_banked': 'varchar'});
create temp table b_vle as select * from read_csv($dir || '/vle.csv', header = true,
    auto_detect = false, delim = ',', quote = '"', escape = '"', nullstr = '',
    columns = {'id_site': 'varchar', 'code_module': 'varchar', 'code_presentation': 'varchar',
               'activity_type': 'varchar', 'week_from': 'integer', 'week_to': 'integer'});

create temp table b_calendar as
with firsts as (
    select code_module || '-' || code_presentation as course_id, code_module, code_presentation,
           make_date(code_presentation[1:4]::integer,
                     case when code_presentation[5] = 'B' then 2 else 10 end, 1) as first_day,
           module_presentation_length as length
    from b_courses
)
select *, first_day + ((8 - isodow(first_day)) % 7)::integer as starts_on from firsts;

insert into courses (course_id, title, starts_on, ends_on, source)
select course_id, 'OULAD ' || code_module || ' ' || code_presentation, starts_on,
       starts_on + length, 'bare'
from b_calendar;

insert into learners (learner_id, email, locale, timezone, source)
select id_student, 'student-' || id_student || '@oulad.example', 'en', 'Europe/London', 'bare'
from (select id_student from b_info union select id_student from b_registration);

insert into enrolments (learner_id, course_id, enrolled_at, status, completed_at, withdrawn_at, source)
select r.id_student, c.course_id,
       timezone('Europe/London', (c.starts_on + coalesce(r.date_registration, 0))::timestamp),
       case i.final_result when 'Withdrawn' then 'withdrawn' when 'Pass' then 'completed'
                           when 'Distinction' then 'completed' else 'enrolled' end,
       case when i.final_result in ('Pass', 'Distinction')
            then timezone('Europe/London', (c.starts_on + c.length)::timestamp + interval 86399 second) end,
       timezone('Europe/London', (c.starts_on + r.date_unregistration)::timestamp),
       'bare'
from b_registration r
join b_info i using (code_module, code_presentation, id_student)
join b_calendar c using (code_module, code_presentation);

insert into outcomes (learner_id, course_id, final_result, decided_at, source)
select i.id_student, c.course_id, i.final_result,
       timezone('Europe/London', (c.starts_on + c.length)::timestamp + interval 86399 second), 'bare'
from b_info i join b_calendar c using (code_module, code_presentation);

insert into activities (course_id, activity_id, title, kind, week, due_at, weight, is_required, source)
select c.course_id, a.id_assessment, a.assessment_type, a.assessment_type,
       coalesce(a.date, c.length) // 7 + 1,
       timezone('Europe/London', (c.starts_on + coalesce(a.date, c.length))::timestamp + interval 86399 second),
       a.weight, true, 'bare'
from b_assessments a join b_calendar c using (code_module, code_presentation)
union all
select c.course_id, 'vle-' || v.id_site, v.activity_type, v.activity_type, v.week_from, null,
       0, false, 'bare'
from b_vle v join b_calendar c using (code_module, code_presentation);

insert into progress_events (event_id, learner_id, course_id, activity_id, verb, occurred_at, progress, source)
select 'oulad-' || s.id_assessment || '-' || s.id_student, s.id_student, c.course_id,
       s.id_assessment, case when s.is_banked = '1' then 'completed' else 'submitted' end,
       timezone('Europe/London', (c.starts_on + s.date_submitted)::timestamp),
       sum(a.weight) over (partition by c.course_id, s.id_student
                           order by s.date_submitted, s._row) / 100,
       'bare'
from b_submissions s
join b_assessments a using (id_assessment)
join b_calendar c on c.code_module = a.code_module and c.code_presentation = a.code_presentation;

drop table b_courses;
drop table b_assessments;
drop table b_info;
drop table b_registration;
drop table b_submissions;
drop table b_vle;
drop table b_calendar
