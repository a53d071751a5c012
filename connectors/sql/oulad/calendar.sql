-- oulad_calendar: one row per module presentation of courses.csv, with the date its day
-- 0 falls on. B presentations start on the first Monday of February of their year, J
-- presentations on the first Monday of October, unless the source names a start date
-- for the course ('AAA-2013J') or the presentation ('2013J'). `problem` says why a
-- presentation cannot be used; its courses row is quarantined with that reason.
create or replace temp macro oulad_days(x) as try_cast(trim(x) as integer);
create or replace temp macro oulad_not_days(x) as not relance_blank(x) and oulad_days(x) is null;
-- a day offset as local wall-clock text, read in the source's timezone by the loader
create or replace temp macro oulad_at(starts_on, day_offset, clock) as
    strftime(starts_on + day_offset, '%Y-%m-%d') || ' ' || clock;

create or replace temp table oulad_start_overrides as
select unnest($override_keys::varchar[]) as key, unnest($override_dates::varchar[])::date as starts_on;

create or replace temp table oulad_calendar as
with presentations as (
    select
        c._file, c._row, c._raw,
        trim(c.code_module)                                         as module,
        trim(c.code_presentation)                                   as presentation,
        trim(c.code_module) || '-' || trim(c.code_presentation)     as course_id,
        c.module_presentation_length                                as length_text,
        oulad_days(c.module_presentation_length)                    as length,
        try_cast(left(trim(c.code_presentation), 4) as integer)     as year,
        case right(trim(c.code_presentation), 1) when 'B' then 2 when 'J' then 10 end as month
    from oulad_courses c
),
dated as (
    select p.*,
        coalesce(
            (select o.starts_on from oulad_start_overrides o where o.key = p.course_id),
            (select o.starts_on from oulad_start_overrides o where o.key = p.presentation),
            case when regexp_full_match(p.presentation, '\d{4}[BJ]') then
                make_date(p.year, p.month, 1)
                + ((8 - isodow(make_date(p.year, p.month, 1))) % 7)::integer
            end)                                                    as starts_on
    from presentations p
)
select *,
    starts_on + length                                              as ends_on,
    case
        when relance_blank(module) or relance_blank(presentation)
            then 'missing code_module or code_presentation'
        when length is null or length <= 0
            then 'module_presentation_length is not a whole number of days: ' || coalesce(length_text, '')
        when starts_on is null
            then 'no start date for presentation ' || presentation || ': give one in the source''s '
                 || 'start_dates (e.g. start_dates: {' || presentation || ': 2014-02-03})'
        when count(*) over (partition by course_id) > 1
            then 'presentation ' || course_id || ' appears more than once in courses.csv'
    end                                                             as problem
from dated
