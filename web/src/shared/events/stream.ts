// The one resumable event stream (docs/events.md): a WebSocket to /api/v1/events/ws that
// authenticates in its first message (the token stays out of URLs and logs), remembers the
// seq of the last message and resumes from it after a drop, with backoff. Areas subscribe to
// event types; the connection status is a store the shell shows.
import { useSyncExternalStore } from "react";

export interface StreamEvent {
  seq: number;
  type: string;
  at: string; // ISO 8601 with its zone, like every time in the API
  data: Record<string, unknown>;
}

export type StreamStatus = "connecting" | "open" | "closed";
type Handler = (event: StreamEvent) => void;

export interface StreamOptions {
  token: () => string | null;
  scope?: "agent" | "supervisor" | "tenant";
  types?: string[];
  /** Called when the server ends the stream for bad credentials (close code 4401). */
  onUnauthorized?: () => void;
  url?: string;
}

export function matches(pattern: string, type: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith("*")) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}

export class EventStream {
  private ws: WebSocket | null = null;
  private lastSeq: number | null = null;
  private handlers = new Set<{ pattern: string; handler: Handler }>();
  private statusListeners = new Set<() => void>();
  private retry = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  status: StreamStatus = "closed";

  constructor(private readonly options: StreamOptions) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.ws?.close(1000);
    this.ws = null;
    this.setStatus("closed");
  }

  on(pattern: string, handler: Handler): () => void {
    const entry = { pattern, handler };
    this.handlers.add(entry);
    return () => this.handlers.delete(entry);
  }

  subscribeStatus = (listener: () => void): (() => void) => {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  };

  getStatus = (): StreamStatus => this.status;

  private setStatus(status: StreamStatus): void {
    if (status === this.status) return;
    this.status = status;
    this.statusListeners.forEach((l) => l());
  }

  private connect(): void {
    const token = this.options.token();
    if (!token || this.stopped) return;
    this.setStatus("connecting");
    const base = this.options.url ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/events/ws`;
    const ws = new WebSocket(base);
    this.ws = ws;
    ws.onopen = () => {
      const auth: Record<string, unknown> = { type: "auth", access_token: token };
      if (this.lastSeq !== null) auth.since = this.lastSeq;
      if (this.options.scope) auth.scope = this.options.scope;
      if (this.options.types) auth.types = this.options.types;
      ws.send(JSON.stringify(auth));
    };
    ws.onmessage = (message) => {
      const event = JSON.parse(String(message.data)) as StreamEvent;
      if (event.type === "stream.hello") {
        this.retry = 0;
        this.setStatus("open");
      }
      if (typeof event.seq === "number") this.lastSeq = event.seq;
      for (const { pattern, handler } of this.handlers) if (matches(pattern, event.type)) handler(event);
    };
    ws.onclose = (close) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.setStatus("closed");
      if (close.code === 4401) {
        this.options.onUnauthorized?.();
        return;
      }
      if (this.stopped) return;
      // Backoff 0.5 s, 1 s, 2 s ... 10 s; the resume from lastSeq loses no event.
      const delay = Math.min(10_000, 500 * 2 ** this.retry++);
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }
}

export function useStreamStatus(stream: EventStream): StreamStatus {
  return useSyncExternalStore(stream.subscribeStatus, stream.getStatus);
}
