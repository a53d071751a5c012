-- Small SQL vocabulary shared by the engine, delivery and loaders, recreated on every
-- connection like the views. Macros are inlined when a query is planned: no cost.

-- A progress event that completes its activity.
create or replace macro is_completion(verb) as verb in ('completed', 'passed', 'submitted');

-- The Wilson score interval of a proportion k/n at 95% (z = 1.96), its two bounds; the
-- confidence intervals of kpi_control and kpi_variants combine them (Newcombe 1998).
create or replace macro wilson_low(k, n) as
    (k / n + 1.959963984540054 ^ 2 / (2 * n)) / (1 + 1.959963984540054 ^ 2 / n)
    - 1.959963984540054 * sqrt((k / n) * (1 - k / n) / n + 1.959963984540054 ^ 2 / (4 * n * n))
      / (1 + 1.959963984540054 ^ 2 / n);
create or replace macro wilson_high(k, n) as
    (k / n + 1.959963984540054 ^ 2 / (2 * n)) / (1 + 1.959963984540054 ^ 2 / n)
    + 1.959963984540054 * sqrt((k / n) * (1 - k / n) / n + 1.959963984540054 ^ 2 / (4 * n * n))
      / (1 + 1.959963984540054 ^ 2 / n);
-- Newcombe's hybrid score interval of the difference k1/n1 - k2/n2 (method 10).
create or replace macro newcombe_low(k1, n1, k2, n2) as
    k1 / n1 - k2 / n2 - sqrt((k1 / n1 - wilson_low(k1, n1)) ^ 2 + (wilson_high(k2, n2) - k2 / n2) ^ 2);
create or replace macro newcombe_high(k1, n1, k2, n2) as
    k1 / n1 - k2 / n2 + sqrt((wilson_high(k1, n1) - k1 / n1) ^ 2 + (k2 / n2 - wilson_low(k2, n2)) ^ 2);
-- Too few to tell: under 30 in a group, or under 5 with or without the outcome in one.
create or replace macro too_small(k1, n1, k2, n2) as
    least(n1, n2) < 30 or least(k1, n1 - k1, k2, n2 - k2) < 5;

-- What keeps relance from sending to an e-mail address ('non-ASCII', 'malformed', 'too
-- long'; NULL: nothing, or no address): relance/campaign/values.py's `email_problem`, the
-- channels' rule, in SQL (tests/test_addresses.py holds both to the same answers). The
-- loaders quarantine such addresses; the engine refuses them (`invalid_email`). ASCII is
-- tested first, by size: strlen counts bytes, length characters.
create or replace macro email_problem(x) as case
    when strlen(x) <> length(x) then 'non-ASCII'
    when not regexp_full_match(x,
        '[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})')
        then 'malformed'
    when length(split_part(x, '@', 1)) > 64 or length(x) > 254 then 'too long'
end;
