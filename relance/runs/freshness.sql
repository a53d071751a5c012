-- One row per source that feeds the campaign's enrolments (all courses when $courses is
-- null), with its last successful load: the run's inputs and how old they are.
with feeding as (
    select distinct source
    from enrolments
    where $courses is null or list_contains($courses, course_id)
),
last_ok as (
    select source, max(finished_at) as last_loaded_at
    from loads
    where status = 'succeeded'
    group by source
),
final as (
    select feeding.source, last_ok.last_loaded_at
    from feeding
    left join last_ok using (source)
)
select * from final order by source
