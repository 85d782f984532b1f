import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { session } from "../auth/session";
import { EventStream } from "./stream";

const StreamContext = createContext<EventStream | null>(null);

/** One event stream per signed-in tab, started with the shell and stopped at sign-out. */
export function StreamProvider({ children }: { children: ReactNode }) {
  const [stream] = useState(() => new EventStream({ token: session.token, onUnauthorized: session.expire }));
  useEffect(() => {
    stream.start();
    return () => stream.stop();
  }, [stream]);
  return <StreamContext.Provider value={stream}>{children}</StreamContext.Provider>;
}

export function useStream(): EventStream {
  const stream = useContext(StreamContext);
  if (!stream) throw new Error("useStream outside StreamProvider");
  return stream;
}
