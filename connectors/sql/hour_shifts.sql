-- The shift of each local hour of the five years before `$year` to the two after, in
-- `$timezone` (see relance_local_hours; NULL for an hour whose offset changes within it),
-- as runs of consecutive hours with the same shift: first and last hour (hours since the
-- epoch, wall clock) and shift, in order. The events loaders write them out as constants
-- into their one pass (base.py `_hour_shift`): a lookup in a table of hours there would
-- be a join, which does not keep the rows in file order. Five years back, not twenty: the
-- hours are made once per timezone and year by a process, and exports are of current
-- courses; a time outside gets its instant from timezone(), row by row, the same.
select min(hour_index) as first_hour, max(hour_index) as last_hour, any_value(shift_us) as shift_us
from (select hour_index, shift_us,
             hour_index - row_number() over (partition by shift_us order by hour_index) as run
      from (select epoch_us(hour) // 3600000000 as hour_index, shift_us
            from relance_local_hours((select list(h) from range(make_timestamp($year - 5, 1, 1, 0, 0, 0),
                                                                make_timestamp($year + 3, 1, 1, 0, 0, 0),
                                                                interval 1 hour) t(h)), $timezone)))
group by shift_us, run
order by first_hour
