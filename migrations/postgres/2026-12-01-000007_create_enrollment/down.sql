DROP TABLE vm_enrollments;
DROP TABLE enrollment_tokens;
