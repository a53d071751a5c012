-- Parsing helpers shared by every load: tolerant of what LMS exports hold, strict about
-- what they mean (NULL when a value cannot be read, so the row can be quarantined).
-- A timestamp with an offset (Z, +02, +0200, +02:00 at its end, after a time) is read as
-- such; without one, in the source's timezone. `x` comes trimmed: these run on every row
-- of every load, and a macro repeats its argument at each use, so neither trims nor runs
-- a regular expression (blank text reads as NULL by itself).
create or replace temp macro relance_has_offset(x) as
    suffix(x, 'Z') or (contains(x, ':') and (x[-6] in ('+', '-') or x[-5] in ('+', '-') or x[-3] in ('+', '-')));
create or replace temp macro relance_ts(x, tz, fmts) as case
    when relance_has_offset(x) then try_cast(x as timestamptz)
    else timezone(tz, coalesce(try_cast(x as timestamp), try_strptime(x, fmts)))
end;
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
-- trim() copies every string; most values of an export have no spaces to trim
create or replace temp macro relance_trim(x) as
    case when starts_with(x, ' ') or suffix(x, ' ') then trim(x) else x end;
create or replace temp macro relance_blank(x) as x is null or trim(x) = '';
create or replace temp macro relance_email_ok(x) as
    regexp_full_match(trim(x), '[^@\s<>",;()]+@[^@\s<>",;()]+\.[^@\s<>",;()]+');
