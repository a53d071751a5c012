-- Small SQL vocabulary shared by the engine, delivery and loaders, recreated on every
-- connection like the views. Macros are inlined when a query is planned: no cost.

-- A progress event that completes its activity.
create or replace macro is_completion(verb) as verb in ('completed', 'passed', 'submitted');
