"""The shape of the client: a method for every operation of the API (``server/operations.py``
``OPERATIONS``, itself checked against the route table), the same methods on the blocking
client, answer models that match the document's schemas, and no import cycle."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from pydantic import BaseModel

from coderchat_ext import client as client_package
from coderchat_ext.client import (
    AdvisorConfig,
    ApiInfo,
    AsyncChatClient,
    ChatClient,
    DirectToolResult,
    ModelsProvider,
    ModelsResponse,
    ModelSummary,
    SystemPromptConfig,
    ToolResult,
)
from coderchat_ext.server.openapi import component_schemas
from coderchat_ext.server.operations import OPERATIONS

METHODS: dict[str, tuple[str, ...]] = {
    "listChats": ("list_chats",),
    "createChat": ("create_chat",),
    "getChat": ("get_chat",),
    "updateChat": ("update_chat", "archive_chat", "unarchive_chat"),
    "listChatMessages": ("list_messages",),
    "createChatMessage": ("send_message",),
    "editChatMessage": ("edit_message",),
    "deleteQueuedMessage": ("delete_queued_message",),
    "promoteQueuedMessage": ("promote_queued_message",),
    "interruptChat": ("interrupt",),
    "submitToolResults": ("submit_tool_results",),
    "runChatTool": ("run_tool",),
    "regenerateChatTitle": ("regenerate_title",),
    "watchChats": ("watch",),
    "streamChat": ("stream", "stream_with_connections"),
    "listModels": ("list_models",),
    "listProviders": ("list_providers",),
    "createProvider": ("create_provider",),
    "updateProvider": ("update_provider",),
    "deleteProvider": ("delete_provider",),
    "listModelConfigs": ("list_model_configs",),
    "createModelConfig": ("create_model_config",),
    "updateModelConfig": ("update_model_config",),
    "deleteModelConfig": ("delete_model_config",),
    "getSystemPrompt": ("get_system_prompt",),
    "putSystemPrompt": ("set_system_prompt",),
    "getUserPrompt": ("get_user_prompt",),
    "putUserPrompt": ("set_user_prompt",),
    "getTemplateAllowlist": ("get_template_allowlist",),
    "putTemplateAllowlist": ("set_template_allowlist",),
    "getAdvisorConfig": ("get_advisor_config",),
    "putAdvisorConfig": ("set_advisor_config",),
    "listTemplates": ("list_templates",),
    "getTemplate": ("get_template",),
    "listWorkspaces": ("list_workspaces",),
    "createWorkspace": ("create_workspace",),
    "getWorkspace": ("get_workspace",),
    "createWorkspaceBuild": ("create_build",),
    "attachWorkspaceKernel": ("attach_kernel",),
    "getJobLogs": ("get_job_logs", "follow_job_logs"),
    "getInfo": ("info",),
    "getOpenAPIDocument": ("openapi",),
}
"""Each operation of the API and the client methods that call it."""

WIRE_SCHEMAS: list[tuple[type[BaseModel], str]] = [
    (ModelSummary, "ModelSummary"),
    (ModelsProvider, "ModelsProvider"),
    (ModelsResponse, "ModelsResponse"),
    (SystemPromptConfig, "SystemPromptConfig"),
    (AdvisorConfig, "AdvisorConfig"),
    (ApiInfo, "ServerInfo"),
    (ToolResult, "ToolResult"),
    (DirectToolResult, "DirectToolResult"),
]


def public_methods(cls: type) -> set[str]:
    return {
        name
        for name, value in inspect.getmembers(cls)
        if not name.startswith("_") and callable(value) and not isinstance(value, type)
    }


def test_every_operation_of_the_api_has_a_client_method() -> None:
    assert {op.operation_id for op in OPERATIONS} == set(METHODS)
    for names in METHODS.values():
        for name in names:
            assert inspect.iscoroutinefunction(
                getattr(AsyncChatClient, name)
            ) or inspect.isasyncgenfunction(getattr(AsyncChatClient, name)), name
            assert getattr(AsyncChatClient, name).__doc__, f"{name} has no docstring"


def test_the_blocking_client_has_every_method_of_the_async_one() -> None:
    only_async = {"aclose", "discover"}
    only_sync = {"close", "discover", "submit"}
    assert public_methods(AsyncChatClient) - only_async == public_methods(ChatClient) - only_sync
    for name in public_methods(ChatClient) - only_sync:
        assert not inspect.iscoroutinefunction(getattr(ChatClient, name)), name
        assert getattr(ChatClient, name).__doc__, f"ChatClient.{name} has no docstring"


@pytest.mark.parametrize(("model", "schema"), WIRE_SCHEMAS, ids=[s for _, s in WIRE_SCHEMAS])
def test_answer_models_have_the_fields_of_the_documented_schema(
    model: type[BaseModel], schema: str
) -> None:
    documented = component_schemas()[schema]
    assert set(model.model_fields) == set(documented["properties"])
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    assert required <= set(documented.get("required", ()))


def _client_imports(path: Path) -> set[str]:
    """The sibling modules ``path`` imports (``from .x import``), type-checking ones too."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module is not None:
                found.add(node.module)
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_the_client_modules_import_each_other_without_a_cycle() -> None:
    folder = Path(client_package.__file__).parent
    graph = {p.stem: _client_imports(p) for p in folder.glob("*.py") if p.stem != "__init__"}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, "import cycle: " + " -> ".join((*path, module))
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
