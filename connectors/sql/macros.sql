-- Parsing helpers shared by every load: tolerant of what LMS exports hold, strict about
-- what they mean (NULL when a value cannot be read, so the row can be quarantined).
-- A timestamp with an offset (Z, +02, +0200, +02:00 at its end, after a time) is read as
-- such; without one, in the source's timezone. `x` comes trimmed: these run on every row
-- of every load, and a macro repeats its argument at each use, so neither trims nor runs
-- a regular expression (blank text reads as NULL by itself).
-- (a '+' is only ever an offset's; a '-' offset is among the last 6 characters, where a
-- date-only value, without ':', has its own '-')
create or replace temp macro relance_has_offset(x) as
    suffix(x, 'Z') or contains(x, '+') or (contains(x, ':') and contains(right(x, 6), '-'));
create or replace temp macro relance_local_ts(x, fmts) as
    coalesce(try_cast(x as timestamp), try_strptime(x, fmts));
create or replace temp macro relance_ts(x, tz, fmts) as case
    when relance_has_offset(x) then try_cast(x as timestamptz)
    else timezone(tz, relance_local_ts(x, fmts))
end;
-- The same, for tens of millions of local times: each of `hours` (wall-clock times
-- truncated to the hour) with the microseconds to add to a wall-clock time of that hour
-- to get its instant in `tz`, from ICU twice per hour rather than once per row (ICU per
-- row cost ~0.1 CPU-second per million rows). An hour whose offset changes within it (a
-- daylight saving change) has no shift: its rows go through timezone() one by one.
create or replace temp macro relance_local_hours(hours, tz) as table
select hour,
    case when epoch_us(timezone(tz, hour + to_microseconds(3599999999)))
              - epoch_us(timezone(tz, hour)) = 3599999999
         then epoch_us(timezone(tz, hour)) - epoch_us(hour) end as shift_us
from (select unnest(hours) as hour);
create or replace temp macro relance_date(x, fmts) as case
    when x is null or trim(x) = '' then null
    else coalesce(try_cast(trim(x) as date), try_strptime(trim(x), fmts)::date)
end;
create or replace temp macro relance_num(x) as
    try_cast(replace(replace(x, ' ', ''), ',', '.') as double);
create or replace temp macro relance_bool(x) as case
    when lower(trim(x)) in ('1', 'true', 'yes', 'y', 'oui', 'vrai', 't', 'x') then true
    when lower(trim(x)) in ('0', 'false', 'no', 'n', 'non', 'faux', 'f') then false
end;
-- a value with spaces around it (trim() copies every string; most values of an export
-- have no spaces to trim, so they are looked for first; and most have no space at all:
-- one scan for a space, then its two ends only for the values that have one, is 0.6x
-- the cost of looking at both ends of every value, measured on 10M activity ids)
create or replace temp macro relance_padded(x) as
    contains(x, ' ') and (starts_with(x, ' ') or suffix(x, ' '));
create or replace temp macro relance_trim(x) as case when relance_padded(x) then trim(x) else x end;
create or replace temp macro relance_blank(x) as x is null or trim(x) = '';
-- the verbs an event may have (progress_events.verb), as comparisons: an IN list of this
-- size is planned as a join against the list, twice the cost on tens of millions of rows
create or replace temp macro relance_known_verb(v) as
    v = 'accessed' or v = 'progressed' or v = 'completed' or v = 'submitted' or v = 'passed'
    or v = 'failed' or v = 'commented';
