DROP TABLE admin_sessions;
DROP TABLE app_secrets;
