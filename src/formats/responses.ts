/**
 * OpenAI's Responses API (`POST /v1/responses`), stateless. A backend that speaks it (OpenAI, or
 * one configured with `responses: true`) gets the request as it came; every other backend gets a
 * Chat Completions translation, and its answer or stream is translated back.
 */
import { usageFromCounts } from "../usage/counts.ts";
import { jsonTokens, textTokens } from "../usage/estimate.ts";
import { withoutRoutingFields } from "./fields.ts";
import { responsesErrorEvent, responsesEventInfo } from "./responses_events.ts";
import { estimateResponsesPromptTokens, parseResponsesRequest } from "./responses_request.ts";
import { chatToResponse, isObject, type ResponseContext } from "./responses_response.ts";
import { chatSseToResponses } from "./responses_stream.ts";
import type { Codec, ParsedRequest, SendContext } from "./types.ts";

type Json = Record<string, unknown>;

/** A validated Responses request with its chat translation. */
export interface ResponsesRequest extends ParsedRequest {
  /** The client's body (routing-like fields removed), for backends that speak the API. */
  body: Json;
  /** The Chat Completions body for every other backend. */
  chat: Json;
}

function context(request: ResponsesRequest, send: SendContext): ResponseContext {
  return {
    id: `resp_${send.requestId.replace(/[^\w-]/g, "")}`,
    createdAt: Math.floor(send.now() / 1000),
    model: request.model,
    request: request.body,
  };
}

/** Output tokens of a Response whose backend reported no usage: its text, by length. */
function responseAnswerTokens(body: Json): number {
  let tokens = 0;
  for (const item of Array.isArray(body.output) ? body.output : []) {
    if (!isObject(item)) continue;
    if (typeof item.arguments === "string") tokens += textTokens(item.arguments);
    for (const part of Array.isArray(item.content) ? item.content : []) {
      if (isObject(part) && typeof part.text === "string") tokens += textTokens(part.text);
      else tokens += jsonTokens(part);
    }
  }
  return tokens;
}

/** The Responses codec. */
export const responsesCodec: Codec<ResponsesRequest> = {
  name: "responses",
  framing: "sse",
  streamType: "text/event-stream; charset=utf-8",
  parse(body, defaults) {
    const parsed = parseResponsesRequest(body, defaults.fallbackModel);
    const promptTokens = estimateResponsesPromptTokens(body);
    return {
      model: parsed.model,
      stream: parsed.stream,
      promptTokens,
      reserveTokens: promptTokens + (parsed.maxOutputTokens ?? defaults.defaultMaxTokens),
      body: withoutRoutingFields(body),
      chat: parsed.chat,
    };
  },
  async send(adapter, request, send) {
    if (adapter.speaks?.("responses") && adapter.sendNative) {
      const answer = await adapter.sendNative({
        api: "responses",
        body: { ...request.body, model: send.upstreamModel },
        stream: request.stream,
        signal: send.signal,
        requestId: send.requestId,
      });
      if (answer.kind === "stream") return answer;
      const usage = isObject(answer.body.usage) ? answer.body.usage : {};
      return { ...answer, usage: usageFromCounts(usage.input_tokens, usage.output_tokens) };
    }
    const answer = await adapter.send({
      endpoint: "chat",
      body: { ...request.chat, model: send.upstreamModel },
      stream: request.stream,
      signal: send.signal,
      requestId: send.requestId,
    });
    const ctx = context(request, send);
    if (answer.kind === "stream") {
      return { ...answer, stream: answer.stream.pipeThrough(chatSseToResponses(ctx)) };
    }
    return { ...answer, body: chatToResponse(answer.body, ctx) };
  },
  inspector: () => responsesEventInfo,
  answerTokens: responseAnswerTokens,
  errorEvent: responsesErrorEvent,
};
