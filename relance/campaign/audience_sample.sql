-- audience_sample: the audience's columns as eval_audience's `base` has them (same names, the
-- warehouse's types; relance/engine/sql/audience.sql) and a few learners with typical values,
-- on which `validate` runs a campaign's `audience.where` the way `plan` runs it
-- (relance/campaign/audience_where.py). A test holds the columns to audience.sql's.
create table base as
select e.learner_id, e.course_id, e.cohort, e.enrolled_at, e.status, e.completed_at,
       l.email, l.first_name, l.last_name, l.locale, l.timezone, l.manager_email,
       c.title as course_title, c.starts_on, c.ends_on
from enrolments e
join learners l using (learner_id)
join courses c using (course_id)
limit 0;

insert into base values
    ('L00001', 'anglais-b2', 'co-2026-09', timestamptz '2026-09-07 08:00:00+00', 'enrolled', null,
     'zoe.lefevre@example.org', 'Zoé', 'Lefèvre', 'fr', 'Europe/Paris', 'claire@example.org',
     'Anglais professionnel B2', date '2026-09-07', date '2027-01-25'),
    ('L00002', 'course-2', '2026', timestamptz '2026-01-12 09:30:00+00', 'completed',
     timestamptz '2026-05-02 17:00:00+00', 'o''brien@example.com', 'Hugh', 'O''Brien', 'en-GB',
     'America/Montreal', null, 'MOOC climat', date '2026-01-12', null),
    ('L00003', 'c3', null, timestamptz '2025-10-01 00:00:00+00', 'withdrawn', null, null, null,
     null, null, null, null, '', null, null);
