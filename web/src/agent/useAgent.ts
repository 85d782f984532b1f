import { useCallback, useEffect, useReducer } from "react";
import { api, call } from "../shared/api/client";
import { useStream } from "../shared/events/context";
import type { StreamEvent } from "../shared/events/stream";
import { apply, EMPTY, finishWrapup, seed, type AgentPicture, type Status } from "./model";

type Action =
  | { kind: "event"; event: StreamEvent }
  | { kind: "status"; status: Status; live: Record<string, unknown>[] }
  | { kind: "done"; id: string };

export const AGENT_EVENTS = ["agent.*", "contact.*", "leg.*", "recording.*"];

/** The agent's picture: its status from the API, then every change from the event stream. */
export function useAgent(agentId: string, onOffer?: (event: StreamEvent) => void) {
  const reducer = useCallback(
    (pic: AgentPicture, action: Action): AgentPicture => {
      if (action.kind === "status") return seed({ ...pic, status: action.status }, action.live, agentId);
      if (action.kind === "done") return finishWrapup(pic, action.id);
      return apply(pic, action.event, agentId);
    },
    [agentId],
  );
  const [pic, dispatch] = useReducer(reducer, EMPTY);
  const stream = useStream();

  const refresh = useCallback(async () => {
    const [status, live] = await Promise.all([
      call(api.GET("/api/v1/agents/{agent_id}/status", { params: { path: { agent_id: "me" } } })),
      call(api.GET("/api/v1/contacts/live")),
    ]);
    dispatch({ kind: "status", status, live: live as Record<string, unknown>[] });
  }, []);

  useEffect(() => {
    const offs = AGENT_EVENTS.map((pattern) =>
      stream.on(pattern, (event) => {
        dispatch({ kind: "event", event });
        if (event.type === "contact.offered") onOffer?.(event);
      }),
    );
    // After each (re)connection the status is read again; the events resume from the last seq.
    offs.push(stream.on("stream.hello", () => void refresh().catch(() => undefined)));
    void refresh().catch(() => undefined);
    return () => offs.forEach((off) => off());
  }, [stream, refresh, onOffer]);

  return { pic, refresh, done: (id: string) => dispatch({ kind: "done", id }) };
}
