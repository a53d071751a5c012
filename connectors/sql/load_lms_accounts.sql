-- stg -> lms_accounts: the user id each learner has in the source's LMS (lms_accounts.sql
-- stages them). Loaded after learners: an account whose learner the warehouse does not hold
-- (set aside with its reason, or not a learner) is skipped, not quarantined (the learner's
-- own row already says why). /*@key*/ is unused: nothing here is set aside.
create or replace temp table typed as
select relance_trim(s.learner_id) as learner_id, relance_trim(s.lms_user_id) as lms_user_id
from /*@staging*/ s
where not relance_blank(s.learner_id) and not relance_blank(s.lms_user_id);

insert into lms_accounts (learner_id, source, lms_user_id, loaded_at)
select distinct on (t.learner_id) t.learner_id, $source, t.lms_user_id, $now
from typed t
where exists (select 1 from learners l where l.learner_id = t.learner_id)
on conflict (learner_id, source) do update
    set lms_user_id = excluded.lms_user_id, loaded_at = excluded.loaded_at;

create or replace temp table staged_rows as select count(*) as n from /*@staging*/;

drop table typed
