-- stg -> learners. Quarantined: no id, an e-mail relance cannot send to (the channels'
-- rule, `email_problem` in warehouse/macros.sql: '<problem> email: <value>'), an id
-- twice in one load.
-- Typed in one pass that keeps no copy of the staged row (most rows are not set aside):
-- a row set aside is read again from the staging, by its number, for its raw JSON.
create or replace temp table typed as
select
    s._file, s._row, s./*@key*/ as _key,
    relance_trim(s.learner_id)                               as learner_id,
    nullif(lower(relance_trim(s.email)), '')                 as email,
    nullif(relance_trim(s.first_name), '')                   as first_name,
    nullif(relance_trim(s.last_name), '')                    as last_name,
    nullif(relance_trim(s.locale), '')                       as locale,
    nullif(relance_trim(s.timezone), '')                     as timezone,
    nullif(lower(relance_trim(s.manager_email)), '')         as manager_email,
    -- optional (a staging with no tutor_email column gives no fragment: null)
    nullif(lower(relance_trim(coalesce(/*@tutor*/ null::varchar))), '') as tutor_email,
    case
        when relance_blank(s.learner_id) then 'missing learner_id'
        when not relance_blank(s.email) and email_problem(trim(s.email)) is not null
            then email_problem(trim(s.email)) || ' email: ' || trim(s.email)
        when not relance_blank(s.manager_email) and email_problem(trim(s.manager_email)) is not null
            then email_problem(trim(s.manager_email)) || ' manager_email: ' || trim(s.manager_email)
        when email_problem(trim(coalesce(/*@tutor*/ null::varchar))) is not null
            then email_problem(trim(coalesce(/*@tutor*/ null::varchar))) || ' tutor_email: '
                 || trim(coalesce(/*@tutor*/ null::varchar))
    end as reason
from /*@staging*/ s;

-- an id twice with different values (which is right cannot be told): every row of it is
-- set aside (a group by, not a window over every row). Rows alike are one learner: a
-- roster with a row per enrolment, mapped to learners and to enrolments, repeats them.
update typed set reason = 'learner_id appears more than once in this load'
where reason is null
  and learner_id in (select learner_id from typed group by all
                     having count(distinct (email, first_name, last_name, locale, timezone,
                                            manager_email)) > 1);

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'learners', t._file, t._row, to_json(s), t.reason
from typed t
join /*@staging*/ s on s./*@key*/ = t._key
where t.reason is not null;

-- An upsert by id, as an update of the learners already known and an insert of the new
-- ones (`insert or replace` does both as a merge, slower on a first load of many).
-- (rows alike once: `distinct`). Only a learner whose details changed is updated: its
-- `loaded_at` says when something about it last changed (rows waiting for a learner are
-- read again once one is loaded or changed: csv_export.py), and a roster re-exported
-- unchanged rewrites nothing.
update learners l
set email = t.email, first_name = t.first_name, last_name = t.last_name, locale = t.locale,
    timezone = t.timezone, manager_email = t.manager_email, source = $source, loaded_at = $now
from (select distinct learner_id, email, first_name, last_name, locale, timezone, manager_email
      from typed where reason is null) t
where l.learner_id = t.learner_id
  and (l.email is distinct from t.email or l.first_name is distinct from t.first_name
       or l.last_name is distinct from t.last_name or l.locale is distinct from t.locale
       or l.timezone is distinct from t.timezone
       or l.manager_email is distinct from t.manager_email);

insert into learners
    (learner_id, email, first_name, last_name, locale, timezone, manager_email, source, loaded_at)
select distinct learner_id, email, first_name, last_name, locale, timezone, manager_email, $source, $now
from typed t
where reason is null and not exists (select 1 from learners l where l.learner_id = t.learner_id);

-- the learner's tutor, when the source names one (team_assignments' `column` assignment)
insert or replace into learner_tutors
select distinct learner_id, tutor_email, $source, $now
from typed
where reason is null and tutor_email is not null;

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from typed;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table typed
