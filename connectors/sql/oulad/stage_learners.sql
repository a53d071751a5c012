-- studentInfo.csv (and registrations without one) -> stg_oulad__learners: one learner per
-- id_student, whatever the number of presentations. The dataset has no names or
-- addresses: each learner gets a stable synthetic address for the outbox. Demographic
-- columns (gender, age, region, imd_band, disability) are not loaded: campaigns must not
-- target or measure learners by them.
create or replace temp table /*@staging*/ as
with rows as (
    select _file, _row, _raw, trim(id_student) as id, 0 as file_rank from oulad_studentInfo
    union all
    select _file, _row, _raw, trim(id_student), 1 from oulad_studentRegistration
    where not relance_blank(id_student)
),
first_seen as (
    -- a learner's first row, preferring studentInfo.csv; rows without an id stay each
    -- on its own, to be quarantined
    select * from rows
    qualify id is null or id = ''
         or row_number() over (partition by id order by file_rank, _row) = 1
)
select
    id                                                              as learner_id,
    'student-' || id || '@oulad.example'                            as email,
    null::varchar                                                   as first_name,
    null::varchar                                                   as last_name,
    'en'                                                            as locale,
    'Europe/London'                                                 as timezone,
    null::varchar                                                   as manager_email,
    _file, _row, _raw,
    case
        when relance_blank(id) then 'missing id_student'
        when try_cast(id as bigint) is null then 'id_student is not a number: ' || id
    end                                                             as _problem
from first_seen
