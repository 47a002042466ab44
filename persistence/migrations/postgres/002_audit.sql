-- Audit log: connections, denied attempts and admin actions (joined with the update log by actor).
CREATE TABLE audit (
    id bigserial PRIMARY KEY,
    at double precision NOT NULL,
    action text NOT NULL,
    subject text,
    document text,
    node text NOT NULL,
    detail text NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_document ON audit (document, id);
CREATE INDEX audit_by_subject ON audit (subject, id);
