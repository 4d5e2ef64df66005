-- Logins find an account by username case-insensitively (store.c): index exactly that, which
-- also keeps usernames unique regardless of case.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
