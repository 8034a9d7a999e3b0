"""REST handlers under ``<base_url>api/coderchat/`` (docs/api.md). Each verb is authenticated
(``@web.authenticated``) and authorized (``@authorized`` on resource ``coderchat``)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .. import errors as E
from .. import models as M
from .._version import __version__
from .base import CoderChatHandler

ANY_ID = r"[^/]+"


def _bool_arg(handler: CoderChatHandler, name: str) -> bool | None:
    raw = handler.get_argument(name, None)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise E.BadRequest(f"Invalid {name} parameter.")


class ChatsHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List root chats: ``q``, repeated ``label=key:value``, ``archived``, ``limit``
        (1..200, default 50), ``offset``."""
        actor = await self.actor()
        limit = self.limit_arg()
        chats = await self.services.chats.list_chats(
            actor,
            query=self.get_argument("q", None),
            labels=self.get_arguments("label"),
            archived=_bool_arg(self, "archived"),
            limit=limit,
            offset=self.int_arg("offset", default=0),
        )
        self.reply([c.dump() for c in chats])

    @web.authenticated
    @authorized
    async def post(self) -> None:
        actor = await self.actor()
        chat = await self.services.chats.create_chat(actor, self.body_as(M.CreateChatRequest))
        self.reply(chat.dump(), 201)


class ChatHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self, chat_id: str) -> None:
        chat = await self.services.chats.get_chat(await self.actor(), chat_id)
        self.reply(chat.dump())

    @web.authenticated
    @authorized
    async def patch(self, chat_id: str) -> None:
        await self.services.chats.update_chat(
            await self.actor(), chat_id, self.body_as(M.UpdateChatRequest)
        )
        self.reply(None, 204)


class MessagesHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self, chat_id: str) -> None:
        limit = self.limit_arg()
        page = await self.services.chats.list_messages(
            await self.actor(),
            chat_id,
            before_id=self.int_arg("before_id", minimum=1),
            after_id=self.int_arg("after_id"),
            limit=limit,
        )
        self.reply(page)

    @web.authenticated
    @authorized
    async def post(self, chat_id: str) -> None:
        result = await self.services.chats.send_message(
            await self.actor(), chat_id, self.body_as(M.CreateChatMessageRequest)
        )
        self.reply(result)


class MessageHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def patch(self, chat_id: str, message_id: str) -> None:
        result = await self.services.chats.edit_message(
            await self.actor(), chat_id, message_id, self.body_as(M.EditMessageRequest)
        )
        self.reply(result)


class QueuedMessageHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def delete(self, chat_id: str, queued_id: str) -> None:
        await self.services.chats.delete_queued(await self.actor(), chat_id, queued_id)
        self.reply(None, 204)


class PromoteHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def post(self, chat_id: str, queued_id: str) -> None:
        self.reply(await self.services.chats.promote_queued(await self.actor(), chat_id, queued_id))


class InterruptHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def post(self, chat_id: str) -> None:
        chat = await self.services.chats.interrupt(await self.actor(), chat_id)
        self.reply(chat.dump())


class ToolResultsHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def post(self, chat_id: str) -> None:
        await self.services.chats.submit_tool_results(
            await self.actor(), chat_id, self.body_as(M.SubmitToolResultsRequest)
        )
        self.reply(None, 204)


class ChatToolHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def post(self, chat_id: str, tool_name: str) -> None:
        result = await self.services.chats.run_tool(
            await self.actor(), chat_id, tool_name, self.body_as(M.RunToolRequest)
        )
        self.reply(result)


class TitleRegenerateHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def post(self, chat_id: str) -> None:
        chat = await self.services.chats.regenerate_title(await self.actor(), chat_id)
        self.reply(chat.dump())


class ModelsHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.services.settings.list_models(await self.actor()))


class ProvidersHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.services.settings.list_providers(await self.actor()))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        result = await self.services.settings.create_provider(
            await self.actor(), self.body_as(M.CreateProviderRequest)
        )
        self.reply(result, 201)


class ProviderHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def patch(self, provider_id: str) -> None:
        result = await self.services.settings.update_provider(
            await self.actor(), provider_id, self.body_as(M.UpdateProviderRequest)
        )
        self.reply(result)

    @web.authenticated
    @authorized
    async def delete(self, provider_id: str) -> None:
        await self.services.settings.delete_provider(await self.actor(), provider_id)
        self.reply(None, 204)


class ModelConfigsHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.services.settings.list_model_configs(await self.actor()))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        result = await self.services.settings.create_model_config(
            await self.actor(), self.body_as(M.CreateModelConfigRequest)
        )
        self.reply(result, 201)


class ModelConfigHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def patch(self, config_id: str) -> None:
        result = await self.services.settings.update_model_config(
            await self.actor(), config_id, self.body_as(M.UpdateModelConfigRequest)
        )
        self.reply(result)

    @web.authenticated
    @authorized
    async def delete(self, config_id: str) -> None:
        await self.services.settings.delete_model_config(await self.actor(), config_id)
        self.reply(None, 204)


class SystemPromptHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.services.settings.get_system_prompt(await self.actor()))

    @web.authenticated
    @authorized
    async def put(self) -> None:
        await self.services.settings.put_system_prompt(
            await self.actor(), self.body_as(M.SystemPromptRequest)
        )
        self.reply(None, 204)


class UserPromptHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.services.settings.get_user_prompt(await self.actor()))

    @web.authenticated
    @authorized
    async def put(self) -> None:
        result = await self.services.settings.put_user_prompt(
            await self.actor(), self.body_as(M.UserPromptRequest)
        )
        self.reply(result)


class TemplateAllowlistHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.services.settings.get_template_allowlist(await self.actor()))

    @web.authenticated
    @authorized
    async def put(self) -> None:
        await self.services.settings.put_template_allowlist(
            await self.actor(), self.body_as(M.TemplateAllowlistRequest)
        )
        self.reply(None, 204)


class AdvisorConfigHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.services.settings.get_advisor(await self.actor()))

    @web.authenticated
    @authorized
    async def put(self) -> None:
        await self.services.settings.put_advisor(
            await self.actor(), self.body_as(M.AdvisorConfigRequest)
        )
        self.reply(None, 204)


class TemplatesHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        templates = await self.services.workspaces.list_templates(await self.actor())
        self.reply([t.dump() for t in templates])


class TemplateHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self, template_id: str) -> None:
        template = await self.services.workspaces.get_template(await self.actor(), template_id)
        self.reply(template.dump())


class WorkspacesHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        workspaces = await self.services.workspaces.list_workspaces(await self.actor())
        self.reply([w.dump() for w in workspaces])

    @web.authenticated
    @authorized
    async def post(self) -> None:
        workspace = await self.services.workspaces.create_workspace(
            await self.actor(), self.body_as(M.CreateWorkspaceRequest)
        )
        self.reply(workspace.dump(), 201)


class WorkspaceHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self, workspace_id: str) -> None:
        workspace = await self.services.workspaces.get_workspace(await self.actor(), workspace_id)
        self.reply(workspace.dump())


class WorkspaceBuildsHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def post(self, workspace_id: str) -> None:
        build = await self.services.workspaces.create_build(
            await self.actor(), workspace_id, self.body_as(M.CreateWorkspaceBuildRequest)
        )
        self.reply(build.dump(), 201)


class WorkspaceAttachHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def post(self, workspace_id: str) -> None:
        agent = await self.services.workspaces.attach(
            await self.actor(), workspace_id, self.body_as(M.AttachKernelRequest)
        )
        self.reply(agent.dump())


class InfoHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.services.settings.info(__version__))


class OpenAPIHandler(CoderChatHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        from .openapi import openapi_document

        self.reply(openapi_document(self.base_url))


def rest_handlers() -> list[tuple[str, type[CoderChatHandler]]]:
    """``(pattern, handler)`` pairs relative to the server's base URL."""
    base = "api/coderchat"
    return [
        (rf"{base}/chats", ChatsHandler),
        (rf"{base}/chats/({ANY_ID})", ChatHandler),
        (rf"{base}/chats/({ANY_ID})/messages", MessagesHandler),
        (rf"{base}/chats/({ANY_ID})/messages/({ANY_ID})", MessageHandler),
        (rf"{base}/chats/({ANY_ID})/queue/({ANY_ID})/promote", PromoteHandler),
        (rf"{base}/chats/({ANY_ID})/queue/({ANY_ID})", QueuedMessageHandler),
        (rf"{base}/chats/({ANY_ID})/interrupt", InterruptHandler),
        (rf"{base}/chats/({ANY_ID})/tool-results", ToolResultsHandler),
        (rf"{base}/chats/({ANY_ID})/tools/({ANY_ID})", ChatToolHandler),
        (rf"{base}/chats/({ANY_ID})/title/regenerate", TitleRegenerateHandler),
        (rf"{base}/models", ModelsHandler),
        (rf"{base}/providers", ProvidersHandler),
        (rf"{base}/providers/({ANY_ID})", ProviderHandler),
        (rf"{base}/model-configs", ModelConfigsHandler),
        (rf"{base}/model-configs/({ANY_ID})", ModelConfigHandler),
        (rf"{base}/config/system-prompt", SystemPromptHandler),
        (rf"{base}/config/user-prompt", UserPromptHandler),
        (rf"{base}/config/template-allowlist", TemplateAllowlistHandler),
        (rf"{base}/config/advisor", AdvisorConfigHandler),
        (rf"{base}/templates", TemplatesHandler),
        (rf"{base}/templates/({ANY_ID})", TemplateHandler),
        (rf"{base}/workspaces", WorkspacesHandler),
        (rf"{base}/workspaces/({ANY_ID})", WorkspaceHandler),
        (rf"{base}/workspaces/({ANY_ID})/builds", WorkspaceBuildsHandler),
        (rf"{base}/workspaces/({ANY_ID})/attach", WorkspaceAttachHandler),
        (rf"{base}/info", InfoHandler),
        (rf"{base}/openapi.json", OpenAPIHandler),
    ]
