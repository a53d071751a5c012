-- stg -> progress_events, append only. An event without an id gets a deterministic one
-- (a hash of what it says), so reloading the same export adds nothing. Events already in
-- the warehouse are skipped, not quarantined: that is what makes reruns incremental.
--
-- Written for tens of millions of rows: one pass types and checks every row (the raw
-- JSON is built only for the rows set aside), duplicates are found by aggregation rather
-- than a window over the whole load, and the insert anti-joins what is already there.
create or replace temp table checked as
with trimmed as (
    -- each text trimmed once
    select s._file, s._row, relance_trim(s.learner_id) as learner_id,
           relance_trim(s.course_id) as course_id, relance_trim(s.activity_id) as activity_id,
           lower(relance_trim(s.verb)) as verb, relance_trim(s.occurred_at) as occurred_at,
           relance_trim(s.progress) as progress, nullif(relance_trim(s.event_id), '') as event_id
    from /*@staging*/ s
),
typed as (
    select
        s._file, s._row, s.learner_id, s.course_id,
        nullif(s.activity_id, '')                                   as activity_id,
        s.verb,
        relance_ts(s.occurred_at, $timezone, $datetime_formats)     as occurred_at,
        case
            when s.progress = '' or s.progress is null then null
            when contains(s.progress, '%') then relance_num(replace(s.progress, '%', '')) / 100
            when $progress_scale = 'percent' then relance_num(s.progress) / 100
            when $progress_scale = 'share' then relance_num(s.progress)
            when relance_num(s.progress) > 1 then relance_num(s.progress) / 100
            else relance_num(s.progress)
        end                                                         as progress,
        s.progress as progress_text, s.occurred_at as occurred_at_text,
        coalesce(s.event_id, md5(concat_ws('|', s.learner_id, s.course_id, s.activity_id,
                                           s.verb, s.occurred_at, s.progress)))
                                                                    as event_id
    from trimmed s
)
select t.* exclude (progress_text, occurred_at_text),
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
    end as reason
from typed t
left join enrolments e on e.learner_id = t.learner_id and e.course_id = t.course_id;

-- events said twice in this load: the first (in file order) is kept. Found among the
-- few rows whose 64-bit hash repeats (an integer aggregation), not by grouping every id.
create or replace temp table repeated as
select event_id, min({'file': _file, 'row': _row}) as first
from checked
where reason is null
  and hash(event_id) in (select hash(event_id) from checked where reason is null
                         group by all having count(*) > 1)
group by event_id
having count(*) > 1;

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'progress_events', s._file, s._row, to_json(s), q.reason
from (
    select _file, _row, reason from checked where reason is not null
    union all
    select c._file, c._row, 'duplicate event in this load: ' || c.event_id
    from checked c
    join repeated r on r.event_id = c.event_id and r.first <> {'file': c._file, 'row': c._row}
    where c.reason is null
) q
join /*@staging*/ s on s._file = q._file and s._row = q._row;

-- the staged text is no longer needed: its memory goes to the insert
drop table /*@staging*/;

insert into progress_events
    (event_id, learner_id, course_id, activity_id, verb, occurred_at, progress, source, loaded_at)
select c.event_id, c.learner_id, c.course_id, c.activity_id, c.verb, c.occurred_at, c.progress, $source, $now
from checked c
left join repeated r on r.event_id = c.event_id
where c.reason is null
  and (r.event_id is null or r.first = {'file': c._file, 'row': c._row})
  and not exists (select 1 from progress_events p where p.event_id = c.event_id);

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table checked;
drop table repeated
