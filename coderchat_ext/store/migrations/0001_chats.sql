-- Chats, messages, queue, providers, model configs, site/user configs, organizations.
-- See docs/data-model.md; column semantics follow upstream Coder's chat tables.

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);

CREATE TABLE organization_members (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    username TEXT NOT NULL,
    PRIMARY KEY (organization_id, username)
);

CREATE TABLE chat_providers (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    base_url TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1,
    api_key TEXT NOT NULL DEFAULT '',
    created_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE chat_model_configs (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1,
    is_default INTEGER NOT NULL DEFAULT 0,
    context_limit INTEGER NOT NULL CHECK (context_limit > 0),
    compression_threshold INTEGER NOT NULL DEFAULT 70
        CHECK (compression_threshold BETWEEN 0 AND 100),
    options TEXT NOT NULL DEFAULT '{}',
    deleted INTEGER NOT NULL DEFAULT 0,
    created_by TEXT,
    updated_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX chat_model_configs_one_default
    ON chat_model_configs (is_default) WHERE is_default = 1 AND deleted = 0;
CREATE UNIQUE INDEX chat_model_configs_provider_model
    ON chat_model_configs (provider, model) WHERE deleted = 0;

CREATE TABLE chats (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    owner TEXT NOT NULL,
    workspace_id TEXT,
    build_id TEXT,
    agent_id TEXT,
    parent_chat_id TEXT REFERENCES chats(id) ON DELETE SET NULL,
    root_chat_id TEXT REFERENCES chats(id) ON DELETE SET NULL,
    last_model_config_id TEXT REFERENCES chat_model_configs(id),
    title TEXT NOT NULL DEFAULT 'New Chat',
    status TEXT NOT NULL DEFAULT 'waiting' CHECK (status IN
        ('waiting', 'pending', 'running', 'paused', 'completed', 'error', 'requires_action')),
    worker_id TEXT,
    started_at TEXT,
    heartbeat_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    pin_order INTEGER NOT NULL DEFAULT 0,
    last_read_message_id INTEGER,
    mode TEXT,
    client_type TEXT NOT NULL DEFAULT 'api',
    labels TEXT NOT NULL DEFAULT '{}',
    dynamic_tools TEXT,
    last_error TEXT,
    last_injected_context TEXT
);
CREATE INDEX chats_owner ON chats (owner, updated_at);
CREATE INDEX chats_pending ON chats (updated_at) WHERE status = 'pending';
CREATE INDEX chats_running ON chats (heartbeat_at) WHERE status = 'running';
CREATE INDEX chats_workspace ON chats (workspace_id);
CREATE INDEX chats_parent ON chats (parent_chat_id);
CREATE INDEX chats_root ON chats (root_chat_id);

CREATE TABLE chat_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    created_by TEXT,
    model_config_id TEXT,
    created_at TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content TEXT NOT NULL,
    visibility TEXT NOT NULL DEFAULT 'both' CHECK (visibility IN ('user', 'model', 'both')),
    input_tokens INTEGER,
    output_tokens INTEGER,
    total_tokens INTEGER,
    reasoning_tokens INTEGER,
    cache_creation_tokens INTEGER,
    cache_read_tokens INTEGER,
    context_limit INTEGER,
    compressed INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    total_cost_micros INTEGER,
    runtime_ms INTEGER,
    provider_response_id TEXT
);
CREATE INDEX chat_messages_chat ON chat_messages (chat_id, id);

CREATE TABLE chat_queued_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    content TEXT NOT NULL,
    model_config_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX chat_queued_messages_chat ON chat_queued_messages (chat_id, id);

CREATE TABLE site_configs (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE user_configs (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (owner, key)
);
