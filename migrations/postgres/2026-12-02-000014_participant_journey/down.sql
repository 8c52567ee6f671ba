DROP TABLE participant_sessions;
