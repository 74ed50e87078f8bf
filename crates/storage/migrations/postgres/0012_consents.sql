-- Remembered consent: a member who approved an app for some scopes is not asked again for the same or fewer.
CREATE TABLE consents (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    app_id     BIGINT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id)
);
CREATE INDEX consents_app ON consents(app_id);
