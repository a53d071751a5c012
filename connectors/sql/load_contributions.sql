-- stg -> contributions (forum posts and the like).
create or replace temp table checked as
select
    s._file, s._row, to_json(s) as raw,
    coalesce(nullif(trim(s.contribution_id), ''),
             md5(concat_ws('|', trim(s.learner_id), trim(s.course_id), trim(s.posted_at), trim(s.title))))
                                                          as contribution_id,
    trim(s.learner_id)                                    as learner_id,
    trim(s.course_id)                                     as course_id,
    coalesce(nullif(lower(trim(s.kind)), ''), 'forum_post') as kind,
    nullif(trim(s.title), '')                             as title,
    nullif(trim(s.url), '')                               as url,
    relance_ts(trim(s.posted_at), $timezone, $datetime_formats) as posted_at,
    coalesce(relance_num(s.n_replies), 0)::integer        as n_replies,
    coalesce(relance_bool(s.is_notable), false)           as is_notable,
    case
        when relance_blank(s.learner_id) then 'missing learner_id'
        when relance_blank(s.course_id) then 'missing course_id'
        when relance_ts(trim(s.posted_at), $timezone, $datetime_formats) is null
            then 'unreadable or missing posted_at: ' || coalesce(s.posted_at, '')
        when e.learner_id is null then 'unknown enrolment: learner ' || trim(s.learner_id) || ' on course ' || trim(s.course_id)
    end as reason
from /*@staging*/ s
left join enrolments e on e.learner_id = trim(s.learner_id) and e.course_id = trim(s.course_id);

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'contributions', _file, _row, raw, reason from checked where reason is not null;

insert or replace into contributions
    (contribution_id, learner_id, course_id, kind, title, url, posted_at, n_replies, is_notable, source, loaded_at)
select contribution_id, learner_id, course_id, kind, title, url, posted_at, n_replies, is_notable, $source, $now
from checked where reason is null
qualify row_number() over (partition by contribution_id order by _row) = 1;

-- how many staged rows the load read, for its report (a file's view is counted here)
create or replace temp table staged_rows as select count(*) as n from checked;

-- the work tables go before the load commits (a transaction's rows in a temp table are
-- copied at commit: for tens of millions of rows, seconds spent for nothing)
drop table checked
