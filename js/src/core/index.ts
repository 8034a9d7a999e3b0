// The renderer's public surface (docs/frontend.md#renderer). The renderer never knows which
// transport feeds it.
export { mountChat, type ChatHandle, type MountChatOptions } from "./chat";
export { mountChatList, type ChatListHandle, type MountChatListOptions } from "./chatlist";
export { applyEvent, applyEvents, initialState, phase, type ChatState, type LivePart } from "./store";
export { renderToolCard, CARD_TOOLS } from "./cards";
export { serverTransport } from "../transport/server";
export { kernelTransport } from "../transport/kernel";
export { ApiError, type AnyModel, type ChatEvent, type ChatTransport, type ConnectionState, type WatchEvent } from "../transport/types";
