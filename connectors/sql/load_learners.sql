-- stg -> learners. Quarantined: no id, a malformed e-mail, an id twice in one load.
create or replace temp table typed as
with read as (
    select
        s, s._file, s._row,
        trim(s.learner_id)                                       as learner_id,
        nullif(lower(trim(s.email)), '')                         as email,
        nullif(trim(s.first_name), '')                           as first_name,
        nullif(trim(s.last_name), '')                            as last_name,
        nullif(trim(s.locale), '')                               as locale,
        nullif(trim(s.timezone), '')                             as timezone,
        nullif(lower(trim(s.manager_email)), '')                 as manager_email,
        case
            when relance_blank(s.learner_id) then 'missing learner_id'
            when not relance_blank(s.email) and not relance_email_ok(s.email)
                then 'malformed email: ' || trim(s.email)
            when not relance_blank(s.manager_email) and not relance_email_ok(s.manager_email)
                then 'malformed manager_email: ' || trim(s.manager_email)
            when count(*) over (partition by trim(s.learner_id)) > 1
                then 'learner_id appears more than once in this load'
        end as reason
    from /*@staging*/ s
)
-- the staged row as JSON for the rows set aside only
select * exclude (s), case when reason is not null then to_json(s) end as raw from read;

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'learners', _file, _row, raw, reason from typed where reason is not null;

-- An upsert by id, as an update of the learners already known and an insert of the new
-- ones (`insert or replace` does both as a merge, slower on a first load of many).
update learners l
set email = t.email, first_name = t.first_name, last_name = t.last_name, locale = t.locale,
    timezone = t.timezone, manager_email = t.manager_email, source = $source, loaded_at = $now
from typed t
where t.reason is null and l.learner_id = t.learner_id;

insert into learners
    (learner_id, email, first_name, last_name, locale, timezone, manager_email, source, loaded_at)
select learner_id, email, first_name, last_name, locale, timezone, manager_email, $source, $now
from typed t
where reason is null and not exists (select 1 from learners l where l.learner_id = t.learner_id);

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from typed;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table typed
