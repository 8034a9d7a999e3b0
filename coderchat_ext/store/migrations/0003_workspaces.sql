-- Templates, template versions, workspaces, builds, provisioner jobs and their logs, agents.
-- See docs/data-model.md#workspace-tables and docs/workspaces.md; shapes follow upstream Coder's
-- templates and workspaces.

CREATE TABLE templates (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    icon TEXT NOT NULL DEFAULT '',
    daily_cost INTEGER NOT NULL DEFAULT 0 CHECK (daily_cost >= 0),
    source TEXT NOT NULL DEFAULT '',
    active_version_id TEXT,
    -- 1 when the template's folder is no longer found: hidden from listings and new
    -- workspaces, kept for the workspaces built from it.
    deprecated INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE template_versions (
    id TEXT PRIMARY KEY,
    template_id TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    content_hash TEXT NOT NULL,
    manifest TEXT NOT NULL,
    has_external_agent INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    UNIQUE (template_id, content_hash)
);

-- The files/ tree of a version, so a build materializes exactly the version it names.
CREATE TABLE template_version_files (
    version_id TEXT NOT NULL REFERENCES template_versions(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    content BLOB NOT NULL,
    executable INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (version_id, path)
);

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    owner TEXT NOT NULL,
    template_id TEXT NOT NULL REFERENCES templates(id),
    name TEXT NOT NULL,
    -- The server-relative (contents API) path of the workspace folder.
    directory TEXT NOT NULL,
    -- The template version whose files/ were copied in (NULL until the first start did).
    files_version_id TEXT REFERENCES template_versions(id),
    deleted INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX workspaces_name ON workspaces (name) WHERE deleted = 0;
CREATE INDEX workspaces_owner ON workspaces (owner, deleted);

CREATE TABLE provisioner_jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
        ('pending', 'running', 'succeeded', 'failed', 'canceling', 'canceled')),
    error TEXT,
    error_code TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT
);
CREATE INDEX provisioner_jobs_active ON provisioner_jobs (status)
    WHERE status IN ('pending', 'running', 'canceling');

CREATE TABLE provisioner_job_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES provisioner_jobs(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    log_level TEXT NOT NULL DEFAULT 'info'
        CHECK (log_level IN ('trace', 'debug', 'info', 'warn', 'error')),
    stage TEXT NOT NULL DEFAULT '',
    output TEXT NOT NULL
);
CREATE INDEX provisioner_job_logs_job ON provisioner_job_logs (job_id, id);

CREATE TABLE workspace_builds (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    build_number INTEGER NOT NULL,
    transition TEXT NOT NULL CHECK (transition IN ('start', 'stop', 'delete')),
    template_version_id TEXT NOT NULL REFERENCES template_versions(id),
    preset_id TEXT,
    parameters TEXT NOT NULL DEFAULT '{}',
    -- Credits this build holds against the owner's quota: set when a start commits quota,
    -- 0 for stop/delete builds and for starts that failed.
    daily_cost INTEGER NOT NULL DEFAULT 0,
    job_id TEXT NOT NULL REFERENCES provisioner_jobs(id),
    initiator TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (workspace_id, build_number)
);
CREATE INDEX workspace_builds_job ON workspace_builds (job_id);

CREATE TABLE workspace_agents (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    build_id TEXT NOT NULL REFERENCES workspace_builds(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    display_order INTEGER NOT NULL DEFAULT 0,
    kernel_name TEXT NOT NULL DEFAULT '',
    kernel_id TEXT,
    external INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'connecting'
        CHECK (status IN ('connecting', 'connected', 'disconnected', 'timeout')),
    lifecycle_state TEXT NOT NULL DEFAULT 'created',
    first_connected_at TEXT,
    last_connected_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX workspace_agents_build ON workspace_agents (build_id);
CREATE INDEX workspace_agents_workspace ON workspace_agents (workspace_id);
