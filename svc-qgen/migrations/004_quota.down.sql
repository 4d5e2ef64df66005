DROP INDEX jobs_owner_active;
