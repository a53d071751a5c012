-- vle.csv as activities: the resources of the course site, optional and weightless,
-- opening in their planned week (`week_from`, taken as the course week, 1 = first) when
-- the dataset gives one.
union all
select
    trim(v.code_module) || '-' || trim(v.code_presentation),
    'vle-' || trim(v.id_site),
    trim(v.activity_type) || ' ' || trim(v.id_site),
    trim(v.activity_type),
    trim(v.week_from),
    case when oulad_days(v.week_from) is not null
        then oulad_at(u.starts_on, (oulad_days(v.week_from) - 1) * 7, '00:00:00') end,
    null, '0', 'false', null,
    v._file, v._row, v._raw,
    case
        when relance_blank(v.id_site) then 'missing id_site'
        when oulad_not_days(v.week_from) then 'week_from is not a whole number: ' || v.week_from
        when u.course_id is null and not relance_blank(v.code_module) and not relance_blank(v.code_presentation)
            then oulad_undated(trim(v.code_module) || '-' || trim(v.code_presentation))
    end
from oulad_vle v
left join oulad_usable u on u.course_id = trim(v.code_module) || '-' || trim(v.code_presentation)
