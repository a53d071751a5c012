-- stg -> progress_events, append only. An event without an id gets a deterministic one
-- (a hash of what it says), so reloading the same export adds nothing. Events already in
-- the warehouse are skipped, not quarantined: that is what makes reruns incremental.
create or replace temp table typed as
select
    s._file, s._row, to_json(s) as raw,
    trim(s.learner_id)                                          as learner_id,
    trim(s.course_id)                                           as course_id,
    nullif(trim(s.activity_id), '')                             as activity_id,
    lower(trim(s.verb))                                         as verb,
    relance_ts(s.occurred_at, $timezone, $datetime_formats)     as occurred_at,
    case
        when relance_blank(s.progress) then null
        when trim(s.progress) like '%\%%' escape '\' then relance_num(replace(s.progress, '%', '')) / 100
        when $progress_scale = 'percent' then relance_num(s.progress) / 100
        when $progress_scale = 'share' then relance_num(s.progress)
        when relance_num(s.progress) > 1 then relance_num(s.progress) / 100
        else relance_num(s.progress)
    end                                                         as progress,
    s.progress as progress_text, s.occurred_at as occurred_at_text,
    coalesce(nullif(trim(s.event_id), ''),
             md5(concat_ws('|', trim(s.learner_id), trim(s.course_id), trim(s.activity_id),
                           lower(trim(s.verb)), trim(s.occurred_at), trim(s.progress))))
                                                                as event_id
from /*@staging*/ s;

create or replace temp table checked as
select t.*,
    case
        when relance_blank(t.learner_id) then 'missing learner_id'
        when relance_blank(t.course_id) then 'missing course_id'
        when relance_blank(t.verb) then 'missing verb'
        when t.verb not in ('accessed', 'progressed', 'completed', 'submitted', 'passed', 'failed', 'commented')
            then 'unknown verb: ' || t.verb || ' (expected accessed, progressed, completed, submitted, passed, failed or commented)'
        when t.occurred_at is null then 'unreadable or missing occurred_at: ' || coalesce(t.occurred_at_text, '')
        when not relance_blank(t.progress_text) and (t.progress is null or t.progress not between 0 and 1)
            then 'progress must be a share 0-1 or a percentage: ' || t.progress_text
        when e.learner_id is null then 'unknown enrolment: learner ' || t.learner_id || ' on course ' || t.course_id
        when row_number() over (partition by t.event_id order by t._row) > 1
            then 'duplicate event in this load: ' || t.event_id
    end as reason
from typed t
left join enrolments e on e.learner_id = t.learner_id and e.course_id = t.course_id;

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'progress_events', _file, _row, raw, reason from checked where reason is not null;

insert into progress_events
    (event_id, learner_id, course_id, activity_id, verb, occurred_at, progress, source, loaded_at)
select event_id, learner_id, course_id, activity_id, verb, occurred_at, progress, $source, $now
from checked c
where reason is null
  and not exists (select 1 from progress_events p where p.event_id = c.event_id)
