-- stg -> contributions (forum posts and the like).
create or replace temp table checked as
with typed as (
    select
        s._file, s._row, s./*@key*/ as _key,
        relance_trim(s.learner_id)                            as learner_id,
        relance_trim(s.course_id)                             as course_id,
        nullif(relance_trim(s.contribution_id), '')           as given_id,
        coalesce(nullif(lower(relance_trim(s.kind)), ''), 'forum_post') as kind,
        nullif(relance_trim(s.title), '')                     as title,
        nullif(relance_trim(s.url), '')                       as url,
        relance_trim(s.posted_at)                             as posted_at_text,
        relance_ts(relance_trim(s.posted_at), $timezone, $datetime_formats) as posted_at,
        coalesce(relance_num(s.n_replies), 0)::integer        as n_replies,
        coalesce(relance_bool(s.is_notable), false)           as is_notable,
        relance_trim(s.title)                                 as title_text
    from /*@staging*/ s
)
select
    t._file, t._row, t._key,
    coalesce(t.given_id, md5(concat_ws('|', t.learner_id, t.course_id, t.posted_at_text, t.title_text)))
                                                          as contribution_id,
    t.learner_id, t.course_id, t.kind, t.title, t.url, t.posted_at, t.n_replies, t.is_notable,
    case
        when relance_blank(t.learner_id) then 'missing learner_id'
        when relance_blank(t.course_id) then 'missing course_id'
        when t.posted_at is null
            then 'unreadable or missing posted_at: ' || coalesce(t.posted_at_text, '')
        when e.learner_id is null then 'unknown enrolment: learner ' || t.learner_id || ' on course ' || t.course_id
    end as reason
from typed t
left join enrolments e on e.learner_id = t.learner_id and e.course_id = t.course_id;

insert into quarantine (load_id, source, entity, source_file, row_number, raw, reason)
select $load_id, $source, 'contributions', c._file, c._row, to_json(s), c.reason
from checked c
join /*@staging*/ s on s./*@key*/ = c._key
where c.reason is not null;

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
