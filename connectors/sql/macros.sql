-- Parsing helpers shared by every load: tolerant of what LMS exports hold, strict about
-- what they mean (NULL when a value cannot be read, so the row can be quarantined).
create or replace temp macro relance_ts(x, tz, fmts) as case
    when x is null or trim(x) = '' then null
    when regexp_matches(trim(x), '(Z|[+-]\d{2}:?\d{2})$') then try_cast(trim(x) as timestamptz)
    else timezone(tz, coalesce(try_cast(trim(x) as timestamp), try_strptime(trim(x), fmts)))
end;
create or replace temp macro relance_date(x, fmts) as case
    when x is null or trim(x) = '' then null
    else coalesce(try_cast(trim(x) as date), try_strptime(trim(x), fmts)::date)
end;
create or replace temp macro relance_num(x) as
    try_cast(replace(replace(trim(x), ' ', ''), ',', '.') as double);
create or replace temp macro relance_bool(x) as case
    when lower(trim(x)) in ('1', 'true', 'yes', 'y', 'oui', 'vrai', 't', 'x') then true
    when lower(trim(x)) in ('0', 'false', 'no', 'n', 'non', 'faux', 'f') then false
end;
create or replace temp macro relance_blank(x) as x is null or trim(x) = '';
create or replace temp macro relance_email_ok(x) as
    regexp_full_match(trim(x), '[^@\s<>",;()]+@[^@\s<>",;()]+\.[^@\s<>",;()]+');
